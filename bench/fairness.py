"""Measured bias reduction on real corpora: one row per mitigation, same seed and budget.

    make bench-fairness                    # every variant (about 1.5-2 h on 2 cores)
    make bench-fairness-quick              # a subset and two variants (< 10 min)
    .venv/bin/python bench/fairness.py --variants baseline,reweight
    .venv/bin/python bench/fairness.py --variants baseline,baseline_eo --seeds 3   # training noise

Training corpus: ../shared/data/davidson-hate-offensive (toxic = hate or offensive vs neither).
Evaluation: the in-domain test split; bias-madlibs (identity templates, toxic and not); the test
split's counterfactual pairs; CrowS-Pairs (score gap between the two sentences of each pair).
Every variant runs the real pipeline (`jobs.preprocess`, `jobs.train`, `jobs.evaluate`) in one
Ray session; the table's metrics and their 95% intervals are computed here from the written
predictions with a row bootstrap (the worst-group AUCs: extremum intervals over the groups' DeLong
intervals, see debias.metrics.intervals). Writes bench/results/fairness/results.json (after every
variant; --resume picks up where a run stopped) and prints the table for docs/RESULTS.md;
--plot PNG draws the Pareto plot (in-domain AUC vs worst-group BPSN AUC) from that file.

Post-processing variants (``*_eo``) reuse their base variant's trained model and only evaluate
it with per-group thresholds fitted on the validation split (evaluate.group_thresholds); their
decisions are the evaluation's own. ``--seeds N`` retrains every variant with N training seeds
(``train.seed``, same splits): the table then shows the mean over seeds, the across-seed range
and the first seed's evaluation interval, and a difference from the baseline is called one only
when it exceeds both the larger across-seed range and the larger evaluation half-interval.
The recall columns guard against levelling down: toxic-identity recall (TPR on the toxic half of
bias-madlibs and of the project's templates) overall and for the worst group.
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
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "bench" / "results" / "fairness"
CONFIG = ROOT / "configs" / "bench_fairness.yaml"
SWAP_AXES = "[gender, religion, race_ethnicity, sexual_orientation, gender_identity, nationality]"

# name -> (description, overrides). Same seed, model, epochs and step budget for all.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("cross-entropy", []),
    "reweight": ("Kamiran-Calders reweighting", ["balance.strategy=reweight"]),
    "oversample": ("group-aware oversampling (hybrid to independence)", ["balance.strategy=hybrid"]),
    "cda": ("counterfactual data augmentation", ["augment.mode=append", f"augment.axes={SWAP_AXES}"]),
    "dixon": ("Dixon et al. non-toxic identity supplement", ["data.path=@dixon"]),
    "group_parity": ("group loss parity", ["train.losses=[{name: cross_entropy}, {name: group_loss_parity, weight: 1.0}]"]),
    "soft_eo": ("soft equalized odds", ["train.losses=[{name: cross_entropy}, {name: soft_equalized_odds, weight: 1.0}]"]),
    "clp": ("counterfactual logit pairing (on CDA pairs)",
            ["augment.mode=append", f"augment.axes={SWAP_AXES}",
             "train.losses=[{name: cross_entropy}, {name: counterfactual_logit_pairing, weight: 1.0}]"]),
    "adversarial": ("adversarial debiasing", ["train.losses=[{name: cross_entropy}, {name: adversarial, weight: 0.3}]"]),
    "group_dro": ("Group DRO", ["train.losses=[{name: cross_entropy}, {name: group_dro, weight: 1.0}]"]),
    "dixon_clp": ("supplement + CDA + counterfactual logit pairing",
                  ["data.path=@dixon", "augment.mode=append", f"augment.axes={SWAP_AXES}",
                   "train.losses=[{name: cross_entropy}, {name: counterfactual_logit_pairing, weight: 1.0}]"]),
    "parity_clp": ("group loss parity + counterfactual logit pairing (on CDA pairs)",
                   ["augment.mode=append", f"augment.axes={SWAP_AXES}",
                    "train.losses=[{name: cross_entropy}, {name: counterfactual_logit_pairing, weight: 1.0},"
                    " {name: group_loss_parity, weight: 1.0}]"]),
    "combined": ("supplement + CDA + counterfactual logit pairing + reweight",
                 ["data.path=@dixon", "balance.strategy=reweight", "augment.mode=append",
                  f"augment.axes={SWAP_AXES}",
                  "train.losses=[{name: cross_entropy}, {name: counterfactual_logit_pairing, weight: 1.0}]"]),
    "combined_both": ("combined, the supplement with toxic identity tweets (MLMA) added",
                      ["data.path=@dixon_both", "balance.strategy=reweight", "augment.mode=append",
                       f"augment.axes={SWAP_AXES}",
                       "train.losses=[{name: cross_entropy}, {name: counterfactual_logit_pairing, weight: 1.0}]"]),
}
# The counterfactual-pairing weight is what trades in-domain AUC for flips: a sweep of it on the
# best recipe draws the loss-weight front (docs/RESULTS.md, issue 23).
for _w in ("0.3", "3.0"):
    VARIANTS[f"combined_both_clp{_w}"] = (
        f"combined_both with counterfactual logit pairing weight {_w} (1.0 in combined_both)",
        [*VARIANTS["combined_both"][1][:-1],
         f"train.losses=[{{name: cross_entropy}}, {{name: counterfactual_logit_pairing, weight: {_w}}}]"])
# Post-processing: the base variant's model, decided by per-group thresholds fitted on val.
POST = {"baseline_eo": "baseline", "combined_eo": "combined"}
for _name, _base in POST.items():
    VARIANTS[_name] = (f"{_base} + per-group thresholds (equal opportunity, fitted on val)",
                       [*VARIANTS[_base][1], "evaluate.group_thresholds=equal_opportunity"])
QUICK = ["baseline", "combined"]


def prepare_corpora(rows: int | None) -> dict[str, Path]:
    """The training corpora as (id, text, toxic) parquet under bench/results (never committed)."""
    out = WORK / "data"
    out.mkdir(parents=True, exist_ok=True)
    tag = f"-{rows}" if rows else ""
    base, dixon = out / f"davidson{tag}.parquet", out / f"davidson-dixon{tag}.parquet"
    if not base.exists():
        d = pd.read_csv(DATA / "davidson-hate-offensive" / "labeled_data.csv")
        df = pd.DataFrame({"id": "dav" + d.iloc[:, 0].astype(str), "text": d["tweet"],
                           "toxic": (d["class"] != 2).astype(int)})
        if rows:
            df = df.sample(n=min(rows, len(df)), random_state=0).sort_index()
        df.to_parquet(base, index=False)
        w = pd.read_csv(DATA / "wiki-toxicity" / "toxicity_debiasing_data.tsv", sep="\t")
        w = w[~w["is_toxic"].astype(str).str.lower().eq("true")]
        if rows:
            w = w.sample(n=min(len(w), max(200, rows // 5)), random_state=0)
        sup = pd.DataFrame({"id": "wiki" + w["rev_id"].astype(str), "text": w["comment"], "toxic": 0})
        pd.concat([df, sup], ignore_index=True).to_parquet(dixon, index=False)
    # The supplement plus toxic sentences aimed at groups (MLMA hate speech: offensive or hateful
    # tweets with a target group; half as many as the non-toxic supplement). Dixon et al. balance
    # the non-toxic side only, which teaches "identity word => not toxic" (the levelling down in
    # docs/RESULTS.md); this variant asks whether toxic identity rows undo that.
    both = out / f"davidson-dixon-both{tag}.parquet"
    if not both.exists():
        m = pd.read_csv(DATA / "mlma-hate-speech" / "en_dataset.csv")
        m = m[~m["sentiment"].astype(str).str.contains("normal") & ~m["group"].isin(["other", "individual"])]
        n_sup = int((pd.read_parquet(dixon)["id"].str.startswith("wiki")).sum())
        m = m.sample(n=min(len(m), max(100, n_sup // 2)), random_state=0)
        tox = pd.DataFrame({"id": "mlma" + m["HITId"].astype(str), "text": m["tweet"].astype(str), "toxic": 1})
        pd.concat([pd.read_parquet(dixon), tox], ignore_index=True).to_parquet(both, index=False)
    return {"base": base, "dixon": dixon, "dixon_both": both}


def variant_config(name: str, corpora: dict[str, Path], extra: list[str]):
    from debias.config import load_config

    overrides = [o.replace("@dixon_both", str(corpora["dixon_both"])).replace("@dixon", str(corpora["dixon"]))
                 for o in VARIANTS[name][1]]
    return load_config(CONFIG, [f"data.path={corpora['base']}", *overrides, *extra])


def _preprocess_key(cfg) -> str:
    return json.dumps([cfg.data.path, cfg.balance.model_dump(), cfg.augment.model_dump(), cfg.seed], sort_keys=True)


# ---------------------------------------------------------------- metrics with intervals

def _boot(values_fn, frames: list[pd.DataFrame], n_boot: int, seed: int) -> tuple[float, float, float]:
    """Point value and percentile 95% interval of ``values_fn`` under a row bootstrap."""
    point = values_fn(*frames)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        res = [f.iloc[rng.integers(0, len(f), len(f))] for f in frames]
        v = values_fn(*res)
        if v is not None and not math.isnan(v):
            draws.append(v)
    if not draws:
        return point, math.nan, math.nan
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return point, float(lo), float(hi)


def _auc(df: pd.DataFrame) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(df["y_true"], df["y_score"])) if df["y_true"].nunique() == 2 else math.nan


def _f1(df: pd.DataFrame) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(df["y_true"], df["y_pred"], zero_division=0))


def _bias(df: pd.DataFrame, min_n: int) -> dict[str, float]:
    from debias.metrics import bias_auc, final_bias_metric

    ba = bias_auc(df[["y_true", "y_score", "groups"]])
    g = ba[ba["group"] != "overall"]
    if "n" in g.columns:
        g = g[g["n"] >= min_n]
    return {"worst_subgroup_auc": float(g["subgroup_auc"].min()), "worst_bpsn_auc": float(g["bpsn_auc"].min()),
            "worst_bnsp_auc": float(g["bnsp_auc"].min()), "final_bias": float(final_bias_metric(ba))}


def _recall(df: pd.DataFrame) -> float:
    pos = df[df["y_true"] == 1]
    return float(pos["y_pred"].mean()) if len(pos) else math.nan


def _worst_recall(df: pd.DataFrame, min_n: int) -> float:
    pos = df[df["y_true"] == 1].explode("groups").dropna(subset=["groups"])
    by = pos.groupby("groups")["y_pred"].agg(["mean", "size"])
    by = by[by["size"] >= min_n]
    return float(by["mean"].min()) if len(by) else math.nan


def _equality(df: pd.DataFrame, key: str, min_n: int) -> float:
    """Dixon et al. 2018's FPED or FNED (sum over groups of |rate_g - rate|) of the decisions."""
    from debias.metrics import equality_differences

    return equality_differences(df[["y_true", "y_pred", "groups"]], min_group_size=min_n)[key]


