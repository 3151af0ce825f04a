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
