"""Choosing a decision threshold on held-out data (the validation split, never the test split)."""

from __future__ import annotations

import numpy as np


def best_f1_threshold(y_true, y_score) -> tuple[float, float]:
    """The score threshold ``t`` (predict 1 when ``score >= t``) with the highest F1, and that F1.

    Every distinct score is a candidate; ties in F1 go to the highest threshold (fewest positive
    decisions). One sort, O(n log n). Raises ``ValueError`` without both classes.
    """
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("y_true and y_score must be 1-d and the same length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be 0/1")
    pos = int(y.sum())
    if pos == 0 or pos == len(y):
        raise ValueError("choosing a threshold needs both classes in the labels")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    k = np.arange(1, len(y) + 1)
    # a threshold equal to a score admits every row with that score: cut only at the last of a tie run
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp, k, thr = tp[last], k[last], s_sorted[last]
    f1 = 2 * tp / (k + pos)
    best = np.flatnonzero(f1 == f1.max())[0]  # scores descend: the first best is the highest threshold
    return float(thr[best]), float(f1[best])


def recall_matched_threshold(y_true, y_score, target_recall: float) -> float:
    """The highest threshold ``t`` whose recall (TPR of ``score >= t``) is at least ``target_recall``.

    A decision rule for a mitigated model that must not level down: match the recall a reference
    model reaches on the same validation rows, and give up precision rather than recall. Raises
    ``ValueError`` without positives or with a target outside [0, 1].
    """
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("y_true and y_score must be 1-d and the same length")
    if not 0.0 <= target_recall <= 1.0:
        raise ValueError(f"target_recall must be in [0, 1], got {target_recall}")
    pos = np.sort(s[y == 1])[::-1]
    if not len(pos):
        raise ValueError("matching a recall needs positive labels")
    k = max(1, int(np.ceil(target_recall * len(pos) - 1e-9)))  # positives that must score >= t
    return float(pos[k - 1])


def threshold_sweep(y_true, y_score, groups, thresholds, *, min_group_size: int = 1):
    """Group error rates at every threshold of ``thresholds`` (decide 1 when ``score >= t``).

    ``groups``: one list of group names per row (a row counts in every group it names). Returns a
    DataFrame indexed by threshold with ``recall`` and ``fpr`` over all rows, ``worst_group_recall``
    (lowest TPR over groups with ``min_group_size`` positives), ``fpr_gap`` (largest minus smallest
    FPR over groups with ``min_group_size`` negatives; NaN with fewer than two such groups) and
    ``worst_group_accuracy`` (lowest accuracy over the (group, label) cells with ``min_group_size``
    rows, the WILDS definition). One n x m comparison; no loop over thresholds.
    """
    import pandas as pd

    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1 or len(groups) != len(y):
        raise ValueError("y_true, y_score and groups must be 1-d and the same length")
    pred = s[:, None] >= t[None, :]                                   # rows x thresholds
    out = pd.DataFrame(index=pd.Index(t, name="threshold"))
    pos, neg = y == 1, y == 0
    out["recall"] = pred[pos].mean(axis=0) if pos.any() else np.nan
    out["fpr"] = pred[neg].mean(axis=0) if neg.any() else np.nan
    names = sorted({g for gs in groups for g in (gs or [])})
    tpr, fpr, acc = [], [], []
    for g in names:
        m = np.fromiter((g in (gs or []) for gs in groups), dtype=bool, count=len(y))
        mp, mn = m & pos, m & neg
        if mp.sum() >= min_group_size:
            tpr.append(pred[mp].mean(axis=0))
            acc.append(tpr[-1])
        if mn.sum() >= min_group_size:
            fpr.append(pred[mn].mean(axis=0))
            acc.append(1.0 - fpr[-1])
    nan = np.full(len(t), np.nan)
    out["worst_group_recall"] = np.min(tpr, axis=0) if tpr else nan
    out["fpr_gap"] = (np.max(fpr, axis=0) - np.min(fpr, axis=0)) if len(fpr) >= 2 else nan
    out["worst_group_accuracy"] = np.min(acc, axis=0) if acc else nan
    return out


def flip_rate_sweep(pair_id, y_score, thresholds):
    """Counterfactual flip rate at every threshold: the share of pairs (rows sharing a ``pair_id``)
    whose decisions ``score >= t`` disagree. A pair flips at ``t`` exactly when its lowest score is
    below ``t`` and its highest is not."""
    import pandas as pd

    s = pd.Series(np.asarray(y_score, dtype=np.float64))
    g = s.groupby(np.asarray(pair_id))
    lo, hi = g.min().to_numpy(), g.max().to_numpy()
    t = np.asarray(thresholds, dtype=np.float64)
    flips = (lo[:, None] < t[None, :]) & (hi[:, None] >= t[None, :])
    return pd.Series(flips.mean(axis=0) if len(lo) else np.nan, index=pd.Index(t, name="threshold"),
                     name="flip_rate")
