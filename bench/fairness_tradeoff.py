"""What each fairness target costs: decision-threshold trade-offs of bench/fairness.py's trained runs.

    .venv/bin/python bench/fairness_tradeoff.py --out bench/results/fairness/results-full-3seeds.json
    .venv/bin/python bench/fairness_tradeoff.py --out ... --plot docs/fairness_tradeoff.png

Reads the saved predictions of every variant and seed in a results file of bench/fairness.py (no
training, no Ray) and answers two questions the main table cannot:

1. **A decision rule that does not level down.** Besides each variant's F1-best validation
   threshold (the main table's rule), the *recall-matched* rule: the highest threshold at which the
   variant's validation recall reaches the baseline's validation recall (same seed). Validation rows
   only, so it is a rule a user can deploy. Rows: test F1, FPR gap on non-toxic templates, flip rate,
   toxic-identity recall overall and for the worst group, and the worst (group, label) accuracy on
   bias-madlibs (the WILDS worst-group definition), each the mean over seeds with the seeds' range.
2. **The threshold front.** Every threshold of a grid, scored on the evaluation suites (so this is a
   description of the trade-off, not a tuned model): for each variant, the lowest FPR gap reachable
   while toxic recall stays within 2 points of the baseline's, the worst group's toxic recall is
   not below the baseline's, in-domain F1 within 1 point of it and the overall false-positive rate
   on non-toxic templates not above it (a gap closed by flagging everyone is no gain), and the
   flip rate there. ``--plot`` draws FPR gap against toxic recall
   over the thresholds, one curve per variant.

Writes ``<out>-tradeoff.json`` beside the results file and prints both tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fairness  # noqa: E402  (bench/fairness.py: the run layout and the prediction loader)

from debias.metrics import (  # noqa: E402
    best_f1_threshold,
    flip_rate_sweep,
    recall_matched_threshold,
    threshold_sweep,
)

GRID = np.round(np.arange(0.02, 0.99, 0.02), 4)
KEYS = [("test_f1", "in-domain F1"), ("fpr_gap", "FPR gap, non-toxic templates ↓"),
        ("template_fpr", "FPR, non-toxic templates ↓"), ("flip_rate", "CF flip rate ↓"),
        ("toxic_recall", "toxic-identity recall ↑"), ("worst_group_toxic_recall", "worst-group toxic recall ↑"),
        ("worst_group_accuracy", "worst (group, label) accuracy, madlibs ↑")]


def _run_dirs(doc: dict[str, Any], name: str) -> dict[str, Path]:
    base = fairness._runs_dir(doc["quick"]) / name
    r = doc["variants"][name]
    return {k: base / f"seed{k}" for k in r["seeds"]} if "seeds" in r else {"0": base}


def _at(frames: dict[str, pd.DataFrame | None], thresholds, min_n: int) -> pd.DataFrame:
    """Every metric of KEYS at each threshold, from one run's predictions."""
    mad, tpl, test, cf = frames["madlibs"], frames["templates"], frames["test"], frames["counterfactual"]
    toxic_id = pd.concat([d[["y_true", "y_score", "groups"]] for d in (mad, tpl) if d is not None], ignore_index=True)
    toxic_id = toxic_id[toxic_id["y_true"] == 1]
    tox = threshold_sweep(toxic_id["y_true"], toxic_id["y_score"], list(toxic_id["groups"]), thresholds,
                          min_group_size=min_n)
    m = threshold_sweep(mad["y_true"], mad["y_score"], list(mad["groups"]), thresholds, min_group_size=min_n)
    te = threshold_sweep(test["y_true"], test["y_score"], [[]] * len(test), thresholds)
    tp = te["recall"] * (test["y_true"] == 1).sum()
    fp = te["fpr"] * (test["y_true"] == 0).sum()
    fn = (test["y_true"] == 1).sum() - tp
    out = pd.DataFrame(index=tox.index)
    out["test_f1"] = (2 * tp / (2 * tp + fp + fn)).to_numpy()
    out["fpr_gap"] = m["fpr_gap"].to_numpy()
    out["template_fpr"] = m["fpr"].to_numpy()
    out["flip_rate"] = flip_rate_sweep(cf["pair_id"], cf["y_score"], thresholds).to_numpy()
    out["toxic_recall"] = tox["recall"].to_numpy()
    out["worst_group_toxic_recall"] = tox["worst_group_recall"].to_numpy()
    out["worst_group_accuracy"] = m["worst_group_accuracy"].to_numpy()
    return out


