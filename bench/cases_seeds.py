"""Training noise for a K-class case: a baseline and a mitigation, each retrained with N seeds.

    .venv/bin/python bench/cases_seeds.py --config configs/davidson_3class.yaml --seeds 3 \\
        --set train.max_steps_per_epoch=300 \\
        --variant 'baseline:balance.strategy=none;train.losses=[{name: cross_entropy, weight: 1.0}]' \\
        --variant 'mitigation:' --out bench/results/cases/davidson3-seeds.json

The protocol of bench/fairness.py (issue 23) for the cases of the multi-class issue: every variant
runs the real pipeline (`jobs.preprocess`, `jobs.train`, `jobs.evaluate`) in one Ray session, the
same splits for every seed (the split is the config's ``seed``; only ``train.seed`` changes), and
the table shows per metric the mean over seeds with the seeds' range. A difference between the two
variants is called one only when the gap between their means exceeds both seed ranges.

Metrics, from the test split's predictions and the evaluation's ``multiclass`` blocks: accuracy,
macro-F1, the focus class's recall (e.g. hate recall), the largest one-vs-rest demographic parity and
equalized odds differences over classes, the focus class's lowest BPSN AUC over groups, and the
counterfactual (argmax) flip rate and mean gap (total variation for K > 2). A binary case reads
the same from its fairness summary (class 1 against 0). Writes --out after every run (``--resume`` keeps finished ones).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fairness import seed_stats  # noqa: E402  (bench/fairness.py: the same across-seed statistic)

COLUMNS = [("accuracy", "accuracy ↑"), ("macro_f1", "macro-F1 ↑"), ("focus_recall", "focus-class recall ↑"),
           ("dp_max", "DP max over classes ↓"), ("eo_max", "EO max over classes ↓"),
           ("focus_min_bpsn", "focus-class worst BPSN AUC ↑"), ("flip_rate", "CF flip rate ↓"),
           ("cf_mean_gap", "CF mean gap ↓")]


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)  # metrics.json writes NaN (too few rows) as null


def case_metrics(run_dir: Path, focus: int, min_n: int = 30) -> dict[str, float]:
    """The table's metrics of one evaluated run: from the ``multiclass`` blocks for K > 2 classes,
    from the binary fairness summary (class 1 against 0) otherwise."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    ev = run_dir / "evaluate"
    test = pd.read_parquet(ev / "predictions" / "test")
    m = json.loads((ev / "metrics.json").read_text())["suites"]
    out: dict[str, float] = {}
    if "multiclass" in m["test"]:
        y = test["y_class"].astype(int).to_numpy()
        pred = np.stack([np.asarray(v, dtype=float) for v in test["y_proba"]]).argmax(axis=1)
        mc = m["test"]["multiclass"]
        crit = {r["class"]: r for r in mc["criteria"]}.get("max", {})
        bpsn = {r["class"]: r for r in mc["bias_auc"]}.get(mc["classes"][focus], {})
        cf = (m.get("counterfactual", {}).get("multiclass") or {}).get("counterfactual", {})
        out.update(dp_max=_num(crit.get("demographic_parity_difference")),
                   eo_max=_num(crit.get("equalized_odds_difference")),
                   focus_min_bpsn=_num(bpsn.get("min_bpsn_auc")),
                   flip_rate=_num(cf.get("flip_rate")), cf_mean_gap=_num(cf.get("mean_tv_gap")))
    else:
        y, pred = test["y_true"].astype(int).to_numpy(), test["y_pred"].astype(int).to_numpy()
        summ = m["test"]["summary"]
        crit = summ["criteria"]
        vals = [r["bpsn_auc"] for r in summ["bias_auc"]
                if r.get("group") != "overall" and (r.get("n") or 0) >= min_n and r.get("bpsn_auc") is not None]
        cf = (m.get("counterfactual", {}).get("summary") or {}).get("counterfactual") or {}
        out.update(dp_max=_num(crit.get("demographic_parity_difference", {}).get("value")),
                   eo_max=_num(crit.get("equalized_odds_difference", {}).get("value")),
                   focus_min_bpsn=float(min(vals)) if vals else math.nan,
                   flip_rate=_num(cf.get("flip_rate")), cf_mean_gap=_num(cf.get("mean_abs_gap")))
    out.update(accuracy=float(accuracy_score(y, pred)), macro_f1=float(f1_score(y, pred, average="macro")),
               focus_recall=float(recall_score(y == focus, pred == focus, zero_division=0)))
    return out


