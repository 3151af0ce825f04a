"""ROC AUC, exact and from histograms, and the unintended-bias AUC family.

Borkan, Dixon, Sorensen, Thain, Vasserman (2019), "Nuanced Metrics for Measuring
Unintended Bias with Real Data for Text Classification", WWW '19 Companion, section 4:

* subgroup AUC: AUC on rows that mention the identity;
* BPSN AUC (background positive, subgroup negative): positives that do not mention the
  identity against negatives that do;
* BNSP AUC (background negative, subgroup positive): the reverse;
* final metric (Jigsaw Unintended Bias challenge): ``0.25 * overall AUC + 0.75 * mean of the
  three power means M_p(m_g) = (mean_g m_g**p)**(1/p)`` with ``p = -5``.

The background of a group is every row of *known* membership not in the group; rows of
unknown membership belong to neither side.

Exact AUC (rank based, ties count one half, weighted) is used when rows are at hand.
From a :class:`GroupStats`, AUC comes from score histograms: a pair of rows in different
bins is ordered exactly, a pair in the same bin is counted as a tie, so the error is at
most ``0.5 * sum_b pos_b * neg_b / (P * N)`` -- reported next to each value as
``*_error_bound``. It is zero when scores sit on the bin grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from debias.metrics._input import INTERSECTION_SEP, OVERALL, encode
from debias.metrics.stats import GroupStats

BIAS_AUCS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def auc_exact(pos_score: np.ndarray, neg_score: np.ndarray,
              pos_weight: np.ndarray | None = None, neg_weight: np.ndarray | None = None) -> float:
    """Weighted probability that a positive outscores a negative (ties count 1/2).

    Equal to the area under the ROC curve (trapezoidal) as in
    :func:`sklearn.metrics.roc_auc_score`; NaN when either side is empty.
    """
    pw = np.ones(len(pos_score)) if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    nw = np.ones(len(neg_score)) if neg_weight is None else np.asarray(neg_weight, dtype=np.float64)
    P, Nn = pw.sum(), nw.sum()
    if P <= 0 or Nn <= 0:
        return float("nan")
    uniq, inv = np.unique(np.concatenate([pos_score, neg_score]), return_inverse=True)
    k = len(uniq)
    wp = np.bincount(inv[: len(pos_score)], weights=pw, minlength=k)
    wn = np.bincount(inv[len(pos_score):], weights=nw, minlength=k)
    below = np.cumsum(wn) - wn
    return float(np.sum(wp * (below + 0.5 * wn)) / (P * Nn))


def auc_from_histograms(pos_hist: np.ndarray, neg_hist: np.ndarray) -> tuple[float, float]:
    """AUC from binned positive and negative scores, and a bound on its error.

    Returns
    -------
    auc : float
        Pairs in different bins ordered by bin, pairs in one bin counted 1/2.
    error_bound : float
        ``0.5 * sum_b pos_b * neg_b / (P * N)``: the largest possible difference to the
        exact AUC of the unbinned scores.
    """
    P, Nn = pos_hist.sum(axis=-1), neg_hist.sum(axis=-1)
    below = np.cumsum(neg_hist, axis=-1) - neg_hist
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where((P > 0) & (Nn > 0), P * Nn, np.nan)
        auc = np.sum(pos_hist * (below + 0.5 * neg_hist), axis=-1) / denom
        bound = 0.5 * np.sum(pos_hist * neg_hist, axis=-1) / denom
    return auc, bound


def power_mean(values: Sequence[float], p: float = -5.0) -> float:
    """Generalised mean ``(mean v**p)**(1/p)``; NaNs are dropped (Borkan et al. eq. 1)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan")
    if np.any(v == 0) and p < 0:
        return 0.0
    return float(np.mean(v**p) ** (1.0 / p))


