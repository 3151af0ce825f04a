"""Generative-LM mitigations, before/after: each run's figures with intervals and the paired difference.

    .venv/bin/python bench/lm_mitigation.py runs/lm21/base instruction=runs/lm21/instruction \
        cda=runs/lm21/cda-audit [--n-boot 1000] [--out bench/results/lm_mitigation.json]

The first run dir is the baseline; every other is ``NAME=RUN_DIR``. Each must hold a finished
``debias audit-lm`` stage (``RUN_DIR/audit_lm``) of the same seeded items (same ``limit`` and
``seed``; this is checked). Per suite and statistic the table shows the baseline's and the run's
figure with their own 95% intervals (from ``metrics.json``) and the paired bootstrap interval of
the difference over the items both runs scored (:mod:`debias.lm.paired`); ``*`` marks a
difference whose interval excludes 0. Prints one Markdown table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (suite in metrics.json, statistic, its interval keys in the suite's overall row, format)
ROWS = [("crows_pairs", "stereotype_score", ("ci_low", "ci_high"), ".1f"),
        ("crows_pairs:gender", "stereotype_score", ("ci_low", "ci_high"), ".1f"),  # CDA swapped gender
        ("bbq_mc", "acc_ambig", ("acc_ambig_ci_low", "acc_ambig_ci_high"), ".3f"),
        ("bbq_mc", "acc_disambig", ("acc_disambig_ci_low", "acc_disambig_ci_high"), ".3f"),
        ("bbq_mc", "s_amb", ("s_amb_ci_low", "s_amb_ci_high"), ".1f"),
        ("bbq_mc", "s_dis", ("s_dis_ci_low", "s_dis_ci_high"), ".1f"),
        ("bbq_generate", "acc_ambig", ("acc_ambig_ci_low", "acc_ambig_ci_high"), ".3f"),
        ("bbq_generate", "acc_disambig", ("acc_disambig_ci_low", "acc_disambig_ci_high"), ".3f"),
        ("bbq_generate", "s_amb", ("s_amb_ci_low", "s_amb_ci_high"), ".1f"),
        ("bbq_generate", "s_dis", ("s_dis_ci_low", "s_dis_ci_high"), ".1f"),
        ("bbq_generate", "unparsed_rate", (None, None), ".3f"),
        ("counterfactual", "gap_mean", ("gap_ci_low", "gap_ci_high"), ".3f"),
        ("counterfactual", "flip_rate", ("flip_ci_low", "flip_ci_high"), ".3f"),
        ("counterfactual", "score_mean", (None, None), ".3f"),
        ("counterfactual", "refusal_rate", (None, None), ".3f")]


def load_run(run_dir: str) -> dict:
    """metrics, config and per-item outcomes of one audit run."""
    from debias.lm.audit import resolve_data_dir
    from debias.lm.bbq import read_bbq
    from debias.lm.config import AuditLMConfig
    from debias.lm.intrinsic import read_crows_pairs
    from debias.lm.paired import bbq_outcomes, cf_outcomes, crows_outcomes

    out = Path(run_dir) / "audit_lm"
    metrics = json.loads((out / "metrics.json").read_text())
    acfg = AuditLMConfig.model_validate(json.loads((out / "manifest.json").read_text())["config"])
    scored, generated = pd.read_parquet(out / "scored.parquet"), pd.read_parquet(out / "generated.parquet")
    outcomes = {}
    if "crows_pairs" in metrics["suites"]:
        outcomes["crows_pairs"] = crows_outcomes(scored, score=acfg.crows_score)
        pairs = read_crows_pairs(resolve_data_dir(acfg) / "crows-pairs", limit=acfg.limit, seed=acfg.seed)
        gender = set(pairs.loc[pairs["bias_type"] == "gender", "item_id"])
        outcomes["crows_pairs:gender"] = outcomes["crows_pairs"][outcomes["crows_pairs"]["item_id"].isin(gender)]
    if {"bbq_mc", "bbq_generate"} & set(metrics["suites"]):
        items = read_bbq(resolve_data_dir(acfg) / "bbq", categories=acfg.bbq_categories, limit=acfg.limit,
                         seed=acfg.seed)
        outcomes.update(bbq_outcomes(items, scored, generated, score=acfg.bbq_score))
    if "overall" in metrics["suites"].get("counterfactual", {}):
        outcomes["counterfactual"] = cf_outcomes(generated, threshold=acfg.classifier_threshold)
    return {"metrics": metrics, "config": acfg, "outcomes": outcomes}


def _overall(metrics: dict, suite: str) -> dict | None:
    """The suite's overall row; ``suite:part`` names a bias type's or category's row."""
    suite, _, part = suite.partition(":")
    m = metrics["suites"].get(suite) or {}
    for key, name in (("by_bias_type", "bias_type"), ("by_category", "category")):
        if key in m:
            return next((r for r in m[key] if r[name] == part), None) if part else m[key][0]
    return m.get("overall")