def summarise(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {key: seed_stats([r.get(key) for r in per_seed]) for key, _ in COLUMNS}


def differs(a: dict[str, float], b: dict[str, float]) -> bool:
    """Means apart by more than either variant's across-seed range."""
    if not a["n"] or not b["n"]:
        return False
    return abs(a["mean"] - b["mean"]) > max(a["max"] - a["min"], b["max"] - b["min"])


def print_table(doc: dict[str, Any]) -> None:
    names = list(doc["variants"])
    print("| variant | " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for n in names:
        s = doc["variants"][n].get("summary", {})
        cells = [f"{s[k]['mean']:.3f} ({s[k]['min']:.3f}–{s[k]['max']:.3f})" if s.get(k, {}).get("n") else "n/a"
                 for k, _ in COLUMNS]
        print(f"| {n} | " + " | ".join(cells) + " |")
    if len(names) == 2 and all("summary" in doc["variants"][n] for n in names):
        a, b = (doc["variants"][n]["summary"] for n in names)
        d = [k for k, _ in COLUMNS if differs(a[k], b[k])]
        print(f"{names[1]} vs {names[0]}, differs beyond both seed ranges: {', '.join(d) or 'none'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--variant", action="append", required=True,
                    help="NAME:override;override (the config's own settings: 'NAME:')")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="an override for every variant")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default=str(ROOT / "bench" / "results" / "cases"), help="run folders go here")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--rescore", action="store_true", help="recompute --out's metrics from the saved runs, no training")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from debias.config import load_config

    variants = {}
    for spec in args.variant:
        name, _, ovs = spec.partition(":")
        variants[name] = [o for o in ovs.split(";") if o.strip()]
    cfgs = {n: load_config(args.config, [*args.extra, *ov]) for n, ov in variants.items()}  # errors before Ray
    first = next(iter(cfgs.values()))
    if not Path(first.data.path).exists():
        print(f"skipped: no data at {first.data.path}", file=sys.stderr)
        return 0
    out = Path(args.out)
    work = Path(args.work) / Path(args.config).stem
    if args.rescore:
        doc = json.loads(out.read_text())
        for n, entry in doc["variants"].items():
            cfg = cfgs.get(n, first)
            for k, r in entry["seeds"].items():
                r.update(case_metrics(work / n / f"seed{k}", cfg.focus_id, min_n=cfg.evaluate.min_group_size))
            entry["summary"] = summarise(list(entry["seeds"].values()))
        out.write_text(json.dumps(doc, indent=2))
        print_table(doc)
        return 0
    doc: dict[str, Any] = {"config": args.config, "extra": args.extra, "seeds": args.seeds, "variants": {}}
    if args.resume and out.exists():
        doc = json.loads(out.read_text())
    from jobs import evaluate, preprocess, train
    from jobs.ray_session import ray_session

    t_all = time.time()
    with ray_session(first.ray):
        for n, cfg in cfgs.items():
            entry = doc["variants"].setdefault(n, {"overrides": variants[n], "seeds": {}})
            for k in range(args.seeds):
                if str(k) in entry["seeds"]:
                    continue
                run = work / n / f"seed{k}"
                cfg_k = cfg.model_copy(deep=True)
                cfg_k.train.seed = cfg.seed + k
                t0 = time.time()
                pre = work / n / "seed0" / "preprocess"
                if k and pre.is_dir():  # same splits and balance for every seed: preprocess once
                    run.mkdir(parents=True, exist_ok=True)
                    if not (run / "preprocess").exists():
                        (run / "preprocess").symlink_to(pre.resolve(), target_is_directory=True)
                else:
                    preprocess.run(cfg_k, str(run))
                train.run(cfg_k, str(run))
                evaluate.run(cfg_k, str(run))
                res = case_metrics(run, cfg.focus_id, min_n=cfg.evaluate.min_group_size)
                res["seconds"] = time.time() - t0
                entry["seeds"][str(k)] = res
                entry["summary"] = summarise(list(entry["seeds"].values()))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(doc, indent=2))
                print(f"[cases-seeds] {n} seed {k}: " + ", ".join(f"{key} {res[key]:.3f}" for key, _ in COLUMNS)
                      + f" ({res['seconds']:.0f} s)", file=sys.stderr, flush=True)
    print_table(doc)
    print(f"wrote {out} ({(time.time() - t_all) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
