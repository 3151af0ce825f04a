"""The notebook API: fairness metrics by group in the shape Fairlearn users know
(:class:`MetricFrame`), and the corpus balancers in imbalanced-learn's ``fit_resample`` style
(:class:`GroupResampler`, :class:`GroupReweighter`). Thin, tested wrappers over the same pure
functions the pipeline runs; ``import debias`` exposes them.

Texts can name several groups at once, so ``sensitive_features`` may hold a list of groups
per row: a group's metrics are then over every row that names it (groups overlap), which is
what the pipeline reports too. One value per row gives Fairlearn's disjoint groups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GroupResampler", "GroupReweighter", "MetricFrame", "NAMED_METRICS"]

Metric = Callable[..., float]


def _rate(num: np.ndarray, den: np.ndarray) -> float:
    d = float(den.sum())
    return float(num.sum()) / d if d else float("nan")


def _selection_rate(y_true, y_pred, w) -> float:
    return _rate(w * (y_pred == 1), w)


def _accuracy(y_true, y_pred, w) -> float:
    return _rate(w * (y_pred == y_true), w)


def _tpr(y_true, y_pred, w) -> float:
    return _rate(w * ((y_pred == 1) & (y_true == 1)), w * (y_true == 1))


def _fpr(y_true, y_pred, w) -> float:
    return _rate(w * ((y_pred == 1) & (y_true == 0)), w * (y_true == 0))


def _fnr(y_true, y_pred, w) -> float:
    return _rate(w * ((y_pred == 0) & (y_true == 1)), w * (y_true == 1))


def _precision(y_true, y_pred, w) -> float:
    return _rate(w * ((y_pred == 1) & (y_true == 1)), w * (y_pred == 1))


def _count(y_true, y_pred, w) -> float:
    return float(len(y_true))


NAMED_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "selection_rate": _selection_rate, "accuracy": _accuracy, "tpr": _tpr, "recall": _tpr,
    "true_positive_rate": _tpr, "fpr": _fpr, "false_positive_rate": _fpr, "fnr": _fnr,
    "false_negative_rate": _fnr, "precision": _precision, "count": _count,
}


def _memberships(sensitive_features: Any, n: int) -> tuple[list[str], np.ndarray]:
    """Group names and an (n, G) membership matrix: one value per row, or a list per row."""
    values = list(sensitive_features.tolist() if hasattr(sensitive_features, "tolist") else sensitive_features)
    if len(values) != n:
        raise ValueError(f"sensitive_features has {len(values)} rows but y_true has {n}")
    if any(isinstance(v, (list, tuple, set, np.ndarray)) for v in values):
        rows = [[str(g) for g in (v if isinstance(v, (list, tuple, set, np.ndarray)) else [v])]
                for v in values]
    else:
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
            raise ValueError("sensitive_features holds missing values; give each row a group (or a list)")
        rows = [[str(v)] for v in values]
    names = sorted({g for r in rows for g in r})
    index = {g: i for i, g in enumerate(names)}
    member = np.zeros((n, len(names)), dtype=bool)
    for i, r in enumerate(rows):
        for g in r:
            member[i, index[g]] = True
    return names, member


class MetricFrame:
    """Metrics overall and by group, with differences, ratios and optional bootstrap intervals.

    Parameters
    ----------
    metrics : a callable ``f(y_true, y_pred)`` (or ``f(y_true, y_pred, sample_weight=...)``), a
        name from :data:`NAMED_METRICS`, or a dict of either.
    y_true, y_pred : 0/1 labels and decisions (``y_pred`` may be scores for a callable that
        wants scores, e.g. ``sklearn.metrics.roc_auc_score``).
    sensitive_features : one group per row, or a list of groups per row (groups overlap).
    sample_weight : optional row weights (named metrics use them; callables get them as
        ``sample_weight=`` when given).
    n_boot : bootstrap resamples for intervals (0: none); ``confidence``, ``seed`` for them.
    """

    def __init__(self, *, metrics: Metric | str | Mapping[str, Metric | str], y_true: Any, y_pred: Any,
                 sensitive_features: Any, sample_weight: Any = None, n_boot: int = 0,
                 confidence: float = 0.95, seed: int | None = 0) -> None:
        self._single = not isinstance(metrics, Mapping)
        if isinstance(metrics, Mapping):
            items = dict(metrics)
        elif isinstance(metrics, str):
            items = {metrics: metrics}
        else:
            items = {getattr(metrics, "__name__", "metric"): metrics}
        self._fns = {name: self._resolve(name, m) for name, m in items.items()}
        self.y_true = np.asarray(y_true)
        self.y_pred = np.asarray(y_pred)
        n = len(self.y_true)
        if self.y_pred.shape[0] != n:
            raise ValueError(f"y_pred has {self.y_pred.shape[0]} rows but y_true has {n}")
        self.weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if self.weight is not None and len(self.weight) != n:
            raise ValueError(f"sample_weight has {len(self.weight)} rows but y_true has {n}")
        self.groups, self.member = _memberships(sensitive_features, n)
        self._overall = self._compute(np.ones(n, dtype=bool))
        self._by_group = pd.DataFrame({g: self._compute(self.member[:, j]) for j, g in enumerate(self.groups)}).T
        self._by_group.index.name = "group"
        self._intervals = self._bootstrap(n_boot, confidence, seed) if n_boot else None

    @staticmethod
    def _resolve(name: str, m: Metric | str) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]:
        if isinstance(m, str):
            if m not in NAMED_METRICS:
                raise ValueError(f"unknown metric {m!r}; named metrics: {', '.join(sorted(NAMED_METRICS))}")
            f = NAMED_METRICS[m]
            return lambda yt, yp, w: f(yt, yp, np.ones(len(yt)) if w is None else w)
        if not callable(m):
            raise ValueError(f"metric {name!r} must be a callable or a name; found {type(m).__name__}")
        return lambda yt, yp, w: float(m(yt, yp) if w is None else m(yt, yp, sample_weight=w))

    def _compute(self, mask: np.ndarray, idx: np.ndarray | None = None) -> pd.Series:
        yt, yp = self.y_true, self.y_pred
        w = self.weight
        if idx is not None:
            yt, yp, mask = yt[idx], yp[idx], mask[idx]
            w = None if w is None else w[idx]
        out = {}
        for name, f in self._fns.items():
            try:
                out[name] = f(yt[mask], yp[mask], None if w is None else w[mask]) if mask.any() else float("nan")
            except ValueError:  # e.g. an AUC of a group with one class
                out[name] = float("nan")
        return pd.Series(out, dtype=float)

    def _bootstrap(self, n_boot: int, confidence: float, seed: int | None) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        n = len(self.y_true)
        draws = {g: [] for g in ["overall", *self.groups]}
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            draws["overall"].append(self._compute(np.ones(n, dtype=bool), idx))
            for j, g in enumerate(self.groups):
                draws[g].append(self._compute(self.member[:, j], idx))
        a = (1 - confidence) / 2
        rows = []
        for g, ds in draws.items():
            frame = pd.DataFrame(ds)
            for m in frame.columns:
                v = frame[m].to_numpy(dtype=float)
                v = v[~np.isnan(v)]
                lo, hi = (np.quantile(v, [a, 1 - a]) if len(v) else (np.nan, np.nan))
                rows.append({"group": g, "metric": m, "lo": float(lo), "hi": float(hi)})
        return pd.DataFrame(rows)

    # -- the Fairlearn-shaped views ---------------------------------------------------------

    def _shape(self, s: pd.Series) -> Any:
        return float(s.iloc[0]) if self._single else s

    @property
    def overall(self) -> Any:
        """The metric(s) on every row: a float for one metric, a Series for several."""
        return self._shape(self._overall)

    @property
    def by_group(self) -> Any:
        """One row per group: a Series for one metric, a DataFrame for several."""
        return self._by_group.iloc[:, 0] if self._single else self._by_group

    def group_min(self) -> Any:
        return self._shape(self._by_group.min(skipna=True))

    def group_max(self) -> Any:
        return self._shape(self._by_group.max(skipna=True))

    def difference(self, method: str = "between_groups") -> Any:
        """``between_groups``: max - min over groups; ``to_overall``: the largest |group - overall|."""
        if method == "between_groups":
            return self._shape(self._by_group.max() - self._by_group.min())
        if method == "to_overall":
            return self._shape((self._by_group - self._overall).abs().max())
        raise ValueError(f"method must be 'between_groups' or 'to_overall'; found {method!r}")

    def ratio(self, method: str = "between_groups") -> Any:
        """``between_groups``: min / max over groups; ``to_overall``: the smallest of group/overall
        and overall/group."""
        bg = self._by_group
        if method == "between_groups":
            return self._shape(bg.min() / bg.max())
        if method == "to_overall":
            r = pd.concat([bg / self._overall, self._overall / bg]).min()
            return self._shape(r)
        raise ValueError(f"method must be 'between_groups' or 'to_overall'; found {method!r}")

    @property
    def intervals(self) -> pd.DataFrame:
        """Bootstrap percentile intervals: ``group`` (``overall`` included), ``metric``, ``lo``, ``hi``."""
        if self._intervals is None:
            raise ValueError("no intervals: construct the MetricFrame with n_boot > 0")
        return self._intervals


def _frame(X: Any, y: Any, groups: Any) -> pd.DataFrame:
    n = len(y)
    _, member = _memberships(groups, n)  # validates
    g = [list(v) if isinstance(v, (list, tuple, set, np.ndarray)) else ([] if v is None else [str(v)])
         for v in (groups.tolist() if hasattr(groups, "tolist") else groups)]
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "label": np.asarray(y).astype(int), "groups": g,
                         "_row": np.arange(n)})


class GroupResampler:
    """Resample rows so labels are independent of groups (imbalanced-learn's ``fit_resample``).

    ``strategy``: ``oversample``, ``undersample`` or ``hybrid`` (debias.corpus.resample);
    ``fit_resample(X, y, groups)`` returns ``(X_res, y_res, groups_res)`` with X indexed like
    the input (a DataFrame, an array or a list).
    """

    def __init__(self, strategy: str = "hybrid", *, seed: int = 0, intersectional: bool = False) -> None:
        self.strategy, self.seed, self.intersectional = strategy, seed, intersectional
        self.plan_ = None

    def fit_resample(self, X: Any, y: Any, groups: Any) -> tuple[Any, np.ndarray, list]:
        from debias.corpus.resample import resample_frame

        df = _frame(X, y, groups)
        out, self.plan_ = resample_frame(df, strategy=self.strategy, seed=self.seed,
                                         intersectional=self.intersectional)
        rows = out["_row"].to_numpy()
        return _take(X, rows), out["label"].to_numpy(), [list(g) for g in out["groups"]]


class GroupReweighter:
    """Kamiran-Calders weights per (group cell, label): ``fit(y, groups)`` then
    ``transform(y, groups)`` -> weights (mean 1), or ``fit_transform``."""

    def __init__(self, method: str = "kamiran_calders", *, intersectional: bool = False) -> None:
        self.method, self.intersectional = method, intersectional
        self.weights_: dict | None = None

    def fit(self, y: Any, groups: Any) -> GroupReweighter:
        from debias.corpus.balance import cell_counts, compute_weights

        df = _frame(None, y, groups)
        self.weights_ = compute_weights(cell_counts(df, intersectional=self.intersectional), method=self.method)
        return self

    def transform(self, y: Any, groups: Any) -> np.ndarray:
        from debias.corpus.balance import apply_weights

        if self.weights_ is None:
            raise ValueError("call fit first")
        out = apply_weights(_frame(None, y, groups), weights=self.weights_, intersectional=self.intersectional)
        return out["sample_weight"].to_numpy(dtype=float)

    def fit_transform(self, y: Any, groups: Any) -> np.ndarray:
        return self.fit(y, groups).transform(y, groups)


def _take(X: Any, rows: np.ndarray) -> Any:
    if X is None:
        return None
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[rows].reset_index(drop=True)
    if isinstance(X, np.ndarray):
        return X[rows]
    if isinstance(X, Sequence):
        return [X[i] for i in rows]
    raise ValueError(f"X must be a DataFrame, Series, array or list; found {type(X).__name__}")
