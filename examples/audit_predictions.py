"""Audit a CSV of predictions for group bias: no training, no cluster.

    python examples/audit_predictions.py predictions.csv --text text --label label --score score
    python examples/audit_predictions.py            # makes a sample CSV first (the demo corpus)

The CSV holds one row per text with the true label (0/1) and the model's score. The script finds
the identity groups each text mentions (debias' lexicons), prints the metrics by group with 95%
intervals (debias.MetricFrame), the largest gaps, and the bias AUCs (debias.bias_auc).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import debias


def sample_csv(path: Path, rows: int) -> Path:
    """The project's synthetic demo corpus with a deliberately biased keyword scorer."""
    from debias.corpus.demo import generate_demo_corpus

    df = generate_demo_corpus(rows, seed=0)
    label = pd.to_numeric(df["toxic"], errors="coerce")  # the demo corpus has messy rows on purpose
    df = df[label.isin([0, 1]) & df["text"].notna()].assign(toxic=label)
    rng = np.random.default_rng(0)
    text = df["text"].astype(str).str.lower()
    toxic = df["toxic"].astype(int).to_numpy()
    named = text.str.contains("gay|muslim|black").to_numpy()
    score = 0.2 + 0.35 * toxic + 0.25 * named + 0.35 * rng.random(len(df))
    pd.DataFrame({"text": df["text"], "label": toxic, "score": np.clip(score, 0, 1)}).to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", help="predictions CSV (default: a generated sample)")
    ap.add_argument("--text", default="text")
    ap.add_argument("--label", default="label")
    ap.add_argument("--score", default="score")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--rows", type=int, default=4000, help="rows of the generated sample")
    ap.add_argument("--n-boot", type=int, default=200)
    args = ap.parse_args(argv)
    path = Path(args.csv) if args.csv else sample_csv(Path(tempfile.mkdtemp()) / "predictions.csv", args.rows)
    df = pd.read_csv(path)
    missing = [c for c in (args.text, args.label, args.score) if c not in df.columns]
    if missing:
        print(f"error: {path} has no column(s) {missing}; columns: {', '.join(df.columns)}", file=sys.stderr)
        return 2
    label, score = pd.to_numeric(df[args.label], errors="coerce"), pd.to_numeric(df[args.score], errors="coerce")
    ok = label.isin([0, 1]) & score.notna() & df[args.text].notna()
    if not ok.all():
        print(f"skipped {int((~ok).sum()):,} rows without a 0/1 label, a score or a text", file=sys.stderr)
    df = df[ok].assign(**{args.label: label[ok].astype(int), args.score: score[ok]})
    from debias.identity.lexicon import AXES

    annotator = debias.IdentityAnnotator(debias.load_lexicon(list(AXES)))
    groups = annotator.detect_groups(df[args.text].astype(str).tolist())
    named = [g if g else ["(none)"] for g in groups]
    y, s = df[args.label].astype(int).to_numpy(), df[args.score].astype(float).to_numpy()
    p = (s >= args.threshold).astype(int)
    mf = debias.MetricFrame(metrics={"n": "count", "flagged": "selection_rate", "tpr": "tpr", "fpr": "fpr"},
                            y_true=y, y_pred=p, sensitive_features=named, n_boot=args.n_boot)
    table = mf.by_group[mf.by_group["n"] >= 30].sort_values("fpr", ascending=False)
    iv = mf.intervals.set_index(["group", "metric"])
    print(f"{len(df):,} texts, {sum(bool(g) for g in groups):,} mention an identity group; threshold {args.threshold}")
    print(f"{'group':<22}{'n':>6}  {'flagged':>8}  {'FPR [95% interval]':>24}  {'TPR':>6}")
    for g, r in table.iterrows():
        lo, hi = iv.loc[(g, "fpr"), "lo"], iv.loc[(g, "fpr"), "hi"]
        print(f"{g:<22}{int(r['n']):>6}  {r['flagged']:>8.3f}  {r['fpr']:>8.3f} [{lo:.3f}, {hi:.3f}]  {r['tpr']:>6.3f}")
    gaps = table[["fpr", "tpr"]].max() - table[["fpr", "tpr"]].min()
    print(f"largest gaps between groups (n >= 30): FPR {gaps['fpr']:.3f}, TPR {gaps['tpr']:.3f}")
    ba = debias.bias_auc(pd.DataFrame({"y_true": y, "y_score": s, "groups": groups}))
    worst = ba[ba["group"] != "overall"].nsmallest(3, "bpsn_auc")[["group", "subgroup_auc", "bpsn_auc", "bnsp_auc"]]
    print("lowest BPSN AUC (non-toxic texts naming the group scored above toxic texts that do not):")
    worst = worst.dropna(subset=["bpsn_auc"])
    print(worst.to_string(index=False, float_format=lambda v: f"{v:.3f}") if len(worst)
          else "  (no group has texts of both labels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
