"""Count-based metrics as functions of the confusion cells, vectorised over leading axes.

``cells[..., t, p]`` is the (weighted) number of rows with ``y_true == t`` and
``y_pred == p``. The same formulas serve point estimates (shape ``(G, 2, 2)``) and the
bootstrap (shape ``(n_boot, G, 2, 2)``). A ratio with a zero denominator is NaN: the
metric is undefined for that group (scikit-learn would return 0 with a warning).
"""

from __future__ import annotations

import numpy as np

# name -> (numerator cells, denominator cells), cells as (y_true, y_pred) pairs.
_ALL = ((0, 0), (0, 1), (1, 0), (1, 1))
RATE_CELLS: dict[str, tuple[tuple, tuple]] = {
    "base_rate": (((1, 0), (1, 1)), _ALL),
    "selection_rate": (((0, 1), (1, 1)), _ALL),
    "accuracy": (((0, 0), (1, 1)), _ALL),
    "precision": (((1, 1),), ((0, 1), (1, 1))),
    "tpr": (((1, 1),), ((1, 0), (1, 1))),
    "fpr": (((0, 1),), ((0, 0), (0, 1))),
    "fnr": (((1, 0),), ((1, 0), (1, 1))),
    "tnr": (((0, 0),), ((0, 0), (0, 1))),
}
COUNT_METRICS = (*RATE_CELLS, "f1")


def _sum(cells: np.ndarray, which: tuple) -> np.ndarray:
    return sum(cells[..., t, p] for t, p in which)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rate(cells: np.ndarray, name: str) -> np.ndarray:
    """One count-based metric from ``cells[..., 2, 2]``."""
    if name == "f1":
        tp = cells[..., 1, 1]
        return _div(2 * tp, 2 * tp + cells[..., 0, 1] + cells[..., 1, 0])
    num, den = RATE_CELLS[name]
    return _div(_sum(cells, num), _sum(cells, den))


def rate_parts(cells: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of a proportion metric (not F1)."""
    num, den = RATE_CELLS[name]
    return _sum(cells, num), _sum(cells, den)


def all_rates(cells: np.ndarray, names=COUNT_METRICS) -> dict[str, np.ndarray]:
    return {n: rate(cells, n) for n in names}
