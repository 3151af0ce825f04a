"""Which interval each group metric and disparity gets, computed from GroupStats.

Per group: Wilson for the proportions, DeLong logit for ROC AUC, a percentile bootstrap
(clipped to contain the estimate) for F1, Brier score and ECE, which are not proportions.
Disparities: extremum intervals for the worst and best group, MOVER for the gap and the
ratio between them and for each group against ``overall``. See
:mod:`debias.metrics.intervals` for the methods and their references.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

from debias.metrics._compute import count_table
from debias.metrics._rates import RATE_CELLS, rate_parts
from debias.metrics.bootstrap import percentile_interval
from debias.metrics.intervals import (
    auc_interval,
    extremum_interval,
    fold_abs,
    fold_ratio,
    mover_difference,
    mover_ratio,
    wilson_interval,
)
from debias.metrics.stats import GroupStats

BOOTSTRAP_METRICS = ("f1", "brier", "ece")

INTERVAL_METHODS: dict[str, str] = {
    "proportion": "Wilson score interval (selection rate, base rate, accuracy, precision, TPR, FPR, FNR, TNR, "
                  "flip rate)",
    "roc_auc": "DeLong variance, Wald interval on the logit scale (subgroup, BPSN, BNSP and group AUCs); "
               "Clopper-Pearson on min(positives, negatives) pairs at AUC 0 or 1",
    "bootstrap": "percentile bootstrap over rows (F1, Brier score, ECE, mean score gaps)",
    "difference": "MOVER (Newcombe's hybrid score interval on Wilson limits) between the two groups' own "
                  "intervals, treated as independent (conservative when they overlap)",
    "ratio": "MOVER on the log scale between the two groups' own intervals",
    "extremum": "worst / best group and the largest gap: the extreme group's own bound on one side, "
                "Bonferroni over the groups that could be the extreme on the other",
}


def metric_limits(stats: GroupStats, names: Sequence[str], values: np.ndarray, metric: str, *,
                  confidence: float, replicates: dict[str, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-name interval of ``metric`` at ``confidence`` (arrays of ``len(names)``).

    ``values`` are the point values per name (the interval's centre for AUC, and the
    estimate a bootstrap interval is widened to contain).
    """
    values = np.asarray(values, dtype=np.float64)
    if metric in RATE_CELLS:
        _, n = rate_parts(count_table(stats, names), metric)  # rows in the denominator
        return wilson_interval(values * n, n, confidence=confidence)
    if metric == "roc_auc":
        if not stats.has_score:
            nan = np.full(len(names), np.nan)
            return nan, nan.copy()
        h = np.stack([stats.hist_for(g) for g in names])
        return auc_interval(h[:, 1], h[:, 0], point=values, confidence=confidence)
    if replicates is None or metric not in replicates:
        raise ValueError(f"metric {metric!r} needs bootstrap replicates; have: {sorted(replicates or {})}")
    # Hesterberg's (2015) expanded percentile interval: the percentile interval undercovers in
    # small samples (it is too narrow by about sqrt((n - 1) / n) and z for t); widen alpha
    n = np.maximum(count_table(stats, names).sum(axis=(1, 2)), 2.0)
    q = _st.t.ppf(0.5 + confidence / 2, n - 1) * np.sqrt(n / (n - 1))
    wide = 2 * _st.norm.cdf(q) - 1  # per name
    lo, hi = np.full(len(names), np.nan), np.full(len(names), np.nan)
    for c in np.unique(wide):
        sel = wide == c
        lo[sel], hi[sel] = (x[sel] for x in percentile_interval(replicates[metric], float(min(c, 0.9999))))
    ok = np.isfinite(values)
    return np.where(ok, np.fmin(lo, values), np.nan), np.where(ok, np.fmax(hi, values), np.nan)


