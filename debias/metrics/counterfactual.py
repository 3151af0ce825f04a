"""Counterfactual fairness on pairs of texts that differ only in an identity term.

Rows sharing a ``pair_id`` are one example and its counterfactuals (two or more rows).
Per pair the score gap is ``max - min`` of the scores (``|f(x) - f(x')|`` for a pair of
two). The counterfactual token fairness (CTF) gap of Garg et al. (2019), "Counterfactual
Fairness in Text Classification through Robustness", AIES, section 3, averages
``|f(x) - f(x')|`` over all counterfactual pairs; with pairs of two rows it equals the
mean gap, with larger sets it averages over every two members of a set. The flip rate is
the share of pairs whose decision ``y_score >= threshold`` is not the same for all members.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from debias.metrics.bootstrap import percentile_interval


@dataclass(frozen=True)
class CounterfactualResult:
    """Counterfactual gaps over ``n_pairs`` pairs (rows in singleton pairs are dropped)."""

    n_pairs: int
    n_rows: int
    n_singletons: int
    mean_abs_gap: float
    max_abs_gap: float
    ctf_gap: float
    flip_rate: float
    mean_abs_gap_ci: tuple[float, float] | None = None
    flip_rate_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def counterfactual_metrics(
    df: pd.DataFrame,
    *,
    pair_col: str = "pair_id",
    score_col: str = "y_score",
    threshold: float = 0.5,
    pred_col: str | None = None,
    ci: bool = False,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | None = None,
) -> CounterfactualResult:
    """Score gaps and decision flips within counterfactual pairs.

    Parameters
    ----------
    df : DataFrame
        Rows with ``pair_col`` (null = not part of a pair) and ``score_col``.
    threshold : float
        Decision threshold for the flip rate.
    pred_col : str, optional
        A column of 0/1 decisions to count flips on instead of ``score >= threshold`` (per-group
        thresholds: two members of a pair may be decided by different rules).
    ci : bool
        Add intervals: a bootstrap over pairs for the mean gap, Wilson for the flip rate.

    Returns
    -------
    CounterfactualResult
    """
    missing = [c for c in (pair_col, score_col, *([pred_col] if pred_col else [])) if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; columns present: {', '.join(map(str, df.columns))}")
    d = df[[pair_col, score_col, *([pred_col] if pred_col else [])]].dropna(subset=[pair_col])
    if d[score_col].isna().any():
        raise ValueError(f"column {score_col!r} has null scores in paired rows")
    codes, _ = pd.factorize(d[pair_col])
    s = d[score_col].to_numpy(dtype=np.float64)
    size = np.bincount(codes)
    order = np.lexsort((s, codes))  # by pair, then score
    sc, cc = s[order], codes[order]
    start = np.r_[0, np.flatnonzero(np.diff(cc)) + 1]
    keep = size >= 2
    lo, hi = np.minimum.reduceat(sc, start), np.maximum.reduceat(sc, start)
    gap = (hi - lo)[keep]
    if pred_col:  # a pair flips when its members' decisions differ
        pc = d[pred_col].to_numpy(dtype=np.int64)[order]
        flips = (np.minimum.reduceat(pc, start) != np.maximum.reduceat(pc, start))[keep]
    else:
        flips = ((lo < threshold) & (hi >= threshold))[keep]
    # mean |s_i - s_j| over the k(k-1)/2 pairs of a sorted set: sum_i (2i - k + 1) s_i
    rank = np.arange(len(sc)) - np.repeat(start, size)
    k = np.repeat(size, size)
    pair_sum = np.bincount(cc, weights=(2 * rank - k + 1) * sc)
    n_pairs_within = size * (size - 1) / 2
    ctf = float(pair_sum[keep].sum() / n_pairs_within[keep].sum()) if keep.any() else float("nan")
    n = int(keep.sum())
    res = dict(n_pairs=n, n_rows=int(size[keep].sum()), n_singletons=int((size == 1).sum()),
               mean_abs_gap=float(gap.mean()) if n else float("nan"),
               max_abs_gap=float(gap.max()) if n else float("nan"), ctf_gap=ctf,
               flip_rate=float(flips.mean()) if n else float("nan"))
    if ci and n:
        from debias.metrics.intervals import wilson_interval

        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n)) if n * n_boot <= 50_000_000 else None
        if idx is not None:
            res["mean_abs_gap_ci"] = tuple(float(x) for x in percentile_interval(gap[idx].mean(1), confidence))
            res["flip_rate_ci"] = tuple(float(x) for x in percentile_interval(flips[idx].mean(1), confidence))
        else:  # many pairs: the flip count is binomial, the gap mean is near-normal
            f = rng.binomial(n, flips.mean(), size=n_boot) / n
            res["flip_rate_ci"] = tuple(float(x) for x in percentile_interval(f, confidence))
            se = gap.std(ddof=1) / np.sqrt(n)
            g = gap.mean() + se * rng.standard_normal(n_boot)
            res["mean_abs_gap_ci"] = tuple(float(x) for x in percentile_interval(g, confidence))
        # the flip rate is a proportion of pairs: Wilson, never zero-width at 0 flips
        res["flip_rate_ci"] = tuple(float(x) for x in wilson_interval(int(flips.sum()), n, confidence=confidence))
    return CounterfactualResult(**res)
