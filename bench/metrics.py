"""Group metrics and bootstrap intervals: debias.metrics vs fairlearn's MetricFrame.

    .venv/bin/python bench/metrics.py                                   # 10M rows, all phases
    .venv/bin/python bench/metrics.py --rows 1000000 --fairlearn-boot-rows 100000   # quick

Synthetic predictions, 8 groups (one categorical column), 2 labels, scores correlated with
labels; generated in seeded batches of 1M rows so every phase sees the same rows. Phases,
each in its own subprocess so that its peak RSS is its own:

* ``ours_point``: rows -> GroupStats (cells + 4096-bin histograms) -> 4 metrics by group and
  their disparities (selection rate, TPR, FPR, accuracy);
* ``ours_counts``: the same from MetricFrame's inputs only (y_true, y_pred, group): no scores,
  so GroupStats keeps only the (group, y_true, y_pred) cell counts -- one bincount;
* ``ours_boot``: from those statistics, 1,000 bootstrap replicates of every count-based
  metric (9) for every group and overall, and the disparity intervals;
* ``ours_summary``: ``fairness_summary`` of those statistics with scores: every metric with its
  interval, disparities, criteria, tests, bias AUCs with intervals (what ``debias evaluate`` runs);
* ``fairlearn_point``: MetricFrame with the same 4 metrics on the same rows; the max absolute
  difference to our values is reported;
* ``fairlearn_boot``: MetricFrame with n_boot=20 (its cost is linear in n_boot);
* ``stream``: batches generated one at a time, folded with GroupStats.merge -- peak RSS
  at two sizes shows whether memory is flat in N.

Prints one table and writes bench/results/metrics.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GROUPS = [f"g{i}" for i in range(8)]
BATCH = 1_000_000
METRICS4 = ("selection_rate", "tpr", "fpr", "accuracy")


def make_batch(i: int, n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng([seed, i])
    g = rng.integers(0, len(GROUPS), n)
    y = (rng.random(n) < 0.2 + 0.05 * g).astype(np.int8)
    s = np.clip(rng.normal(0.3 + 0.35 * y + 0.01 * g, 0.2), 0, 1)
    return pd.DataFrame({"y_true": y, "y_score": s, "y_pred": (s >= 0.5).astype(np.int8),
                         "group": pd.Categorical.from_codes(g, GROUPS)})


def make_rows(n: int, seed: int = 0):
    import pandas as pd

    sizes = [min(BATCH, n - k) for k in range(0, n, BATCH)]
    return pd.concat([make_batch(i, m, seed) for i, m in enumerate(sizes)], ignore_index=True)


def _ours_values(df) -> dict:
    from debias.metrics import group_metrics

    t = group_metrics(df, group_col="group", metrics=METRICS4, min_group_size=0).set_index("group")
    return {m: {g: float(t.loc[g, m]) for g in GROUPS} | {"overall": float(t.loc["overall", m])} for m in METRICS4}


def phase(name: str, n: int, n_boot: int) -> dict:
    out: dict = {"phase": name, "rows": n}
    cpu0 = time.process_time()
    if name in ("ours_point", "ours_counts"):
        from debias.metrics import GroupStats, disparities, evaluate

        df = make_rows(n)
        if name == "ours_counts":  # MetricFrame's inputs: y_true, y_pred, group (no scores, no AUC)
            df = df.drop(columns=["y_score"])
        t0, c0 = time.perf_counter(), time.process_time()
        stats = GroupStats.from_batch(df, group_col="group")
        t1 = time.perf_counter()
        ev = evaluate(stats, metrics=METRICS4, min_group_size=0)
        disparities(ev)
        t2 = time.perf_counter()
        out.update(seconds=t2 - t0, build_seconds=t1 - t0, metrics_seconds=t2 - t1)
    elif name == "ours_boot":
        from debias.metrics import GroupStats, disparities, evaluate
        from debias.metrics._rates import COUNT_METRICS

        stats = GroupStats.from_batch(make_rows(n), group_col="group")
        t0, c0 = time.perf_counter(), time.process_time()
        ev = evaluate(stats, metrics=COUNT_METRICS, ci=True, n_boot=n_boot, seed=0, min_group_size=0)
        d = disparities(ev)
        out.update(seconds=time.perf_counter() - t0, n_boot=n_boot, n_metrics=len(COUNT_METRICS),
                   n_ci_columns=int(sum(c.endswith("_lo") for c in ev.frame.columns) * len(ev.frame)
                                    + sum(c.endswith("_lo") for c in d.columns) * len(d)))
    elif name == "ours_summary":  # what `debias evaluate` runs per suite: every metric, AUCs, intervals
        from debias.metrics import GroupStats, fairness_summary

        stats = GroupStats.from_batch(make_rows(n), group_col="group")
        t0, c0 = time.perf_counter(), time.process_time()
        s = fairness_summary(stats, n_boot=n_boot, seed=0, min_group_size=0)
        out.update(seconds=time.perf_counter() - t0, n_boot=n_boot,
                   n_ci_columns=sum(k.endswith("_lo") for r in s["by_group"] + s["disparities"] + s["bias_auc"]
                                    for k in r))
    elif name in ("fairlearn_point", "fairlearn_boot"):
        from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
        from sklearn.metrics import accuracy_score

        df = make_rows(n)
        fns = {"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate,
               "accuracy": accuracy_score}
        kw = {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": 0} if name == "fairlearn_boot" else {}
        t0, c0 = time.perf_counter(), time.process_time()
        mf = MetricFrame(metrics=fns, y_true=df["y_true"], y_pred=df["y_pred"], sensitive_features=df["group"], **kw)
        mf.difference()
        mf.ratio()
        out.update(seconds=time.perf_counter() - t0, timed_cpu_seconds=time.process_time() - c0,
                   n_boot=n_boot if name == "fairlearn_boot" else 0)
        if name == "fairlearn_point":
            ours = _ours_values(df)
            diff = max(max(abs(ours[m][g] - float(mf.by_group.loc[g, m])) for g in GROUPS)
                       for m in METRICS4)
            diff = max(diff, max(abs(ours[m]["overall"] - float(mf.overall[m])) for m in METRICS4))
            out["max_abs_diff_vs_ours"] = diff
    elif name == "stream":
        from debias.metrics import GroupStats, group_metrics

        t0, c0 = time.perf_counter(), time.process_time()
        acc = None
        for i, k in enumerate(range(0, n, BATCH)):
            s = GroupStats.from_batch(make_batch(i, min(BATCH, n - k)), group_col="group")
            acc = s if acc is None else acc.merge(s)
        group_metrics(acc, metrics=METRICS4, min_group_size=0)
        out.update(seconds=time.perf_counter() - t0)
    else:
        raise ValueError(f"unknown phase {name!r}")
    # CPU of the timed region: fairer than wall time on a shared machine
    out.setdefault("timed_cpu_seconds", time.process_time() - c0)
    out["cpu_seconds"] = time.process_time() - cpu0  # whole phase, data generation included
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--fairlearn-rows", type=int, default=None, help="rows for MetricFrame point values (default --rows)")
    ap.add_argument("--fairlearn-boot-rows", type=int, default=1_000_000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--fairlearn-n-boot", type=int, default=20)
    ap.add_argument("--stream-rows", type=int, nargs="+", default=None, help="default: rows/10 and rows")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--phase-rows", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--phase-boot", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        print(json.dumps(phase(a.phase, a.phase_rows, a.phase_boot)))
        return
    fl_rows = a.fairlearn_rows or a.rows
    stream = a.stream_rows or [max(BATCH, a.rows // 10), a.rows]
    plan = [("ours_point", a.rows, 0), *([("ours_point", fl_rows, 0)] if fl_rows != a.rows else []),
            ("ours_counts", a.rows, 0), *([("ours_counts", fl_rows, 0)] if fl_rows != a.rows else []), ("ours_boot", a.rows, a.n_boot), ("ours_boot", a.fairlearn_boot_rows, a.n_boot),
            ("ours_summary", a.fairlearn_boot_rows, a.n_boot),
            ("fairlearn_point", fl_rows, 0), ("fairlearn_boot", a.fairlearn_boot_rows, a.fairlearn_n_boot),
            *(("stream", n, 0) for n in stream)]
    results = []
    for name, n, b in plan:
        r = subprocess.run([sys.executable, __file__, "--phase", name, "--phase-rows", str(n), "--phase-boot", str(b)],
                           capture_output=True, text=True, check=True)
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"  done {name} rows={n:,} in {results[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    print(f"{'phase':<16}{'rows':>12}{'n_boot':>8}{'wall s':>10}{'CPU s':>9}{'peak RSS MB':>13}  note")
    for r in results:
        note = ""
        if "max_abs_diff_vs_ours" in r:
            note = f"max |ours - fairlearn| = {r['max_abs_diff_vs_ours']:.1e}"
        if r["phase"] in ("ours_point", "ours_counts"):
            note = f"build {r['build_seconds']:.2f} s + metrics {r['metrics_seconds']:.3f} s"
        if r["phase"] in ("ours_boot", "ours_summary"):
            note = f"{r['n_ci_columns']} intervals"
        print(f"{r['phase']:<16}{r['rows']:>12,}{r.get('n_boot', 0):>8}{r['seconds']:>10.2f}{r['timed_cpu_seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}  {note}")
    by = {(r["phase"], r["rows"]): r for r in results}
    if ("fairlearn_point", fl_rows) in by:
        fl = by[("fairlearn_point", fl_rows)]
        for ours in ("ours_point", "ours_counts"):
            o = by[(ours, fl_rows)]
            print(f"point metrics speed-up at {fl_rows:,} rows, {ours} vs MetricFrame: "
                  f"{fl['seconds'] / o['seconds']:.0f}x wall, {fl['timed_cpu_seconds'] / o['timed_cpu_seconds']:.0f}x CPU")
    out = ROOT / "bench" / "results" / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(a), "results": results}, indent=2))


if __name__ == "__main__":
    main()