def _fpr_gap(df: pd.DataFrame, min_n: int) -> float:
    neg = df[df["y_true"] == 0]
    ex = neg.explode("groups").dropna(subset=["groups"])
    by = ex.groupby("groups")["y_pred"].agg(["mean", "size"])
    by = by[by["size"] >= min_n]
    return float(by["mean"].max() - by["mean"].min()) if len(by) >= 2 else math.nan


def load_frames(run_dir: Path) -> dict[str, pd.DataFrame | None]:
    """A run's saved predictions: test, val, madlibs, counterfactual and (when scored) templates.

    In-domain suites hold Davidson rows only: the Dixon supplement is split like the corpus, so a
    variant that adds it would otherwise be scored on a different (easier) test set."""
    pred = run_dir / "evaluate" / "predictions"

    def load(suite: str) -> pd.DataFrame:
        df = pd.read_parquet(pred / suite)
        if "groups" in df.columns:
            df["groups"] = df["groups"].map(lambda g: list(g) if g is not None else [])
        return df

    test, val, mad, cf = load("test"), load("val"), load("madlibs"), load("counterfactual")
    tpl = load("templates") if (pred / "templates").is_dir() else None
    test, val = test[test["id"].str.startswith("dav")].copy(), val[val["id"].str.startswith("dav")].copy()
    cf = cf[cf["pair_id"].astype(str).str.startswith("dav")].copy()
    return {"test": test, "val": val, "madlibs": mad, "counterfactual": cf, "templates": tpl}