def bias_auc(
    data: pd.DataFrame | GroupStats,
    *,
    group_col: str | Sequence[str] = "groups",
    score_col: str = "y_score",
    y_true_col: str = "y_true",
    weight_col: str = "sample_weight",
    groups: Sequence[str] | None = None,
    n_boot: int = 0,
    seed: int | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Subgroup, BPSN and BNSP AUC per identity group (Borkan et al. 2019, sec. 4).

    Parameters
    ----------
    data : DataFrame or GroupStats
        Rows (exact AUC) or sufficient statistics (histogram AUC with error bounds).
    groups : sequence of str, optional
        Groups to report; default all.
    n_boot : int
        With ``n_boot > 0``, a bootstrap interval for each of the three AUCs
        (``*_lo``, ``*_hi``); see :func:`bias_auc_intervals`.

    Returns
    -------
    DataFrame
        One row per group: ``group``, ``n``, ``n_positive``, ``subgroup_auc``,
        ``bpsn_auc``, ``bnsp_auc``, and for histogram input ``*_error_bound``;
        plus one row ``overall`` holding the overall AUC in ``subgroup_auc``.
    """
    if n_boot:
        table = bias_auc(data, group_col=group_col, score_col=score_col, y_true_col=y_true_col,
                         weight_col=weight_col, groups=groups)
        stats = data if isinstance(data, GroupStats) else GroupStats.from_batch(
            data, group_col=group_col, score_col=score_col, y_true_col=y_true_col, weight_col=weight_col,
            y_pred_col="\0absent", groups=groups)
        names = [g for g in table["group"] if g != OVERALL]
        iv = bias_auc_intervals(stats, names, point=table.set_index("group"), n_boot=n_boot, seed=seed,
                                confidence=confidence)
        return table.merge(iv, on="group", how="left")
    if isinstance(data, GroupStats):
        return _bias_auc_hist(data, groups)
    enc = encode(data, group_col=group_col, score_col=score_col, y_true_col=y_true_col,
                 weight_col=weight_col, y_pred_col="\0absent", require_score=True)
    members = _row_membership(enc, groups)
    s, y, w = enc.y_score, enc.y_true.astype(bool), enc.weight
    known = enc.pattern >= 0
    rows = []
    for g, m in members.items():
        bg = known & ~m
        rows.append({
            "group": g, "n": int(m.sum()), "n_positive": int((m & y).sum()),
            "subgroup_auc": auc_exact(s[m & y], s[m & ~y], w[m & y], w[m & ~y]),
            "bpsn_auc": auc_exact(s[bg & y], s[m & ~y], w[bg & y], w[m & ~y]),
            "bnsp_auc": auc_exact(s[m & y], s[bg & ~y], w[m & y], w[bg & ~y]),
        })
    rows.append({"group": OVERALL, "n": len(y), "n_positive": int(y.sum()),
                 "subgroup_auc": auc_exact(s[y], s[~y], w[y], w[~y]), "bpsn_auc": np.nan, "bnsp_auc": np.nan})
    return pd.DataFrame(rows)


def _row_membership(enc, groups: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Per group, a boolean row mask (groups overlap)."""
    names = sorted({g for p in enc.patterns for g in p})
    if groups is not None:
        names = list(groups)
    def inside(g, p):
        return set(g.split(INTERSECTION_SEP)) <= set(p)

    pat_member = {g: np.array([inside(g, p) for p in enc.patterns] + [False], dtype=bool) for g in names}
    return {g: pm[enc.pattern] for g, pm in pat_member.items()}  # pattern -1 hits the False pad


def bias_auc_intervals(stats: GroupStats, names: Sequence[str], *, point: pd.DataFrame | None = None,
                       n_boot: int = 1000, seed: int | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Intervals for subgroup, BPSN and BNSP AUC of each group, from the histograms.

    DeLong's variance from the placement values of the group's and the background's
    (label, score bin) histograms, and a Wald interval on the logit scale centred on the
    point value, so an interval lies in [0, 1] and contains its estimate; see
    :func:`debias.metrics.intervals.auc_interval`. ``point``: a table indexed by group with
    the point values (default: :func:`bias_auc` of ``stats``). ``n_boot`` and ``seed`` are
    accepted for compatibility and unused (the interval is closed form).
    """
    from debias.metrics.intervals import auc_interval

    if not stats.has_score:
        raise ValueError("these GroupStats were built without y_score; AUCs need scores")
    if point is None:
        point = _bias_auc_hist(stats, names).set_index("group")
    rows = []
    for g in names:
        sub, bg = stats.hist_for(g), stats.hist_for(f"rest:{g}")
        row: dict = {"group": g}
        for name, pos, neg in (("subgroup_auc", sub[1], sub[0]), ("bpsn_auc", bg[1], sub[0]),
                               ("bnsp_auc", sub[1], bg[0])):
            p0 = float(point.loc[g, name]) if g in point.index else np.nan
            lo, hi = auc_interval(pos, neg, point=p0, confidence=confidence)
            row[f"{name}_lo"], row[f"{name}_hi"] = float(lo), float(hi)
        rows.append(row)
    return pd.DataFrame(rows)


def _bias_auc_hist(stats: GroupStats, groups: Sequence[str] | None) -> pd.DataFrame:
    if not stats.has_score:
        raise ValueError("these GroupStats were built without y_score; AUCs need scores")
    names = stats.groups if groups is None else tuple(groups)
    n = stats.cell_table(names, weighted=False)
    rows = []
    for i, g in enumerate(names):
        sub, bg = stats.hist_for(g), stats.hist_for(f"rest:{g}")
        row = {"group": g, "n": int(n[i].sum()), "n_positive": int(n[i, 1].sum())}
        for name, pos, neg in (("subgroup_auc", sub[1], sub[0]), ("bpsn_auc", bg[1], sub[0]),
                               ("bnsp_auc", sub[1], bg[0])):
            row[name], row[f"{name}_error_bound"] = (float(v) for v in auc_from_histograms(pos, neg))
        rows.append(row)
    o = stats.hist_for(OVERALL)
    auc, bound = auc_from_histograms(o[1], o[0])
    rows.append({"group": OVERALL, "n": stats.n_rows, "n_positive": int(stats.cell_table([OVERALL], weighted=False)[0, 1].sum()),
                 "subgroup_auc": float(auc), "subgroup_auc_error_bound": float(bound)})
    return pd.DataFrame(rows)


def final_bias_metric(
    data: pd.DataFrame | GroupStats,
    *,
    overall_weight: float = 0.25,
    p: float = -5.0,
    **kwargs,
) -> float:
    """Combined bias metric: ``w * AUC_overall + (1 - w) * mean_m M_p(m)``.

    ``m`` ranges over subgroup, BPSN and BNSP AUC and ``M_p`` is :func:`power_mean` over
    groups (Jigsaw Unintended Bias in Toxicity Classification, after Borkan et al. 2019).
    Accepts what :func:`bias_auc` accepts, or its output frame.
    """
    table = data if isinstance(data, pd.DataFrame) and "bpsn_auc" in data.columns else bias_auc(data, **kwargs)
    per_group = table[table["group"] != OVERALL]
    overall = float(table.loc[table["group"] == OVERALL, "subgroup_auc"].iloc[0])
    means = [power_mean(per_group[m].to_numpy(), p) for m in BIAS_AUCS]
    return float(overall_weight * overall + (1 - overall_weight) * np.mean(means))