def compare(base: dict, run: dict, *, n_boot: int, seed: int) -> list[dict]:
    from debias.lm.paired import paired_difference

    rows = []
    for suite, stat, (lo, hi), _ in ROWS:
        b, a = _overall(base["metrics"], suite), _overall(run["metrics"], suite)
        if b is None or a is None or suite not in base["outcomes"] or suite not in run["outcomes"]:
            continue
        row = {"suite": suite, "statistic": stat, "n": b.get("n", b.get("n_sets")),
               "before": b[stat], "before_ci": [b.get(lo), b.get(hi)] if lo else None,
               "after": a[stat], "after_ci": [a.get(lo), a.get(hi)] if lo else None}
        if stat != "refusal_rate":  # a per-row rate: the per-run figure only
            d = paired_difference(base["outcomes"][suite], run["outcomes"][suite], stat, n_boot=n_boot, seed=seed)
            row.update({"diff": d["diff"], "diff_ci": [d["ci_low"], d["ci_high"]], "paired_n": d["n"]})
        rows.append(row)
    return rows


def _fmt(v, ci, f: str) -> str:
    if v is None:
        return "n/a"
    s = format(v, f)
    return s + (f" [{format(ci[0], f)}, {format(ci[1], f)}]" if ci and ci[0] is not None else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline")
    ap.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "lm_mitigation.json"))
    args = ap.parse_args()
    base = load_run(args.baseline)
    result = {"baseline": args.baseline, "runs": {}}
    fmt = {(s, st): f for s, st, _, f in ROWS}
    print("| run | suite | statistic | n | baseline [95% CI] | run [95% CI] | paired difference [95% CI] |")
    print("|---|---|---|---:|---|---|---|")
    for spec in args.runs:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"runs are NAME=RUN_DIR; found {spec!r}")
        run = load_run(path)
        for k in ("limit", "seed", "suites", "cf_swap_rows"):
            if getattr(run["config"], k) != getattr(base["config"], k):
                raise SystemExit(f"{path}: audit_lm.{k} differs from the baseline's; the items would not be paired")
        rows = compare(base, run, n_boot=args.n_boot, seed=args.seed)
        result["runs"][name] = {"run_dir": path, "mitigation": run["metrics"].get("mitigation"),
                                "model": run["metrics"]["model"], "rows": rows}
        for r in rows:
            f = fmt[(r["suite"], r["statistic"])]
            diff = _fmt(r.get("diff"), r.get("diff_ci"), f)
            if r.get("diff_ci") and r["diff_ci"][0] is not None and (r["diff_ci"][0] > 0 or r["diff_ci"][1] < 0):
                diff += " *"
            print(f"| {name} | {r['suite']} | {r['statistic']} | {r['n']} | {_fmt(r['before'], r['before_ci'], f)} "
                  f"| {_fmt(r['after'], r['after_ci'], f)} | {diff} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
