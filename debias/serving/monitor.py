"""Live fairness monitor: sliding-window decision counts per identity group and class.

The served model's decisions are watched the way an auditor would read them afterwards: for
each identity group mentioned in recent requests, how often is the decision positive, and is
that rate different from the rate on every other request by more than a configured bound,
with statistical significance? No text is kept: an event is only the set of groups detected
in one text and its decided class (0/1 for a binary model, 0..K-1 for a K-class one).

"Positive" is one class: class 1 for a binary model, the focus class (the class the service's
``scores`` read) for a K-class one. Beside that alert statistic every class is counted per
group, so a K-class service shows its whole decision table by group.

State is a :class:`MonitorCounts` (positive counts per group plus totals) and a
:class:`ClassCounts` (texts per group and class). Counts of disjoint streams add, so the
windows of several replicas merge into one view by summing (``sum(counts, MonitorCounts())``),
and :func:`group_vs_rest` works on any such sum.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

REPORT_COLUMNS = [
    "group", "n", "positives", "positive_rate", "rest_n", "rest_positives",
    "rest_positive_rate", "difference", "test", "statistic", "p_value", "alert",
]


@dataclass(frozen=True)
class MonitorCounts:
    """Decisions in a window: totals, and per group ``(texts mentioning it, positives)``.

    A text mentioning several groups counts once in each of them and once in the totals, so
    ``by_group`` counts may sum to more than ``n``; "rest" for a group is every text that does
    not mention it: ``(n - n_g, positives - positives_g)``.
    """

    n: int = 0
    positives: int = 0
    by_group: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __add__(self, other: MonitorCounts) -> MonitorCounts:
        if not isinstance(other, MonitorCounts):
            return NotImplemented
        merged = dict(self.by_group)
        for g, (n, pos) in other.by_group.items():
            n0, pos0 = merged.get(g, (0, 0))
            merged[g] = (n0 + n, pos0 + pos)
        return MonitorCounts(self.n + other.n, self.positives + other.positives, merged)

    def __radd__(self, other: Any) -> MonitorCounts:  # lets sum(list_of_counts) start at 0
        if other == 0:
            return self
        return self.__add__(other)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for shipping between processes."""
        return {"n": self.n, "positives": self.positives,
                "by_group": {g: [n, p] for g, (n, p) in sorted(self.by_group.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorCounts:
        return cls(int(d["n"]), int(d["positives"]),
                   {str(g): (int(v[0]), int(v[1])) for g, v in d.get("by_group", {}).items()})


@dataclass(frozen=True)
class ClassCounts:
    """Decided classes in a window: texts per class overall and per group, in class-id order.

    As in :class:`MonitorCounts` a text mentioning several groups counts once in each of them
    (and once in ``overall``); a group's rest is ``overall - by_group[g]``.
    """

    n_classes: int = 2
    overall: tuple[int, ...] = ()
    by_group: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.overall:
            object.__setattr__(self, "overall", (0,) * self.n_classes)
        for where, v in (("overall", self.overall), *((f"by_group[{g!r}]", c) for g, c in self.by_group.items())):
            if len(v) != self.n_classes:
                raise ValueError(f"{where}: expected {self.n_classes} class counts; found {len(v)}")

    def __add__(self, other: ClassCounts) -> ClassCounts:
        if not isinstance(other, ClassCounts):
            return NotImplemented
        if other.n_classes != self.n_classes:
            raise ValueError(f"cannot add counts of {self.n_classes} and {other.n_classes} classes")
        merged = dict(self.by_group)
        zero = (0,) * self.n_classes
        for g, c in other.by_group.items():
            merged[g] = tuple(a + b for a, b in zip(merged.get(g, zero), c, strict=True))
        return ClassCounts(self.n_classes, tuple(a + b for a, b in zip(self.overall, other.overall, strict=True)),
                           merged)

    def __radd__(self, other: Any) -> ClassCounts:
        if other == 0:
            return self
        return self.__add__(other)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: lists of counts in class-id order."""
        return {"n_classes": self.n_classes, "overall": list(self.overall),
                "by_group": {g: list(c) for g, c in sorted(self.by_group.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassCounts:
        return cls(int(d["n_classes"]), tuple(int(x) for x in d["overall"]),
                   {str(g): tuple(int(x) for x in c) for g, c in d.get("by_group", {}).items()})


def two_proportion_test(x1: int, n1: int, x2: int, n2: int, *,
                        min_expected: float = 5.0) -> tuple[str, float, float]:
    """Two-sided test of ``x1/n1 == x2/n2``: ``(test name, statistic, p-value)``.

    The pooled two-sample z-test for proportions, z = (p1 - p2) / sqrt(p (1 - p) (1/n1 +
    1/n2)) with p = (x1 + x2) / (n1 + n2) (Agresti, *Categorical Data Analysis*, 3rd ed.,
    2013, ch. 3; equal to Pearson's chi-squared on the 2x2 table without continuity
    correction). When any expected cell count of the 2x2 table is below ``min_expected`` the
    normal approximation is poor, so Fisher's exact test is used instead and the statistic
    is the sample odds ratio.

    A comparison with an empty side, or with no variation at all (every decision the same),
    carries no evidence: ``p = 1``.
    """
    for name, v in (("x1", x1), ("n1", n1), ("x2", x2), ("n2", n2)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a non-negative integer; found {v!r}")
    if x1 > n1 or x2 > n2:
        raise ValueError(f"successes cannot exceed trials; found x1={x1}, n1={n1}, x2={x2}, n2={n2}")
    if n1 == 0 or n2 == 0:
        return "none", 0.0, 1.0
    total = n1 + n2
    pooled = (x1 + x2) / total
    if pooled in (0.0, 1.0):
        return "none", 0.0, 1.0
    expected = min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if expected < min_expected:
        from scipy.stats import fisher_exact

        res = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
        return "fisher", float(res.statistic), float(res.pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    # Two-sided normal tail: 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt(2)).
    return "z", z, math.erfc(abs(z) / math.sqrt(2))


def group_vs_rest(counts: MonitorCounts, *, bound: float, alpha: float,
                  min_count: int = 1) -> pd.DataFrame:
    """One row per group: its positive rate against the rest, and whether to alert.

    ``alert`` is True when ``|rate_g - rate_rest| > bound`` AND the two-proportion test gives
    ``p < alpha`` AND both sides hold at least ``min_count`` texts. Columns:
    :data:`REPORT_COLUMNS`, rows sorted by group name.
    """
    if not 0.0 <= bound <= 1.0:
        raise ValueError(f"bound must be in [0, 1]; found {bound}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); found {alpha}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1; found {min_count}")
    rows = []
    for g in sorted(counts.by_group):
        n_g, pos_g = counts.by_group[g]
        rest_n, rest_pos = counts.n - n_g, counts.positives - pos_g
        rate_g = pos_g / n_g if n_g else math.nan
        rate_r = rest_pos / rest_n if rest_n else math.nan
        diff = rate_g - rate_r
        test, stat, p = two_proportion_test(pos_g, n_g, rest_pos, rest_n)
        alert = bool(n_g >= min_count and rest_n >= min_count and abs(diff) > bound and p < alpha)
        rows.append([g, n_g, pos_g, rate_g, rest_n, rest_pos, rate_r, diff, test, stat, p, alert])
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


class FairnessMonitor:
    """The last ``window`` decisions, with counts per identity group (and class) kept up to date.

    Parameters
    ----------
    window : number of most recent decisions (texts) kept.
    bound : alert when a group's positive rate differs from the rest's by more than this.
    alpha : ... and the two-proportion test's p-value is below this.
    min_count : ... and both the group and the rest hold at least this many texts.
    n_classes : decisions are class ids ``0 .. n_classes - 1`` (2: 0/1 decisions).
    positive : the class whose rate :meth:`report` compares group vs rest (class 1 for a binary
        model; the focus class of a K-class one).

    Examples
    --------
    >>> m = FairnessMonitor(window=1000, bound=0.1, alpha=0.01)
    >>> m.observe([["female"], []], [1, 0])
    >>> m.counts().by_group
    {'female': (1, 1)}
    >>> m.class_counts().by_group
    {'female': (0, 1)}
    """

    def __init__(self, *, window: int, bound: float, alpha: float, min_count: int = 30,
                 n_classes: int = 2, positive: int = 1) -> None:
        if int(window) != window or window < 1:
            raise ValueError(f"window must be a positive integer; found {window!r}")
        if int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2; found {n_classes!r}")
        if int(positive) != positive or not 0 <= positive < n_classes:
            raise ValueError(f"positive must be a class id in 0..{n_classes - 1}; found {positive!r}")
        group_vs_rest(MonitorCounts(), bound=bound, alpha=alpha, min_count=min_count)  # validate
        self.window = int(window)
        self.bound = float(bound)
        self.alpha = float(alpha)
        self.min_count = int(min_count)
        self.n_classes = int(n_classes)
        self.positive = int(positive)
        self._events: deque[tuple[tuple[str, ...], int]] = deque()
        # the window as a (group, class) table; texts and positives are read out of it
        self._class_n: list[int] = [0] * self.n_classes
        self._group_class: dict[str, list[int]] = {}
        self.seen_ = 0  # decisions observed since creation, window or not

    def observe(self, groups: Sequence[Iterable[str]], decisions: Sequence[int]) -> None:
        """Add one event per text: the groups it mentions and its decided class."""
        if len(groups) != len(decisions):
            raise ValueError(f"groups and decisions must have the same length; found "
                             f"{len(groups)} and {len(decisions)}")
        checked = []
        for gs, d in zip(groups, decisions, strict=True):
            if isinstance(gs, str):
                raise TypeError(f"each groups item must be a list of group names; found the string {gs!r}")
            d = int(d)
            if not 0 <= d < self.n_classes:
                raise ValueError(f"decisions must be 0 or 1; found {d}" if self.n_classes == 2 else
                                 f"decisions must be class ids 0..{self.n_classes - 1}; found {d}")
            checked.append((tuple(sorted(set(map(str, gs)))), d))
        for event in checked:
            self._add(event, +1)
            self._events.append(event)
            if len(self._events) > self.window:
                self._add(self._events.popleft(), -1)
        self.seen_ += len(checked)

    def _add(self, event: tuple[tuple[str, ...], int], sign: int) -> None:
        gs, d = event
        self._class_n[d] += sign
        for g in gs:
            row = self._group_class.setdefault(g, [0] * self.n_classes)
            row[d] += sign
            if not any(row):  # a group that left the window leaves the report
                del self._group_class[g]

    def counts(self) -> MonitorCounts:
        """The window's counts (mergeable with other monitors' counts by ``+``)."""
        k = self.positive
        return MonitorCounts(len(self._events), self._class_n[k],
                             {g: (sum(c), c[k]) for g, c in self._group_class.items()})

    def class_counts(self) -> ClassCounts:
        """The window's texts per class, overall and per group (mergeable by ``+``)."""
        return ClassCounts(self.n_classes, tuple(self._class_n),
                           {g: tuple(c) for g, c in self._group_class.items()})

    def report(self) -> pd.DataFrame:
        """:func:`group_vs_rest` on the current window with this monitor's settings."""
        return group_vs_rest(self.counts(), bound=self.bound, alpha=self.alpha,
                             min_count=self.min_count)

    def __len__(self) -> int:
        return len(self._events)