def table_metrics(run_dir: Path, *, n_boot: int, seed: int, min_n: int = 50) -> dict[str, Any]:
    f = load_frames(run_dir)
    test, val, mad, cf, tpl = f["test"], f["val"], f["madlibs"], f["counterfactual"], f["templates"]
    rule = json.loads((run_dir / "evaluate" / "metrics.json").read_text()).get("decision_rule") or {}
    frames = [d for d in (test, mad, cf, tpl) if d is not None]
    if rule.get("cells"):  # per-group thresholds: the evaluation's own decisions (fitted on val)
        thr = "per-group (" + str(rule.get("constraint")) + ")"
    else:  # each variant's decision threshold: the F1-best one on its own validation rows (never test)
        from debias.metrics import best_f1_threshold

        thr, _ = best_f1_threshold(val["y_true"], val["y_score"])
        for d in frames:
            d["y_pred"] = (d["y_score"] >= thr).astype("int8")
    out: dict[str, Any] = {"threshold_val_f1": thr, "n_rows": {"test": len(test), "val": len(val),
                                                            "madlibs": len(mad), "cf_pairs": cf["pair_id"].nunique(),
                                                            "templates": 0 if tpl is None else len(tpl)}}
    # Levelling down: recall on toxic identity sentences (madlibs and, when scored, the templates).
    toxic_id = pd.concat([d[["y_true", "y_pred", "groups"]] for d in (mad, tpl) if d is not None], ignore_index=True)
    out["toxic_recall"] = _boot(_recall, [toxic_id], n_boot, seed)
    out["worst_group_toxic_recall"] = _boot(lambda d: _worst_recall(d, min_n), [toxic_id], max(20, n_boot // 5), seed)
    out["test_auc"] = _boot(_auc, [test], n_boot, seed)
    out["test_f1"] = _boot(_f1, [test], n_boot, seed)
    out["madlibs_auc"] = _boot(_auc, [mad], n_boot, seed)
    b = max(20, n_boot // 5)  # the bias AUCs are the slow ones: fewer draws, stated in the doc
    keys = ("final_bias",)
    point = _bias(mad, min_n)
    rng = np.random.default_rng(seed)
    draws = [_bias(mad.iloc[rng.integers(0, len(mad), len(mad))], min_n) for _ in range(b)]
    for key in keys:
        vals = [d[key] for d in draws if not math.isnan(d[key])]
        lo, hi = np.percentile(vals, [2.5, 97.5]) if vals else (math.nan, math.nan)
        out[key] = (point[key], float(lo), float(hi))
    # worst-group AUCs: a percentile bootstrap of a minimum is biased (it excluded its own estimate,
    # issue 24); the extremum interval over the groups' own DeLong intervals instead
    from debias.metrics.group_intervals import worst_bias_auc

    worst = worst_bias_auc(mad[["y_true", "y_score", "groups"]], min_group_size=min_n)
    for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        out[f"worst_{m}"] = (worst[m]["value"], worst[m]["lo"], worst[m]["hi"])
    out["fpr_gap_nontoxic_templates"] = _boot(lambda d: _fpr_gap(d, min_n), [mad], n_boot, seed)
    # Dixon et al.'s own statistics on their own templates (bias-madlibs). Point values only: a
    # sum of |rate_g - rate| over groups is biased upwards under a row bootstrap (every group's
    # resampling noise adds to it), so its percentile interval excluded its own estimate here.
    for key in ("fped", "fned"):
        out[f"madlibs_{key}"] = (_equality(mad, key, min_n), math.nan, math.nan)

    # Counterfactual metrics are means over pairs: bootstrap the pairs (vectorised).
    g = cf.groupby("pair_id")
    per_pair = pd.DataFrame({"gap": g["y_score"].max() - g["y_score"].min(), "flip": (g["y_pred"].nunique() > 1)})
    nb = min(n_boot, 100)
    pick = np.random.default_rng(seed).integers(0, len(per_pair), (nb, len(per_pair))) if nb else None
    for key, col in (("cf_flip_rate", "flip"), ("cf_mean_gap", "gap")):
        v = per_pair[col].to_numpy(dtype=float)
        if nb and len(v):
            lo, hi = np.percentile(v[pick].mean(axis=1), [2.5, 97.5])
            out[key] = (float(v.mean()), float(lo), float(hi))
        else:
            out[key] = (float(v.mean()) if len(v) else math.nan, math.nan, math.nan)
    crows = run_dir / "evaluate" / "metrics.json"
    m = json.loads(crows.read_text())
    pg = m["suites"].get("crows", {}).get("pair_gaps") or [{}]
    out["crows_mean_gap"] = (pg[0].get("mean_gap"), pg[0].get("mean_gap_lo", math.nan), pg[0].get("mean_gap_hi", math.nan))
    return out


# ---------------------------------------------------------------- driver

def _runs_dir(quick: bool) -> Path:
    return WORK / ("runs-quick" if quick else "runs")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a subset and two variants (CI-sized)")
    ap.add_argument("--variants", default=None, help=f"comma list from: {', '.join(VARIANTS)}")
    ap.add_argument("--rows", type=int, default=None, help="subsample the training corpus")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--set", dest="extra", action="append", default=[], help="extra config override")
    ap.add_argument("--out", default=None,
                    help="results file (default bench/results/fairness/results.json, results-quick.json with --quick)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the variants already in --out (same mode) and run only the rest")
    ap.add_argument("--rescore", action="store_true",
                    help="recompute the table metrics of the variants already in --out from their saved predictions")
    ap.add_argument("--plot", default=None, help="only draw the Pareto plot of --out's results into this PNG")
    ap.add_argument("--seeds", type=int, default=1,
                    help="train every variant with this many training seeds (train.seed = seed + k, same splits)")
    args = ap.parse_args()
    # The quick run keeps its own results and run folders: it must never overwrite the full run's.
    args.out = args.out or str(WORK / ("results-quick.json" if args.quick else "results.json"))
    if args.plot:
        return plot(Path(args.out), Path(args.plot))
    if args.rescore:
        return rescore(Path(args.out))
    if not DATA.is_dir():
        print(f"skipped: the reference data sets are not at {DATA}", file=sys.stderr)
        return 0
    names = args.variants.split(",") if args.variants else (QUICK if args.quick else list(VARIANTS))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    extra = list(args.extra)
    rows = args.rows
    if args.quick:
        rows = rows or 4000
        extra = ["train.max_steps_per_epoch=60", *extra]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpora = prepare_corpora(rows)
    from jobs import evaluate, preprocess, train
    from jobs.ray_session import ray_session

    # a post-processing variant needs its base model: run the base first (in the same seeds)
    order = [b for b in dict.fromkeys(POST[n] for n in names if n in POST) if b not in names] + names
    configs = {n: variant_config(n, corpora, extra) for n in order}
    if args.quick:  # smaller evaluation suites
        for cfg in configs.values():
            for sc in cfg.evaluate.suites:
                sc.limit = {"madlibs": 1500, "crows": 300}.get(sc.name, sc.limit)
    results: dict[str, Any] = {}
    out_path = Path(args.out)
    if args.resume and out_path.exists():
        prev = json.loads(out_path.read_text())
        if (prev.get("quick") == args.quick and prev.get("rows") == rows and prev.get("extra") == extra
                and prev.get("seeds", 1) == args.seeds):
            results = {n: r for n, r in prev["variants"].items() if n in names}
            print(f"[bench-fairness] resuming: {', '.join(results) or 'none'} already done", file=sys.stderr)
    t_all = time.time()

    def save() -> None:  # after every variant, so a crash or a timeout keeps what finished
        doc = {"rows": rows, "quick": args.quick, "extra": extra, "n_boot": args.n_boot, "seeds": args.seeds,
               "wall_seconds": time.time() - t_all, "variants": results}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=2, default=float))

    with ray_session(configs[order[0]].ray):
        done_pre: dict[str, Path] = {}
        for n in order:
            if n in results:
                continue
            cfg = configs[n]
            per_seed: dict[str, Any] = {}
            for k in range(args.seeds):
                run = _runs_dir(args.quick) / n / (f"seed{k}" if args.seeds > 1 else "")
                run.mkdir(parents=True, exist_ok=True)
                cfg_k = cfg.model_copy(deep=True)
                cfg_k.train.seed = cfg.seed + k
                t0 = time.time()
                if n in POST:  # the base variant's model, this seed's
                    base_run = _runs_dir(args.quick) / POST[n] / (f"seed{k}" if args.seeds > 1 else "")
                    cfg_k.evaluate.model = str(base_run / "train" / "model")
                    _link(run / "preprocess", base_run / "preprocess")
                    t1 = t2 = time.time()
                else:
                    key = _preprocess_key(cfg_k)
                    if key in done_pre:
                        _link(run / "preprocess", done_pre[key] / "preprocess")
                    else:
                        if (run / "preprocess").is_symlink():
                            (run / "preprocess").unlink()
                        preprocess.run(cfg_k, str(run))
                        done_pre[key] = run
                    t1 = time.time()
                    train.run(cfg_k, str(run))
                    t2 = time.time()
                evaluate.run(cfg_k, str(run))
                t3 = time.time()
                # quick mode's suites are small: count groups from 10 rows, not 50
                res = table_metrics(run, n_boot=args.n_boot, seed=cfg.seed, min_n=10 if args.quick else 50)
                res["seconds"] = {"preprocess": t1 - t0, "train": t2 - t1, "evaluate": t3 - t2}
                res["train_seed"] = cfg_k.train.seed
                per_seed[str(k)] = res
                print(f"[bench-fairness] {n} seed {k}: test AUC {res['test_auc'][0]:.4f}, FPR gap "
                      f"{res['fpr_gap_nontoxic_templates'][0]:.3f}, flip rate {res['cf_flip_rate'][0]:.3f}, "
                      f"worst BPSN {res['worst_bpsn_auc'][0]:.3f}, toxic recall {res['toxic_recall'][0]:.3f} "
                      f"({t3 - t0:.0f} s)", file=sys.stderr, flush=True)
            res = dict(per_seed["0"])
            if args.seeds > 1:
                res["seeds"] = per_seed
                res["across_seeds"] = across_seeds(list(per_seed.values()))
            res["description"] = VARIANTS[n][0]
            res["overrides"] = VARIANTS[n][1]
            res["command"] = (f"python bench/fairness.py --variants {n}" + (" --quick" if args.quick else "")
                              + (f" --seeds {args.seeds}" if args.seeds > 1 else ""))
            results[n] = res
            save()
    save()
    print_table(results)
    print(f"wrote {args.out} ({(time.time() - t_all) / 60:.1f} min)")
    return 0


def _link(link: Path, target: Path) -> None:
    """``link`` -> ``target`` (a shared preprocess output), replacing an older link."""
    if link.is_symlink():
        link.unlink()
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target.resolve(), target_is_directory=True)


