"""Mergeable sufficient statistics for every group metric.

A :class:`GroupStats` holds, for each membership *pattern* (the exact set of groups a row
belongs to; ``None`` = unknown membership), a small table indexed by
``(y_true, y_pred, calibration bin)`` of four sums: rows, weight, weight*score and
weight*score**2. Per group (and for ``overall``, ``unknown``, and any declared
intersection) it also holds a weighted score histogram per ``y_true`` on ``score_bins``
equal bins of [0, 1].

From these, with no access to rows:

* every count-based metric (selection rate, TPR, ...) is exact, for any group, for the
  background of a group (known rows not in it), and for every intersection;
* Brier score and expected calibration error (on ``calibration_bins`` bins) are exact;
* ROC AUCs come from the histograms, with a stated bound on their error
  (see :func:`debias.metrics.auc.auc_from_histograms`);
* the bootstrap of all count-based metrics resamples the pattern cells jointly, which is
  the row bootstrap exactly (rows are iid draws from the cells), overlaps included.

Statistics of two batches add, so ``from_batch(concat(a, b)) == merge(from_batch(a),
from_batch(b))``; a Ray Data aggregation can fold billions of rows into one of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from debias.metrics._input import OVERALL, UNKNOWN, encode, intersection_name

# Last axis of GroupStats.cells.
N, W, WS, WS2 = range(4)
_HIST_DENSE_LIMIT = 1 << 24


@dataclass(frozen=True, eq=False)
class GroupStats:
    """Sufficient statistics of a predictions frame, mergeable across batches.

    Build with :meth:`from_batch`, combine with :meth:`merge` or :meth:`merge_all`,
    serialise with :meth:`to_dict` / :meth:`from_dict` (JSON-safe) or pickle.

    Attributes
    ----------
    patterns : tuple
        Membership patterns; each a sorted tuple of group names, or ``None`` (unknown).
    cells : ndarray of shape (n_patterns, 2, 2, calibration_bins, 4)
        Sums over rows indexed ``[pattern, y_true, y_pred, calibration bin]``:
        row count, weight, weight*score, weight*score**2.
    hist_groups : tuple of str
        Names of the histogram rows: ``overall``, ``unknown``, groups, intersections.
    hist : ndarray of shape (n_hist_groups, 2, score_bins)
        Weighted score histograms per ``y_true``.
    """

    patterns: tuple
    cells: np.ndarray
    hist_groups: tuple
    hist: np.ndarray
    intersections: tuple = ()
    declared_groups: tuple = ()
    threshold: float = 0.5
    score_bins: int = 4096
    calibration_bins: int = 10
    weighted: bool = False
    has_score: bool = True
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_batch(
        cls,
        df: pd.DataFrame,
        *,
        group_col: str | Sequence[str] = "groups",
        threshold: float = 0.5,
        score_bins: int = 4096,
        calibration_bins: int = 10,
        intersections: Sequence[Sequence[str]] | str = (),
        groups: Sequence[str] | None = None,
        y_true_col: str = "y_true",
        y_pred_col: str = "y_pred",
        score_col: str = "y_score",
        weight_col: str = "sample_weight",
    ) -> GroupStats:
        """Statistics of one batch.

        Parameters
        ----------
        df : DataFrame
            Predictions: ``y_true``, ``y_score`` and/or ``y_pred``, optional
            ``sample_weight``, and group membership in ``group_col``.
        group_col : str or sequence of str
            A list column (overlapping groups; ``[]`` = no identity term, null =
            unknown), one categorical column, or several boolean columns.
        threshold : float
            Decision threshold used when ``y_pred`` is absent (``y_score >= threshold``).
        score_bins : int
            Histogram bins on [0, 1] for AUCs; the AUC error bound shrinks with more bins.
        calibration_bins : int
            Equal-width bins for expected calibration error.
        intersections : sequence of sequences of str, or "pairs"
            Intersections to report as extra groups (``["a", "b"]`` -> ``"a & b"``);
            ``"pairs"`` crosses every two groups seen in this batch (only use it on a
            single batch or with an explicit list when merging).
        groups : sequence of str, optional
            Groups to report even if absent from this batch (count 0).
        """
        enc = encode(df, group_col=group_col, threshold=threshold, y_true_col=y_true_col,
                     y_pred_col=y_pred_col, score_col=score_col, weight_col=weight_col)
        return cls._from_encoded(enc, threshold=threshold, score_bins=score_bins, calibration_bins=calibration_bins,
                                 intersections=intersections, groups=groups)

    @classmethod
    def _from_encoded(cls, enc, *, threshold, score_bins, calibration_bins, intersections, groups) -> GroupStats:
        if score_bins < 1 or calibration_bins < 1:
            raise ValueError(f"score_bins and calibration_bins must be >= 1; found {score_bins}, {calibration_bins}")
        # canonical order (sorted, unknown last) so equal data gives equal statistics
        order = sorted(range(len(enc.patterns)), key=enc.patterns.__getitem__)
        remap = np.empty(len(order) + 1, dtype=np.int64)
        remap[order] = np.arange(len(order))
        remap[-1] = len(order)  # pattern -1 (unknown) -> last
        patterns = [*(enc.patterns[i] for i in order), None]
        pat = remap[enc.pattern]
        names = sorted({g for p in enc.patterns for g in p} | set(groups or ()))
        if isinstance(intersections, str):
            if intersections != "pairs":
                raise ValueError(f"intersections must be a list of group lists or 'pairs'; found {intersections!r}")
            inter = tuple((a, b) for i, a in enumerate(names) for b in names[i + 1:])
        else:
            inter = tuple(tuple(sorted(x)) for x in intersections)
            for x in inter:
                if len(x) < 2:
                    raise ValueError(f"an intersection needs at least two groups; found {x!r}")

        has_score = enc.y_score is not None
        size = len(patterns) * 4 * calibration_bins
        w = enc.weight
        if has_score:
            score = enc.y_score
            cbin = np.minimum((score * calibration_bins).astype(np.int64), calibration_bins - 1)
            key = ((pat * 2 + enc.y_true) * 2 + enc.y_pred) * calibration_bins + cbin
            ws = w * score
            cells = np.stack(
                [np.bincount(key, minlength=size).astype(np.float64), np.bincount(key, weights=w, minlength=size),
                 np.bincount(key, weights=ws, minlength=size), np.bincount(key, weights=ws * score, minlength=size)],
                axis=-1,
            )
        else:
            # decisions only (no scores): one count per (pattern, y_true, y_pred) cell, all in
            # calibration bin 0 (score 0), and no score sums -- the cheap path for count metrics
            key = pat.copy() if pat is enc.pattern else pat  # in place: no temporaries at 10M rows
            key *= 2
            key += enc.y_true
            key *= 2
            key += enc.y_pred
            key *= calibration_bins
            counts = np.bincount(key, minlength=size).astype(np.float64)
            weights = np.bincount(key, weights=w, minlength=size) if enc.weighted else counts
            cells = np.stack([counts, weights, np.zeros(size), np.zeros(size)], axis=-1)
        cells = cells.reshape(len(patterns), 2, 2, calibration_bins, 4)

        hist_groups = (OVERALL, UNKNOWN, *names, *(intersection_name(x) for x in inter))
        members = _membership(hist_groups, patterns, inter)  # (H, P)
        B = score_bins
        if not has_score:
            hist = np.zeros((len(hist_groups), 2, B))
        else:
            sbin = np.minimum((score * B).astype(np.int64), B - 1)
            if len(patterns) * 2 * B <= _HIST_DENSE_LIMIT:
                per_pat = np.bincount((pat * 2 + enc.y_true) * B + sbin, weights=w,
                                      minlength=len(patterns) * 2 * B).reshape(len(patterns), 2 * B)
                hist = (members.astype(np.float64) @ per_pat).reshape(len(hist_groups), 2, B)
            else:  # too many patterns for a dense (pattern, bin) table: one pass per group
                hist = np.zeros((len(hist_groups), 2, B))
                for h in range(len(hist_groups)):
                    m = members[h][pat]
                    hist[h] = np.bincount(enc.y_true[m] * B + sbin[m], weights=w[m], minlength=2 * B).reshape(2, B)
        return cls(tuple(patterns), cells, hist_groups, hist, inter, tuple(sorted(groups or ())),
                   float(threshold), int(score_bins), int(calibration_bins), enc.weighted, has_score)

    # ------------------------------------------------------------------ merging
    def merge(self, other: GroupStats) -> GroupStats:
        """Statistics of the union of the two batches."""
        return GroupStats.merge_all([self, other])

    @staticmethod
    def merge_all(stats: Iterable[GroupStats]) -> GroupStats:
        """Statistics of the union of all batches (same bins, threshold, intersections)."""
        stats = list(stats)
        if not stats:
            raise ValueError("merge_all needs at least one GroupStats")
        first = stats[0]
        for s in stats[1:]:
            for attr in ("threshold", "score_bins", "calibration_bins", "intersections"):
                if getattr(s, attr) != getattr(first, attr):
                    raise ValueError(f"cannot merge GroupStats with different {attr}: "
                                     f"{getattr(first, attr)!r} vs {getattr(s, attr)!r}")
        known = sorted({p for s in stats for p in s.patterns if p is not None})
        patterns = [*known, None]
        pidx = {p: i for i, p in enumerate(patterns)}
        names = sorted({g for s in stats for g in s.hist_groups[2:]} - {intersection_name(x) for x in first.intersections})
        hist_groups = (OVERALL, UNKNOWN, *names, *(intersection_name(x) for x in first.intersections))
        hidx = {h: i for i, h in enumerate(hist_groups)}
        cells = np.zeros((len(patterns), *first.cells.shape[1:]))
        hist = np.zeros((len(hist_groups), *first.hist.shape[1:]))
        for s in stats:
            np.add.at(cells, [pidx[p] for p in s.patterns], s.cells)
            np.add.at(hist, [hidx[h] for h in s.hist_groups], s.hist)
        return GroupStats(tuple(patterns), cells, hist_groups, hist, first.intersections,
                          tuple(sorted({g for s in stats for g in s.declared_groups})),
                          first.threshold, first.score_bins, first.calibration_bins,
                          any(s.weighted for s in stats), all(s.has_score for s in stats))

    # ------------------------------------------------------------------ serialising
    def to_dict(self) -> dict:
        """JSON-safe dict; :meth:`from_dict` inverts it exactly."""
        return {
            "patterns": [None if p is None else list(p) for p in self.patterns],
            "cells": self.cells.tolist(),
            "hist_groups": list(self.hist_groups),
            "hist": self.hist.tolist(),
            "intersections": [list(x) for x in self.intersections],
            "declared_groups": list(self.declared_groups),
            "threshold": self.threshold,
            "score_bins": self.score_bins,
            "calibration_bins": self.calibration_bins,
            "weighted": self.weighted,
            "has_score": self.has_score,
        }

    @classmethod
    def from_dict(cls, d: dict) -> GroupStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(None if p is None else tuple(p) for p in d["patterns"]),
            np.asarray(d["cells"], dtype=np.float64).reshape(len(d["patterns"]), 2, 2, d["calibration_bins"], 4),
            tuple(d["hist_groups"]),
            np.asarray(d["hist"], dtype=np.float64).reshape(len(d["hist_groups"]), 2, d["score_bins"]),
            tuple(tuple(x) for x in d["intersections"]), tuple(d["declared_groups"]),
            float(d["threshold"]), int(d["score_bins"]), int(d["calibration_bins"]),
            bool(d["weighted"]), bool(d["has_score"]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupStats):
            return NotImplemented
        a, b = self.to_dict(), other.to_dict()
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)

    __hash__ = None  # mutable arrays inside

    # ------------------------------------------------------------------ views
    @property
    def groups(self) -> tuple[str, ...]:
        """Reported groups: every group seen or declared, then the intersections."""
        return tuple(self.hist_groups[2:])

    @property
    def n_rows(self) -> int:
        return int(self.cells[..., N].sum())

    @property
    def n_unknown(self) -> int:
        return int(self.cells[self._unknown_index(), ..., N].sum()) if None in self.patterns else 0

    def _unknown_index(self) -> int:
        return self.patterns.index(None)

    def membership(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Boolean matrix (len(names), n_patterns): which patterns belong to each name.

        Names may be ``overall``, ``unknown``, ``known``, a group, an intersection, or
        ``"rest:<group>"`` (known rows not in the group, the background of Borkan et al.).
        """
        names = self.groups if names is None else tuple(names)
        key = ("membership", names)
        if key not in self._cache:
            self._cache[key] = _membership(names, self.patterns, self.intersections)
        return self._cache[key]

    def cell_table(self, names: Sequence[str] | None = None, *, weighted: bool = True) -> np.ndarray:
        """Confusion cells per name, shape (len(names), 2, 2) indexed [name, y_true, y_pred]."""
        m = self.membership(names).astype(np.float64)
        per_pattern = self.cells[..., W if weighted else N].sum(axis=-1)  # (P, 2, 2)
        return np.einsum("gp,pij->gij", m, per_pattern)

    def hist_for(self, name: str) -> np.ndarray:
        """Score histogram (2, score_bins) for a name; ``rest:<g>`` and ``known`` by subtraction."""
        idx = {h: i for i, h in enumerate(self.hist_groups)}
        if name in idx:
            return self.hist[idx[name]]
        if name == "known":
            return np.maximum(self.hist[0] - self.hist[1], 0.0)
        if name.startswith("rest:") and name[5:] in idx:
            return np.maximum(self.hist[0] - self.hist[1] - self.hist[idx[name[5:]]], 0.0)
        raise KeyError(f"no histogram for {name!r}; groups: {', '.join(self.groups)}")


def _membership(names: Sequence[str], patterns: Sequence, intersections: Sequence[tuple]) -> np.ndarray:
    inter = {intersection_name(x): set(x) for x in intersections}
    out = np.zeros((len(names), len(patterns)), dtype=bool)
    for i, name in enumerate(names):
        rest = name.startswith("rest:")
        g = name[5:] if rest else name
        for j, p in enumerate(patterns):
            if name == OVERALL:
                out[i, j] = True
            elif name == UNKNOWN:
                out[i, j] = p is None
            elif name == "known":
                out[i, j] = p is not None
            elif p is None:
                out[i, j] = False
            else:
                inside = inter[g] <= set(p) if g in inter else g in p
                out[i, j] = (not inside) if rest else inside
    return out


def _close(a, b) -> bool:
    if isinstance(a, list) and a and isinstance(a[0], (list, float, int)) and not isinstance(a[0], bool):
        try:
            return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-9)
        except (ValueError, TypeError):
            pass
    return a == b
