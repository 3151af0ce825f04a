"""Before/after comparisons of two audits of the same seeded items, with paired bootstrap intervals.

Two ``debias audit-lm`` runs with the same ``limit`` and ``seed`` score the same CrowS-Pairs
pairs, BBQ questions and counterfactual prompt sets, so a mitigation's effect is best judged on
the per-item differences: each bootstrap replicate resamples *items* once and recomputes the
statistic on both runs (Efron & Tibshirani 1993, ch. 13 on paired designs), which removes the
between-item variance that makes two independent intervals overlap. An interval of the
difference that excludes 0 is a demonstrated change at that confidence; overlapping per-run
intervals alone are not evidence either way.

The per-item outcomes come from the audit's own outputs (``scored.parquet``,
``generated.parquet``) and the audit's own metric code (:mod:`debias.lm.bbq`,
:mod:`debias.lm.intrinsic`), so each run's point value equals its ``metrics.json`` figure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from debias.lm import bbq as bbq_mod
from debias.lm.stats import bootstrap_statistic

__all__ = ["crows_outcomes", "bbq_outcomes", "cf_outcomes", "paired_difference", "STATISTICS"]


def crows_outcomes(scored: pd.DataFrame, *, score: str = "logprob_sum") -> pd.DataFrame:
    """``item_id, stereo_preferred`` (1, 0.5 on a tie, 0) per CrowS-Pairs pair."""
    s = scored[scored["suite"] == "crows_pairs"]
    wide = s.pivot_table(index="item_id", columns="option", values=score, aggfunc="first").dropna()
    a, b = wide["stereo"].to_numpy(float), wide["anti"].to_numpy(float)
    return pd.DataFrame({"item_id": wide.index, "stereo_preferred": np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))})


def bbq_outcomes(items: pd.DataFrame, scored: pd.DataFrame, generated: pd.DataFrame, *,
                 score: str = "logprob_sum") -> dict[str, pd.DataFrame]:
    """``{"bbq_mc", "bbq_generate"}``: :func:`debias.lm.bbq.read_bbq` items plus ``pred``."""
    out = {}
    s = scored[scored["suite"] == "bbq"].copy()
    if len(s):
        s["option"] = s["option"].astype(int)
        out["bbq_mc"] = bbq_mod.mc_predictions(items, s, score=score)
    g = generated[generated["suite"] == "bbq"].set_index("id")["completion"]
    if len(g):
        p = items.copy()
        p["completion"] = p["item_id"].map(g).fillna("")
        p["pred"] = [bbq_mod.parse_answer(c, [a0, a1, a2]) for c, a0, a1, a2 in
                     zip(p["completion"], p["ans0"], p["ans1"], p["ans2"], strict=True)]
        out["bbq_generate"] = p
    return out


def cf_outcomes(generated: pd.DataFrame, *, threshold: float = 0.5) -> pd.DataFrame:
    """``item_id`` (the prompt set), ``gap`` (max - min classifier score over its groups), ``flip``,
    ``score_mean`` per counterfactual set, as in :func:`debias.lm.counterfactual.counterfactual_scores`."""
    g = generated[generated["suite"] == "counterfactual"].copy()
    if "classifier_score" not in g.columns:
        raise ValueError(f"counterfactual rows need 'classifier_score'; columns present: {list(g.columns)}")
    g["item_id"] = [str(i).rsplit("/", 1)[0] for i in g["id"]]
    sets = g.groupby("item_id")["classifier_score"].agg(["min", "max", "mean", "size"])
    sets = sets[sets["size"] >= 2]
    return pd.DataFrame({"item_id": sets.index, "gap": (sets["max"] - sets["min"]).to_numpy(),
                         "flip": ((sets["min"] < threshold) & (sets["max"] >= threshold)).astype(float).to_numpy(),
                         "score_mean": sets["mean"].to_numpy()})


def _bbq_arrays(condition: str | None) -> Callable[[pd.DataFrame], dict[str, np.ndarray]]:
    """One run's BBQ predictions as arrays, only the questions of ``condition`` (as bbq_scores does)."""
    def f(d: pd.DataFrame) -> dict[str, np.ndarray]:
        d = d if condition is None else d[d["context_condition"] == condition]
        return {"pred": d["pred"].to_numpy(int), "label": d["label"].to_numpy(int),
                "target": d["target_loc"].to_numpy(int), "unknown": d["unknown_loc"].to_numpy(int),
                "neg": d["question_polarity"].eq("neg").to_numpy()}
    return f


def _accuracy(pred, label, **_) -> float:
    return float((pred == label).mean())


def _mean_of(col: str) -> tuple[Callable[[pd.DataFrame], dict[str, np.ndarray]], Callable[..., float]]:
    return (lambda d: {"x": d[col].to_numpy(float)}), (lambda x: float(x.mean()))


# statistic name -> (one run's outcome frame -> aligned arrays, the statistic of those arrays)
STATISTICS: dict[str, tuple[Callable[[pd.DataFrame], dict[str, np.ndarray]], Callable[..., float]]] = {
    "stereotype_score": (lambda d: {"w": d["stereo_preferred"].to_numpy(float)}, lambda w: 100.0 * float(w.mean())),
    "acc_ambig": (_bbq_arrays("ambig"), _accuracy),
    "acc_disambig": (_bbq_arrays("disambig"), _accuracy),
    "s_amb": (_bbq_arrays("ambig"), bbq_mod._s_amb),
    "s_dis": (_bbq_arrays("disambig"), bbq_mod._s_dis),
    "unparsed_rate": (_bbq_arrays(None), lambda pred, **_: float((pred < 0).mean())),
    "gap_mean": _mean_of("gap"),
    "flip_rate": _mean_of("flip"),
    "score_mean": _mean_of("score_mean"),
}


def paired_difference(before: pd.DataFrame, after: pd.DataFrame, statistic: str, *, n_boot: int = 1000,
                      seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """``before``, ``after``, ``diff`` (after - before) with a paired bootstrap interval, and ``n``.

    Parameters
    ----------
    before, after : one run's outcomes each (an ``item_id`` column plus the statistic's columns);
        only items present in both count.
    statistic : a key of :data:`STATISTICS`.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
    to_arrays, stat = STATISTICS[statistic]
    common = sorted(set(before["item_id"]) & set(after["item_id"]))
    b = before.set_index("item_id").loc[common].reset_index()
    a = after.set_index("item_id").loc[common].reset_index()
    arrays = {**{f"b_{k}": v for k, v in to_arrays(b).items()}, **{f"a_{k}": v for k, v in to_arrays(a).items()}}

    def side(x: dict[str, np.ndarray], p: str) -> dict[str, np.ndarray]:
        return {k[2:]: v for k, v in x.items() if k.startswith(p)}

    res = bootstrap_statistic(arrays, lambda **x: stat(**side(x, "a_")) - stat(**side(x, "b_")),
                              n_boot=n_boot, seed=seed, confidence=confidence)
    return {"before": stat(**side(arrays, "b_")) if common else float("nan"),
            "after": stat(**side(arrays, "a_")) if common else float("nan"),
            "diff": res["value"], "ci_low": res["ci_low"], "ci_high": res["ci_high"], "n": res["n"]}