def seed_stats(values: list[Any]) -> dict[str, float]:
    """Mean, min, max and count of one metric over training seeds (None and NaN left out)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return {"mean": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def across_seeds(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """:func:`seed_stats` of every table metric's point value."""
    return {key: seed_stats([r[key][0] for r in per_seed if r.get(key) is not None]) for key, _ in COLUMNS}


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, bool]:
    """Per metric: is variant ``a`` different from ``b``? Only when the gap between their means
    over seeds exceeds both the larger across-seed range and the larger evaluation half-interval
    (a single-seed result has no range: its evaluation interval alone decides)."""
    out = {}
    for key, _ in COLUMNS:
        sa, sb = (r.get("across_seeds", {}).get(key) for r in (a, b))
        ma = sa["mean"] if sa else a[key][0]
        mb = sb["mean"] if sb else b[key][0]
        if ma is None or mb is None or math.isnan(ma) or math.isnan(mb):
            continue
        spread = max((s["max"] - s["min"]) if s else 0.0 for s in (sa, sb))
        half = max(((r[key][2] - r[key][1]) / 2 if r[key][1] is not None and not math.isnan(r[key][1]) else 0.0)
                   for r in (a, b))
        out[key] = bool(abs(ma - mb) > max(spread, half))
    return out


COLUMNS = [("test_auc", "in-domain AUC ↑"), ("test_f1", "in-domain F1 ↑"), ("madlibs_auc", "madlibs AUC ↑"),
           ("worst_subgroup_auc", "worst subgroup AUC ↑"), ("worst_bpsn_auc", "worst BPSN AUC ↑"),
           ("worst_bnsp_auc", "worst BNSP AUC ↑"), ("final_bias", "final bias metric ↑"),
           ("fpr_gap_nontoxic_templates", "FPR gap, non-toxic templates ↓"),
           ("madlibs_fped", "madlibs FPED ↓"), ("madlibs_fned", "madlibs FNED ↓"),
           ("cf_flip_rate", "CF flip rate ↓"), ("cf_mean_gap", "CF mean gap ↓"), ("crows_mean_gap", "CrowS gap ↓"),
           ("toxic_recall", "toxic-identity recall ↑"), ("worst_group_toxic_recall", "worst-group toxic recall ↑")]


