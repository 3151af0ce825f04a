"""Per-group decision thresholds fitted on validation predictions (post-processing mitigation).

Hardt, Price & Srebro (2016), "Equality of Opportunity in Supervised Learning", section 4: each
group's decision rule is a point on (or under) that group's ROC curve; a point between two
thresholds is reached by choosing one of them at random per text. For each constraint we search a
grid of common operating points and keep the one of highest validation accuracy:

- ``equal_opportunity``: every group at the same TPR (each at the lowest FPR its ROC hull allows);
- ``false_positive_rate_parity``: every group at the same FPR (each at its highest TPR);
- ``equalized_odds``: every group at the same (FPR, TPR), the best point under all groups' hulls;
  a group whose hull lies above that point mixes its hull point with a random classifier of the
  same FPR (Hardt et al., section 4.2).

Which cell a text falls in (the rule that :func:`cells_of` writes once, for fitting and applying):
a text that mentions no group is in the no-group cell; one group, that group's cell; several
groups, the cell of the group rarest in the validation data (the errors an average hides are
those of the smallest group). A cell with too few validation rows, or without both labels, and any
group first seen at prediction time, use the pooled cell fitted on all those rows together.

Scores below a group's ROC diagonal are not flipped (Fairlearn's ThresholdOptimizer may flip a
group's rule to "predict positive for low scores"; that is not a rule worth shipping).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from debias.schema import NO_GROUP

Constraint = Literal["equal_opportunity", "false_positive_rate_parity", "equalized_odds"]
CONSTRAINTS: tuple[str, ...] = ("equal_opportunity", "false_positive_rate_parity", "equalized_odds")
POOLED = "__pooled__"
FILE_NAME = "group_thresholds.json"


def roc_hull(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper convex hull of one group's ROC points: ``(fpr, tpr, threshold)`` vertices.

    Vertex ``i`` is the rule "positive when ``score >= threshold[i]``"; the first vertex is (0, 0)
    with threshold ``+inf`` (never positive), the last (1, 1) with ``-inf`` (always positive).
    """
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # cut only after the last row of a tie run
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(1 - y_sorted)[last]
    fpr = np.r_[0.0, fp / neg]
    tpr = np.r_[0.0, tp / pos]
    thr = np.r_[np.inf, s_sorted[last]]
    fpr[-1], tpr[-1], thr[-1] = 1.0, 1.0, -np.inf
    # Andrew's monotone chain, upper half; points are already sorted by fpr, then tpr.
    hull: list[int] = []
    for i in range(len(fpr)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (fpr[b] - fpr[a]) * (tpr[i] - tpr[a]) - (tpr[b] - tpr[a]) * (fpr[i] - fpr[a])
            if cross >= 0:  # b is on or below the segment a -> i
                hull.pop()
            else:
                break
        hull.append(i)
    idx = np.asarray(hull)
    return fpr[idx], tpr[idx], thr[idx]


@dataclass
class GroupRule:
    """One cell's randomised rule: P(positive | score) =
    ``(1 - p_random) * sum_k weights[k] * [score >= thresholds[k]] + p_random * random_rate``."""

    thresholds: list[float]
    weights: list[float]
    p_random: float = 0.0
    random_rate: float = 0.0
    fpr: float = 0.0
    tpr: float = 0.0

    def proba(self, y_score: np.ndarray) -> np.ndarray:
        s = np.asarray(y_score, dtype=np.float64)
        p = np.zeros(len(s))
        for t, w in zip(self.thresholds, self.weights, strict=True):
            p += w * (s >= t)
        return (1.0 - self.p_random) * p + self.p_random * self.random_rate


def _point_at(fpr: np.ndarray, tpr: np.ndarray, thr: np.ndarray, *, axis: Literal["fpr", "tpr"],
              value: float) -> GroupRule:
    """The best hull point whose ``axis`` coordinate is ``value``, as a mix of two vertices.

    Along fpr that is the highest tpr at that fpr; along tpr, the lowest fpr reaching that tpr.
    """
    x = fpr if axis == "fpr" else tpr
    if axis == "fpr":
        i = int(np.searchsorted(x, value, side="right")) - 1  # last vertex at or before value
        j = i + 1
        if x[i] == value or j == len(x):
            return GroupRule([float(thr[i])], [1.0], fpr=float(fpr[i]), tpr=float(tpr[i]))
    else:
        j = int(np.searchsorted(x, value, side="left"))  # first vertex at or beyond value
        i = j - 1
        if j == len(x):
            j = i = len(x) - 1
        if x[j] == value or i < 0:
            return GroupRule([float(thr[j])], [1.0], fpr=float(fpr[j]), tpr=float(tpr[j]))
    w = (value - x[i]) / (x[j] - x[i])
    return GroupRule([float(thr[i]), float(thr[j])], [1.0 - w, w],
                     fpr=float(fpr[i] + w * (fpr[j] - fpr[i])), tpr=float(tpr[i] + w * (tpr[j] - tpr[i])))


def cells_of(groups: Sequence[Sequence[str]], *, known: Sequence[str] | None = None,
             rarity: dict[str, int] | None = None) -> list[str]:
    """The threshold cell of each text (the rule in the module docstring).

    ``rarity`` ranks groups (fewest validation rows first); ``known`` are the fitted cells: any
    other cell maps to the pooled cell.
    """
    rarity = rarity or {}
    out = []
    for gs in groups:
        gs = [g for g in (gs if gs is not None else []) if g]
        if not gs:
            cell = NO_GROUP
        elif len(gs) == 1:
            cell = gs[0]
        else:
            cell = min(sorted(set(gs)), key=lambda g: rarity.get(g, 0))
        if known is not None and cell not in known:
            cell = POOLED
        out.append(cell)
    return out


@dataclass
class GroupThresholds:
    """The decision rule stored with a model: fitted per-cell rules, or (``constraint="none"``,
    no rules) one global threshold; ``predict_proba`` and ``predict`` apply it to new scores.

    ``threshold`` is the global threshold in force when the rule was made (the tuned one, when
    evaluation tuned it): the whole rule when there are no per-cell rules.
    """

    constraint: str
    rules: dict[str, GroupRule]
    rarity: dict[str, int] = field(default_factory=dict)
    validation_accuracy: float = float("nan")
    threshold: float = 0.5
    source: str = ""
    seed: int = 0  # the randomised rules' draws (with each text): stored, so serve draws as evaluate did

    @classmethod
    def global_only(cls, threshold: float, *, source: str = "", seed: int = 0) -> GroupThresholds:
        return cls(constraint="none", rules={}, threshold=float(threshold), source=source, seed=int(seed))

    def cells(self, groups: Sequence[Sequence[str]]) -> list[str]:
        return cells_of(groups, known=list(self.rules), rarity=self.rarity)

    def predict_proba(self, y_score, groups: Sequence[Sequence[str]]) -> np.ndarray:
        """P(positive decision) per text: the expected decision of the randomised rule."""
        s = np.asarray(y_score, dtype=np.float64)
        if len(s) != len(groups):
            raise ValueError(f"y_score has {len(s)} rows but groups has {len(groups)}")
        if not self.rules:
            return (s >= self.threshold).astype(np.float64)
        cells = np.asarray(self.cells(groups), dtype=object)
        p = np.empty(len(s))
        for cell in set(cells.tolist()):
            m = cells == cell
            p[m] = self.rules[cell].proba(s[m])
        return p

    def predict(self, y_score, groups: Sequence[Sequence[str]], *, seed: int | None = None,
                keys: Sequence[str] | None = None) -> np.ndarray:
        """0/1 decisions. A randomised rule draws each text's uniform from ``seed`` (default: the
        rule's own), or, with ``keys`` (the texts), from a hash of the seed and the key: the same
        text then gets the same decision wherever it is decided (evaluate, serve, a rerun)."""
        seed = self.seed if seed is None else seed
        p = self.predict_proba(y_score, groups)
        if keys is not None:
            if len(keys) != len(p):
                raise ValueError(f"keys has {len(keys)} rows but y_score has {len(p)}")
            u = keyed_uniforms(keys, seed=seed)
        else:
            u = np.random.default_rng(seed).random(len(p))
        return (u < p).astype(np.int64)

    @property
    def randomised(self) -> bool:
        return any(len(r.thresholds) > 1 or r.p_random > 0 for r in self.rules.values())

    def describe(self) -> dict:
        """A short public summary (no data): the constraint, global threshold and each cell's
        thresholds; what the service's ``/v1/model`` and the evaluation report show."""
        return {"constraint": self.constraint, "threshold": self.threshold, "source": self.source,
                "randomised": self.randomised,
                "cells": {c: [round(t, 6) if np.isfinite(t) else str(t) for t in r.thresholds]
                          for c, r in sorted(self.rules.items())}}

    def to_dict(self) -> dict:
        def num(v: float):
            return v if np.isfinite(v) else ("nan" if np.isnan(v) else "inf" if v > 0 else "-inf")
        return {"constraint": self.constraint, "threshold": self.threshold, "source": self.source,
                "seed": self.seed, "validation_accuracy": num(self.validation_accuracy), "rarity": self.rarity,
                "rules": {c: {**r.__dict__, "thresholds": [num(t) for t in r.thresholds]}
                          for c, r in self.rules.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> GroupThresholds:
        rules = {c: GroupRule(**{**r, "thresholds": [float(t) for t in r["thresholds"]]})
                 for c, r in d["rules"].items()}
        return cls(constraint=d["constraint"], rules=rules, rarity=dict(d.get("rarity", {})),
                   validation_accuracy=float(d.get("validation_accuracy", float("nan"))),
                   threshold=float(d.get("threshold", 0.5)), source=str(d.get("source", "")),
                   seed=int(d.get("seed", 0)))

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / FILE_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> GroupThresholds | None:
        """The thresholds stored with a model, or ``None`` when the model has none."""
        path = Path(model_dir) / FILE_NAME
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


def keyed_uniforms(keys: Sequence[str], *, seed: int = 0) -> np.ndarray:
    """One uniform in [0, 1) per key from BLAKE2b of ``seed`` and the key (stable across
    processes and runs, unlike Python's ``hash``)."""
    salt = f"{int(seed)}\x00".encode()
    out = np.empty(len(keys))
    for i, k in enumerate(keys):
        h = hashlib.blake2b(salt + str(k).encode("utf-8", "surrogatepass"), digest_size=8).digest()
        out[i] = int.from_bytes(h, "little") / 2.0**64
    return out


def fit_group_thresholds(y_true, y_score, groups: Sequence[Sequence[str]], *,
                         constraint: Constraint = "equal_opportunity", grid_size: int = 1001,
                         min_rows: int = 30, threshold: float = 0.5, source: str = "") -> GroupThresholds:
    """Fit per-cell randomised thresholds on validation predictions (see the module docstring).

    Parameters
    ----------
    y_true, y_score : 0/1 labels and scores (higher means more positive) of the validation split.
    groups : the identity groups each text mentions (a list per text; empty for none).
    constraint : which error rates to equalise across cells.
    grid_size : common operating points searched along the constrained axis.
    min_rows : a cell with fewer validation rows (or one label only) joins the pooled cell.
    threshold, source : the global threshold in force, and where the rule came from (recorded).
    """
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}; got {constraint!r}")
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 1 or y.shape != s.shape or len(groups) != len(y):
        raise ValueError(f"y_true, y_score and groups must be 1-d of one length; got {y.shape}, "
                         f"{s.shape}, {len(groups)}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be 0/1")
    if not np.isfinite(s).all():
        raise ValueError("y_score must be finite")
    rarity = dict(Counter(g for gs in groups for g in set(gs or [])))
    raw = np.asarray(cells_of(groups, rarity=rarity), dtype=object)
    cells: dict[str, np.ndarray] = {}
    pooled = np.zeros(len(y), dtype=bool)
    for cell in sorted(set(raw.tolist())):
        m = raw == cell
        n_pos = int(y[m].sum())
        if m.sum() < min_rows or n_pos == 0 or n_pos == m.sum():
            pooled |= m
        else:
            cells[cell] = m
    cells[POOLED] = pooled  # always fitted: groups first seen at prediction time use it
    if int(y.sum()) in (0, len(y)):
        raise ValueError("fitting thresholds needs both labels in the validation split")
    # a pooled cell of a few one-label rows takes its ROC from all rows (its own rows still count)
    hulls = {c: roc_hull(y[m], s[m]) if 0 < int(y[m].sum()) < int(m.sum()) else roc_hull(y, s)
             for c, m in cells.items()}
    n_pos = {c: int(y[m].sum()) for c, m in cells.items()}
    n_neg = {c: int(m.sum() - y[m].sum()) for c, m in cells.items()}
    grid = np.linspace(0.0, 1.0, grid_size)

    def rules_at(v: float) -> dict[str, GroupRule]:
        if constraint == "equal_opportunity":
            return {c: _point_at(*h, axis="tpr", value=v) for c, h in hulls.items()}
        points = {c: _point_at(*h, axis="fpr", value=v) for c, h in hulls.items()}
        if constraint == "false_positive_rate_parity":
            return points
        t = min(r.tpr for r in points.values())
        for r in points.values():  # pull each hull point down to the common TPR along fpr = v
            r.p_random = (r.tpr - t) / (r.tpr - v) if r.tpr > v else 0.0
            r.random_rate, r.tpr = v, t
        return points

    def accuracy(rules: dict[str, GroupRule]) -> float:
        correct = sum(n_pos[c] * r.tpr + n_neg[c] * (1.0 - r.fpr) for c, r in rules.items())
        return correct / len(y)

    best = (-1.0, rules_at(0.0))
    for v in grid:
        rules = rules_at(float(v))
        acc = accuracy(rules)
        if acc > best[0] + 1e-12:
            best = (acc, rules)
    return GroupThresholds(constraint=constraint, rules=best[1], rarity=rarity, validation_accuracy=best[0],
                           threshold=float(threshold), source=source)


def decide(df, *, rule: GroupThresholds | None, threshold: float, seed: int | None = None) -> np.ndarray:
    """0/1 decisions (int8) for a scored suite frame (``y_score``, ``groups``, ``text``): the
    stored or fitted rule when there is one, else ``y_score >= threshold``. Randomised rules
    draw from ``seed`` and each row's text (see :meth:`GroupThresholds.predict`), so a rerun,
    and the service, give the same decisions."""
    s = np.asarray(df["y_score"], dtype=np.float64)
    if rule is None:
        return (s >= threshold).astype(np.int8)
    groups = [list(g) if g is not None else [] for g in df["groups"]] if "groups" in df else [[]] * len(s)
    keys = df["text"].astype(str).tolist() if "text" in df else None
    return rule.predict(s, groups, seed=seed, keys=keys).astype(np.int8)