def analyse(results_json: Path) -> dict[str, Any]:
    doc = json.loads(results_json.read_text())
    min_n = 10 if doc["quick"] else 50
    names = [n for n in doc["variants"] if n not in fairness.POST]  # post-processing: not one threshold
    if "baseline" not in names:
        raise SystemExit("the results file needs a baseline variant: the rules and targets are relative to it")
    frames = {n: {k: fairness.load_frames(d) for k, d in _run_dirs(doc, n).items()} for n in names}
    # the baseline's validation recall at its own F1-best threshold, per seed: the recall to match
    base_recall = {}
    for k, f in frames["baseline"].items():
        v = f["val"]
        t, _ = best_f1_threshold(v["y_true"], v["y_score"])
        base_recall[k] = float((v.loc[v["y_true"] == 1, "y_score"] >= t).mean())
    rules: dict[str, Any] = {}
    curves: dict[str, pd.DataFrame] = {}
    for n in names:
        per_rule: dict[str, list[dict[str, float]]] = {"val_f1": [], "recall_matched": []}
        sweeps = []
        for k, f in frames[n].items():
            v = f["val"]
            t_f1, _ = best_f1_threshold(v["y_true"], v["y_score"])
            target = base_recall.get(k, base_recall["0"])
            t_rm = recall_matched_threshold(v["y_true"], v["y_score"], target)
            row = _at(f, [t_f1, t_rm], min_n)
            per_rule["val_f1"].append({"threshold": t_f1, **row.iloc[0].to_dict()})
            per_rule["recall_matched"].append({"threshold": t_rm, **row.iloc[1].to_dict()})
            sweeps.append(_at(f, GRID, min_n))
        rules[n] = {r: {key: fairness.seed_stats([d[key] for d in ds]) for key in ["threshold", *dict(KEYS)]}
                    for r, ds in per_rule.items()}
        curves[n] = pd.concat(sweeps).groupby(level=0).mean()  # mean over seeds at each threshold
    # the front: the lowest FPR gap with no levelling down, against the baseline at its own rule;
    # an F1 floor too, or flagging everything (every FPR 1, gap 0) would win
    b = rules["baseline"]["val_f1"]
    floor_recall = b["toxic_recall"]["mean"] - 0.02
    floor_worst = b["worst_group_toxic_recall"]["mean"]
    floor_f1 = b["test_f1"]["mean"] - 0.01
    ceil_fpr = b["template_fpr"]["mean"]  # nor by flagging more non-toxic sentences about everyone
    front = {}
    for n, c in curves.items():
        ok = c[(c["toxic_recall"] >= floor_recall) & (c["worst_group_toxic_recall"] >= floor_worst)
               & (c["test_f1"] >= floor_f1) & (c["template_fpr"] <= ceil_fpr)]
        ok = ok.dropna(subset=["fpr_gap"])
        if len(ok):
            t = float(ok["fpr_gap"].idxmin())
            front[n] = {"threshold": t, **{k: float(c.loc[t, k]) for k in dict(KEYS)}}
        else:
            front[n] = None
    return {"results": str(results_json), "quick": doc["quick"], "min_group_size": min_n,
            "baseline_val_recall": base_recall, "rules": rules,
            "floors": {"toxic_recall": floor_recall, "worst_group_toxic_recall": floor_worst, "test_f1": floor_f1,
                       "template_fpr_ceiling": ceil_fpr},
            "front": front, "curves": {n: c.reset_index().to_dict(orient="list") for n, c in curves.items()}}


def _cell(s: dict[str, float]) -> str:
    if not s or not s["n"]:
        return "n/a"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{s['mean']:.3f}"
    return f"{s['mean']:.3f} ({s['min']:.3f}–{s['max']:.3f})"


def print_tables(res: dict[str, Any]) -> None:
    print("| variant | rule | threshold | " + " | ".join(h for _, h in KEYS) + " |")
    print("|---" * (len(KEYS) + 3) + "|")
    for n, rr in res["rules"].items():
        for rule, s in rr.items():
            print(f"| {n} | {rule} | {_cell(s['threshold'])} | " + " | ".join(_cell(s[k]) for k, _ in KEYS) + " |")
    f = res["floors"]
    print(f"\nthreshold front (mean over seeds, evaluation suites): lowest FPR gap with toxic recall >= "
          f"{f['toxic_recall']:.3f}, worst-group toxic recall >= {f['worst_group_toxic_recall']:.3f} and "
          f"in-domain F1 >= {f['test_f1']:.3f}, template FPR <= {f['template_fpr_ceiling']:.3f}")
    print("| variant | threshold | " + " | ".join(h for _, h in KEYS) + " |")
    print("|---" * (len(KEYS) + 2) + "|")
    for n, p in res["front"].items():
        if p is None:
            print(f"| {n} | no threshold meets the floors |" + " |" * (len(KEYS) - 1))
        else:
            print(f"| {n} | {p['threshold']:.2f} | " + " | ".join(f"{p[k]:.3f}" for k, _ in KEYS) + " |")


def plot(res: dict[str, Any], png: Path) -> None:
    from debias.evaluation.report.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for n, c in res["curves"].items():
        (line,) = ax.plot(c["fpr_gap"], c["toxic_recall"], lw=1.3, label=n)
        p = res["rules"][n]["val_f1"]
        ax.scatter([p["fpr_gap"]["mean"]], [p["toxic_recall"]["mean"]], s=30, zorder=3, color=line.get_color())
        q = res["rules"][n]["recall_matched"]
        ax.scatter([q["fpr_gap"]["mean"]], [q["toxic_recall"]["mean"]], s=40, marker="x", zorder=3,
                   color=line.get_color())
    ax.axhline(res["floors"]["toxic_recall"], color="grey", ls=":", lw=1)
    ax.text(0.01, res["floors"]["toxic_recall"], " baseline recall - 2 pts", fontsize=7, va="bottom")
    ax.set_xlabel("FPR gap on non-toxic identity templates (lower is better)")
    ax.set_ylabel("recall on toxic identity sentences (higher is better)")
    ax.set_title("Each curve: one variant over decision thresholds (mean of seeds);\n"
                 "dot: its F1-best validation threshold; x: the recall-matched one (seeds' means)", loc="left", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="a results file of bench/fairness.py (with a baseline)")
    ap.add_argument("--plot", default=None, help="also draw FPR gap vs toxic recall over thresholds into this PNG")
    args = ap.parse_args()
    path = Path(args.out)
    if not path.exists():
        print(f"skipped: no results file at {path} (run bench/fairness.py first)", file=sys.stderr)
        return 0
    res = analyse(path)
    dest = path.with_name(path.stem + "-tradeoff.json")
    dest.write_text(json.dumps(res, indent=2, default=float))
    print_tables(res)
    if args.plot:
        plot(res, Path(args.plot))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