def disparity_intervals(stats: GroupStats, names: Sequence[str], values: np.ndarray, metric: str,
                        use: np.ndarray, overall_row: int, *, confidence: float,
                        replicates: dict[str, np.ndarray] | None = None) -> dict[str, tuple[float, float]]:
    """Intervals of the disparity statistics of one metric over the groups ``use``.

    Returns ``{key: (lo, hi)}`` for ``min_value``, ``max_value``, ``difference``, ``ratio``,
    ``difference_to_overall`` and ``ratio_to_overall`` (the keys of
    :func:`debias.metrics.group.disparity_values`).
    """
    values = np.asarray(values, dtype=np.float64)
    vu, o = values[use], values[overall_row]
    cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def lim(c: float) -> tuple[np.ndarray, np.ndarray]:
        if c not in cache:
            cache[c] = metric_limits(stats, names, values, metric, confidence=c, replicates=replicates)
        return cache[c]

    def groups(c):
        lo, hi = lim(c)
        return lo[use], hi[use]

    out: dict[str, tuple[float, float]] = {}
    mx, mx_lo, mx_hi = extremum_interval(vu, groups, kind="max", confidence=confidence)
    mn, mn_lo, mn_hi = extremum_interval(vu, groups, kind="min", confidence=confidence)
    out["max_value"], out["min_value"] = (mx_lo, mx_hi), (mn_lo, mn_hi)
    if int(np.isfinite(vu).sum()) == 1:  # one group: no gap by definition
        out["difference"], out["ratio"] = (0.0, 0.0), ((1.0, 1.0) if mx > 0 else (np.nan, np.nan))
    else:
        # max - min is the largest of the pairwise gaps v_i - v_j, min / max the smallest of the
        # pairwise ratios: extremum intervals over the ordered pairs' own MOVER intervals
        i, j = (x.ravel() for x in np.meshgrid(np.arange(len(vu)), np.arange(len(vu)), indexing="ij"))
        i, j = i[i != j], j[i != j]

        def pairs(c, ratio: bool):
            lo, hi = groups(c)
            f = mover_ratio if ratio else mover_difference
            return f(vu[i], lo[i], hi[i], vu[j], lo[j], hi[j])

        with np.errstate(invalid="ignore", divide="ignore"):
            _, a, b = extremum_interval(vu[i] - vu[j], lambda c: pairs(c, False), kind="max", confidence=confidence)
            out["difference"] = (max(a, 0.0), b)
            rat = np.where(vu[j] > 0, vu[i] / np.where(vu[j] > 0, vu[j], 1), np.nan)
            _, a, b = extremum_interval(rat, lambda c: pairs(c, True), kind="min", confidence=confidence)
        out["ratio"] = (float(np.clip(a, 0, 1)), float(np.clip(b, 0, 1))) if mx > 0 else (np.nan, np.nan)

    rest = _rest_of_overall(stats, names, values, metric, use, overall_row)

    def to_overall(c, ratio: bool):
        lo, hi = lim(c)
        args = (vu, lo[use], hi[use], o, lo[overall_row], hi[overall_row])
        a, b = mover_ratio(*args) if ratio else mover_difference(*args)  # as if independent: conservative
        if rest is not None:  # a proportion: overall = s * group + (1 - s) * the disjoint rest
            share, p_n, n_n = rest
            ln, un = wilson_interval(p_n * n_n, n_n, confidence=c)
            with np.errstate(invalid="ignore", divide="ignore"):
                if ratio:  # p_g / p_o = x / (s x + 1 - s), increasing in x = p_g / p_n
                    xa, xb = mover_ratio(vu, lo[use], hi[use], p_n, ln, un)
                    fa, fb = (np.where(np.isinf(x), 1 / share, x / (share * x + 1 - share)) for x in (xa, xb))
                else:  # p_g - p_o = (1 - s) (p_g - p_n)
                    xa, xb = mover_difference(vu, lo[use], hi[use], p_n, ln, un)
                    fa, fb = (1 - share) * xa, (1 - share) * xb
            ok = np.isfinite(fa) & np.isfinite(fb) & (n_n > 0)
            a, b = np.where(ok, fa, a), np.where(ok, fb, b)
        return fold_ratio(a, b) if ratio else fold_abs(a, b)

    with np.errstate(invalid="ignore", divide="ignore"):
        d_est = np.abs(vu - o)
        r = vu / o
        r_est = np.where(r > 1, 1 / r, r)
    _, a, b = extremum_interval(d_est, lambda c: to_overall(c, False), kind="max", confidence=confidence)
    out["difference_to_overall"] = (a, b)
    _, a, b = extremum_interval(r_est, lambda c: to_overall(c, True), kind="min", confidence=confidence)
    out["ratio_to_overall"] = (a, b)
    return out