def rescore(results_json: Path) -> int:
    """Recompute every finished variant's table metrics from its saved predictions (no training)."""
    doc = json.loads(results_json.read_text())
    min_n = 10 if doc["quick"] else 50
    for n, r in doc["variants"].items():
        if "seeds" in r:
            for k, rk in r["seeds"].items():
                rk.update(table_metrics(_runs_dir(doc["quick"]) / n / f"seed{k}", n_boot=doc["n_boot"], seed=0, min_n=min_n))
            r["across_seeds"] = across_seeds(list(r["seeds"].values()))
            r.update({k: v for k, v in r["seeds"]["0"].items() if k in dict(COLUMNS)})
        else:
            r.update(table_metrics(_runs_dir(doc["quick"]) / n, n_boot=doc["n_boot"], seed=0, min_n=min_n))
        print(f"rescored {n}", file=sys.stderr)
    results_json.write_text(json.dumps(doc, indent=2, default=float))
    print_table(doc["variants"])
    return 0


def plot(results_json: Path, png: Path) -> int:
    """Pareto plot of the variants: in-domain AUC (x) against worst-group BPSN AUC (y)."""
    import base64

    from debias.evaluation.report.plots import pareto_plot

    res = json.loads(results_json.read_text())["variants"]
    points = [{"name": n, "auc": r["test_auc"][0], "bpsn": r["worst_bpsn_auc"][0]} for n, r in res.items()]
    uri = pareto_plot(points, x="auc", y="bpsn", xlabel="in-domain test AUC (higher is better)",
                      ylabel="worst-group BPSN AUC, bias-madlibs (higher is better)",
                      title="Accuracy vs bias, one point per variant")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    print(f"wrote {png}")
    return 0


