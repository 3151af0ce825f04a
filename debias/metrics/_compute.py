"""Metric arrays from pattern cells, shared by point estimates and the bootstrap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from debias.metrics._rates import COUNT_METRICS, all_rates
from debias.metrics.auc import auc_from_histograms
from debias.metrics.stats import WS, WS2, GroupStats, N, W

CALIBRATION_METRICS = ("brier", "ece")


def reduce_cells(stats: GroupStats, names: Sequence[str], cells: np.ndarray, *,
                 with_calibration: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum pattern cells (..., P, 2, 2, C, 4) into per-name tables.

    Returns the confusion cells (..., G, 2, 2) of weights and the calibration table
    (..., G, 2, C, 3) of [weight, weight*score, weight*score**2] per (y_true, bin).
    """
    m = stats.membership(names).astype(np.float64)  # (G, P)
    lead = cells.ndim - 5  # bootstrap axes before the pattern axis
    conf = np.moveaxis(np.tensordot(cells[..., W].sum(-1), m, axes=([lead], [1])), -1, lead)
    calib = None
    if with_calibration:
        per = cells[..., [W, WS, WS2]].sum(axis=-3)  # (..., P, 2, C, 3), summed over y_pred
        calib = np.moveaxis(np.tensordot(per, m, axes=([lead], [1])), -1, lead)
    return conf, calib


def calibration_metrics(calib: np.ndarray) -> dict[str, np.ndarray]:
    """Brier score and expected calibration error from a calibration table."""
    w, ws, ws2 = calib[..., 0], calib[..., 1], calib[..., 2]  # (..., G, 2, C)
    total = w.sum(axis=(-2, -1))
    # sum w (s - y)^2 = sum w s^2 - 2 sum_{y=1} w s + sum_{y=1} w
    sq = ws2.sum(axis=(-2, -1)) - 2 * ws[..., 1, :].sum(-1) + w[..., 1, :].sum(-1)
    # ECE = sum_b (W_b / W) |mean score_b - mean y_b| = sum_b |S_b - Y_b| / W  (Naeini et al. 2015)
    gap = np.abs(ws.sum(axis=-2) - w[..., 1, :]).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = total > 0
        return {"brier": np.where(ok, sq / np.where(ok, total, 1), np.nan),
                "ece": np.where(ok, gap / np.where(ok, total, 1), np.nan)}


def metric_arrays(stats: GroupStats, names: Sequence[str], cells: np.ndarray | None = None, *,
                  metrics: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Count-based and calibration metrics per name, shape (..., G); all or ``metrics``."""
    want = set(COUNT_METRICS + CALIBRATION_METRICS) if metrics is None else set(metrics)
    calibration = stats.has_score and bool(want & set(CALIBRATION_METRICS))
    conf, calib = reduce_cells(stats, names, stats.cells if cells is None else cells, with_calibration=calibration)
    out = all_rates(conf, [m for m in COUNT_METRICS if m in want])
    if calibration:
        out.update({k: v for k, v in calibration_metrics(calib).items() if k in want})
    return out


def hist_auc(stats: GroupStats, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Histogram ROC AUC and its error bound per name."""
    h = np.stack([stats.hist_for(g) for g in names])  # (G, 2, B)
    return auc_from_histograms(h[:, 1], h[:, 0])


def count_table(stats: GroupStats, names: Sequence[str]) -> np.ndarray:
    """Unweighted confusion cells per name (G, 2, 2)."""
    m = stats.membership(names).astype(np.float64)
    return np.einsum("gp,pij->gij", m, stats.cells[..., N].sum(-1))