def _rest_of_overall(stats: GroupStats, names: Sequence[str], values: np.ndarray, metric: str,
                     use: np.ndarray, overall_row: int):
    """For a proportion: each group's share ``s`` of the overall denominator, and the rate and
    denominator of the rows of ``overall`` outside the group (disjoint from it), so that
    ``p_overall = s * p_group + (1 - s) * p_rest`` (exact unweighted). None for other metrics."""
    if metric not in RATE_CELLS:
        return None
    _, n = rate_parts(count_table(stats, names), metric)
    n_g, n_o = n[use], n[overall_row]
    n_n = n_o - n_g
    with np.errstate(invalid="ignore", divide="ignore"):
        p_n = np.clip((values[overall_row] * n_o - values[use] * n_g) / n_n, 0.0, 1.0)
        share = n_g / n_o
    return share, np.where(n_n > 0, p_n, np.nan), np.maximum(n_n, 0.0)


def worst_bias_auc(data, *, group_col: str = "groups", min_group_size: int = 0, confidence: float = 0.95
                   ) -> dict[str, dict]:
    """The lowest subgroup, BPSN and BNSP AUC over groups, each with an extremum interval.

    Parameters
    ----------
    data : DataFrame or GroupStats
        What :func:`debias.metrics.bias_auc` accepts (rows give exact point values).
    min_group_size : int
        Only groups with at least this many rows compete for the minimum.

    Returns
    -------
    dict
        ``{"subgroup_auc": {"value", "lo", "hi", "group"}, "bpsn_auc": ..., "bnsp_auc": ...}``;
        the interval is :func:`debias.metrics.intervals.extremum_interval` over the groups'
        DeLong logit intervals (it contains the value, unlike a percentile bootstrap of a min).
    """
    import pandas as pd

    from debias.metrics._input import OVERALL
    from debias.metrics.auc import BIAS_AUCS, bias_auc, bias_auc_intervals

    point = bias_auc(data) if isinstance(data, GroupStats) else bias_auc(data, group_col=group_col)
    if isinstance(data, GroupStats):
        stats = data
    elif isinstance(data, pd.DataFrame):
        stats = GroupStats.from_batch(data, group_col=group_col, y_pred_col="\0absent",
                                      groups=[g for g in point["group"] if g != OVERALL])
    else:
        raise TypeError(f"expected a DataFrame or GroupStats; found {type(data).__name__}")
    g = point[(point["group"] != OVERALL) & (point["n"] >= min_group_size)].set_index("group")
    names = list(g.index)
    cache: dict[float, pd.DataFrame] = {}

    def table(c: float) -> pd.DataFrame:
        if c not in cache:
            cache[c] = bias_auc_intervals(stats, names, point=g, confidence=c).set_index("group").loc[names]
        return cache[c]

    out: dict[str, dict] = {}
    for m in BIAS_AUCS:
        v = g[m].to_numpy(dtype=float)
        if not names or np.isnan(v).all():
            out[m] = {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "group": None}
            continue
        est, lo, hi = extremum_interval(v, lambda c, m=m: (table(c)[f"{m}_lo"].to_numpy(), table(c)[f"{m}_hi"].to_numpy()),
                                        kind="min", confidence=confidence)
        out[m] = {"value": est, "lo": lo, "hi": hi, "group": str(names[int(np.nanargmin(v))])}
    return out