def fmt(v) -> str:
    p, lo, hi = (list(v) + [math.nan, math.nan])[:3]
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return f"{p:.3f}"
    return f"{p:.3f} [{lo:.3f}, {hi:.3f}]"


def cell(r: dict[str, Any], key: str) -> str:
    """One table cell: the point value and evaluation interval; with several training seeds the
    mean over seeds, its range, then the first seed's evaluation interval."""
    if key not in r:
        return "n/a"
    s = r.get("across_seeds", {}).get(key)
    if not s or not s["n"]:
        return fmt(r[key])
    lo, hi = (list(r[key]) + [math.nan, math.nan])[1:3]
    ci = "" if lo is None or math.isnan(lo) else f" [{lo:.3f}, {hi:.3f}]"
    return f"{s['mean']:.3f} (seeds {s['min']:.3f}–{s['max']:.3f}){ci}"


def print_table(results: dict[str, Any]) -> None:
    print("| variant | " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for n, r in results.items():
        print(f"| {n} | " + " | ".join(cell(r, k) for k, _ in COLUMNS) + " |")
    if "baseline" in results:
        for n, r in results.items():
            if n != "baseline":
                d = differences(r, results["baseline"])
                print(f"{n} vs baseline, differs beyond seed range and interval: "
                      + (", ".join(k for k, v in d.items() if v) or "none"))


if __name__ == "__main__":
    sys.exit(main())
