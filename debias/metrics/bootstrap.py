"""Bootstrap confidence intervals from sufficient statistics, without touching rows.

Resampling N rows with replacement puts Multinomial(N, p) rows into the cells
(pattern, y_true, y_pred, calibration bin), with ``p`` the observed cell shares. So for
every count-based metric, and every difference or ratio between groups, drawing the cell
counts is *exactly* the row bootstrap -- overlapping groups included, since a pattern is
one cell however many groups it belongs to -- at a cost that does not depend on N.

Two bounded approximations, documented here once:

* sample weights, Brier score and ECE: a resampled cell carries its count times the
  cell's mean weight (and mean weight*score, weight*score**2). Exact when weights are
  constant within a cell; the score spread inside a calibration bin is ignored for Brier.
* ROC AUC: each group's score histogram (coarsened to at most 512 bins) is resampled on
  its own, and the replicates are shifted by what coarsening moves the point value (so an
  interval never sits off its full-resolution AUC), so AUC intervals are per group; an AUC disparity interval treats groups as
  independent, which is conservative-to-approximate when groups overlap.

Intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13). :func:`debias.metrics.evaluate`
uses these replicates only for the metrics with no closed-form interval (F1, Brier score,
ECE); see :mod:`debias.metrics.group_intervals`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from debias.metrics._compute import count_table, metric_arrays
from debias.metrics.auc import auc_from_histograms
from debias.metrics.stats import GroupStats, N

_AUC_BOOT_BINS = 512


def bootstrap_metrics(
    stats: GroupStats,
    names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int | None = None,
    metrics: Sequence[str] | None = None,
    chunk: int = 250,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of every metric (or of ``metrics``) per name.

    Returns
    -------
    dict of str to ndarray of shape (n_boot, len(names))
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; found {n_boot}")
    rng = np.random.default_rng(seed)
    counts = stats.cells[..., N]
    total = int(round(counts.sum()))
    shape = counts.shape
    if total == 0:
        raise ValueError("cannot bootstrap empty GroupStats (0 rows)")
    p = (counts / total).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        per_row = np.where(counts[..., None] > 0, stats.cells / np.maximum(counts, 1)[..., None], 0.0)
    out: dict[str, list] = {}
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.multinomial(total, p, size=b).reshape(b, *shape).astype(np.float64)
        res = metric_arrays(stats, names, draws[..., None] * per_row, metrics=metrics)
        for k, v in res.items():
            out.setdefault(k, []).append(v)
    result = {k: np.concatenate(v, axis=0) for k, v in out.items()}
    if stats.has_score and (metrics is None or "roc_auc" in metrics):
        result["roc_auc"] = _bootstrap_auc(stats, names, n_boot=n_boot, rng=rng)
    return result


def _bootstrap_auc(stats: GroupStats, names: Sequence[str], *, n_boot: int, rng) -> np.ndarray:
    sizes = count_table(stats, names).sum(axis=(1, 2))
    out = np.full((n_boot, len(names)), np.nan)
    for i, g in enumerate(names):
        full = stats.hist_for(g)
        B = full.shape[-1]
        f = max(1, B // _AUC_BOOT_BINS)
        h = full[:, : (B // f) * f].reshape(2, -1, f).sum(-1) if B % f == 0 else full
        tot = h.sum()
        n = int(round(sizes[i]))
        if tot <= 0 or n == 0:
            continue
        draws = rng.multinomial(n, (h / tot).ravel(), size=n_boot).reshape(n_boot, 2, -1)
        # replicates on the coarse grid, shifted by what coarsening moves the point value, so
        # the interval sits around the full-resolution AUC the table reports
        shift = auc_from_histograms(full[1], full[0])[0] - auc_from_histograms(h[1], h[0])[0]
        out[:, i] = np.clip(auc_from_histograms(draws[:, 1].astype(float), draws[:, 0].astype(float))[0] + shift,
                            0.0, 1.0)  # the shift must not carry a replicate out of [0, 1]
    return out


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0, ignoring NaN replicates."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); found {confidence}")
    a = (1 - confidence) / 2
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(replicates, [a, 1 - a], axis=0)
    return lo, hi
