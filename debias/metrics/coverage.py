"""Simulated coverage of the interval methods: draw data from known rates and AUCs, count hits.

Used by the coverage tests and ``bench/intervals.py``. Each function returns, per statistic,
the share of ``sims`` simulated data sets whose interval contains the true value.
Binomial coverage is a saw-tooth in the true rate (Brown, Cai & DasGupta 2001), so rates are
drawn per data set uniformly within +-20% of the stated rate: the local average that figure
1 of that paper smooths by eye.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

from debias.metrics._compute import metric_arrays
from debias.metrics.auc import auc_from_histograms
from debias.metrics.bootstrap import bootstrap_metrics
from debias.metrics.group_intervals import disparity_intervals, metric_limits
from debias.metrics.intervals import auc_interval, mover_difference, mover_ratio, wilson_interval
from debias.metrics.stats import GroupStats

_JITTER = 0.2


def _rates(rng, p, shape) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.clip(p * rng.uniform(1 - _JITTER, 1 + _JITTER, size=shape), 0.0, 1.0)


def _hits(lo, hi, truth) -> float:
    return float(np.mean((lo <= truth + 1e-12) & (truth <= hi + 1e-12)))


def proportion_coverage(*, n: int, p: float, sims: int = 4000, seed: int = 0,
                        confidence: float = 0.95) -> dict[str, float]:
    """Wilson interval of ``k ~ Binomial(n, p)``."""
    rng = np.random.default_rng(seed)
    truth = _rates(rng, p, sims)
    k = rng.binomial(n, truth)
    return {"proportion": _hits(*wilson_interval(k, n, confidence=confidence), truth)}


def two_group_coverage(*, n: Sequence[int], p: Sequence[float], sims: int = 4000, seed: int = 0,
                       confidence: float = 0.95) -> dict[str, float]:
    """Newcombe (MOVER-Wilson) difference ``p1 - p2`` and MOVER log ratio ``p1 / p2``."""
    rng = np.random.default_rng(seed)
    t1, t2 = _rates(rng, p[0], sims), _rates(rng, p[1], sims)
    k1, k2 = rng.binomial(n[0], t1), rng.binomial(n[1], t2)
    e1, e2 = k1 / n[0], k2 / n[1]
    (l1, u1), (l2, u2) = wilson_interval(k1, n[0], confidence=confidence), wilson_interval(k2, n[1], confidence=confidence)
    out = {"difference": _hits(*mover_difference(e1, l1, u1, e2, l2, u2), t1 - t2)}
    lo, hi = mover_ratio(e1, l1, u1, e2, l2, u2)
    ok = e2 > 0  # the ratio is undefined with no event in the denominator
    out["ratio"] = _hits(lo[ok], hi[ok], (t1 / t2)[ok])
    return out


def _scores(rng, n: int, auc: float, sims: int, positive: bool, bins: int) -> np.ndarray:
    """Histograms (sims, bins) of binormal scores: positives N(d, 1), negatives N(0, 1), with
    ``d = sqrt(2) * Phi^-1(auc)`` so the true AUC is ``auc``; squashed into [0, 1]."""
    d = np.sqrt(2) * _st.norm.ppf(auc)
    x = rng.normal(d if positive else 0.0, 1.0, size=(sims, n))
    b = np.minimum((_st.norm.cdf(x / 2) * bins).astype(np.int64), bins - 1)
    flat = (np.arange(sims)[:, None] * bins + b).ravel()
    return np.bincount(flat, minlength=sims * bins).reshape(sims, bins).astype(np.float64)


def auc_coverage(*, n_pos: int, n_neg: int, auc: float, sims: int = 2000, seed: int = 0, bins: int = 1024,
                 confidence: float = 0.95) -> dict[str, float]:
    """DeLong logit interval of a binormal AUC (ties within a bin count one half)."""
    rng = np.random.default_rng(seed)
    pos, neg = _scores(rng, n_pos, auc, sims, True, bins), _scores(rng, n_neg, auc, sims, False, bins)
    return {"auc": _hits(*auc_interval(pos, neg, confidence=confidence), auc)}


def _rate_stats(k: np.ndarray, n: Sequence[int]) -> GroupStats:
    """GroupStats of disjoint groups ``g0..`` where group g has ``k[g]`` of ``n[g]`` rows flagged
    (all with y_true = 0, so the selection rate and the FPR are ``k / n``)."""
    G = len(n)
    cells = np.zeros((G + 1, 2, 2, 1, 4))
    cells[:G, 0, 1, 0, 0] = cells[:G, 0, 1, 0, 1] = k
    cells[:G, 0, 0, 0, 0] = cells[:G, 0, 0, 0, 1] = np.asarray(n) - k
    names = tuple(f"g{i}" for i in range(G))
    return GroupStats(tuple((g,) for g in names) + (None,), cells, ("overall", "unknown", *names),
                      np.zeros((G + 2, 2, 1)), score_bins=1, calibration_bins=1, has_score=False)


def _truths(t: np.ndarray, n: Sequence[int]) -> dict[str, float]:
    o = float(np.dot(t, n) / np.sum(n))
    r = t / o if o > 0 else np.full(len(t), np.nan)
    return {"min_value": t.min(), "max_value": t.max(), "difference": t.max() - t.min(),
            "ratio": t.min() / t.max() if t.max() > 0 else np.nan,
            "difference_to_overall": np.abs(t - o).max(), "ratio_to_overall": np.min(np.where(r > 1, 1 / r, r))}


def extremum_coverage(*, n: Sequence[int], p: Sequence[float], sims: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> dict[str, float]:
    """Worst / best group rate, largest gap, ratio and gaps to overall over disjoint groups,
    through :func:`debias.metrics.group_intervals.disparity_intervals` (what ``disparities`` reports)."""
    rng = np.random.default_rng(seed)
    G = len(n)
    names = (*(f"g{i}" for i in range(G)), "overall")
    use = np.r_[np.ones(G, dtype=bool), False]
    hits: dict[str, list] = {}
    for _ in range(sims):
        t = _rates(rng, p, G)
        stats = _rate_stats(rng.binomial(n, t), n)
        values = metric_arrays(stats, names, metrics=["selection_rate"])["selection_rate"]
        iv = disparity_intervals(stats, names, values, "selection_rate", use, G, confidence=confidence)
        for key, truth in _truths(t, n).items():
            if np.isfinite(truth) and np.isfinite(iv[key][0]):
                hits.setdefault(key, []).append(iv[key][0] - 1e-12 <= truth <= iv[key][1] + 1e-12)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def worst_auc_coverage(*, n: Sequence[int], auc: Sequence[float], base_rate: float = 0.3, sims: int = 500,
                       seed: int = 0, bins: int = 256, confidence: float = 0.95) -> dict[str, float]:
    """Worst (lowest) group AUC and the largest AUC gap over disjoint groups of ``n`` rows."""
    rng = np.random.default_rng(seed)
    G = len(n)
    n_pos = [max(1, round(base_rate * m)) for m in n]
    hist = np.zeros((sims, G, 2, bins))
    for g in range(G):
        hist[:, g, 1] = _scores(rng, n_pos[g], auc[g], sims, True, bins)
        hist[:, g, 0] = _scores(rng, n[g] - n_pos[g], auc[g], sims, False, bins)
    names = (*(f"g{i}" for i in range(G)), "overall")
    use = np.r_[np.ones(G, dtype=bool), False]
    t = np.asarray(auc, dtype=np.float64)
    truth = {"min_value": t.min(), "max_value": t.max(), "difference": t.max() - t.min()}
    hits: dict[str, list] = {}
    cells = np.zeros((G + 1, 2, 2, 1, 4))
    for s in range(sims):
        h = np.concatenate([hist[s].sum(0, keepdims=True), np.zeros((1, 2, bins)), hist[s]])
        stats = GroupStats(tuple((g,) for g in names[:-1]) + (None,), cells, ("overall", "unknown", *names[:-1]),
                           h, score_bins=bins, calibration_bins=1)
        hh = np.concatenate([hist[s], h[:1]])
        values = auc_from_histograms(hh[:, 1], hh[:, 0])[0]
        iv = disparity_intervals(stats, names, values, "roc_auc", use, G, confidence=confidence)
        for key, v in truth.items():
            hits.setdefault(key, []).append(iv[key][0] - 1e-12 <= v <= iv[key][1] + 1e-12)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def bootstrap_coverage(*, n: int, sims: int = 400, n_boot: int = 400, seed: int = 0,
                       confidence: float = 0.95) -> dict[str, float]:
    """Percentile-bootstrap Brier score and F1 of groups of ``n`` rows, each group one data set.

    Scores ``s ~ U(0, 1)``, labels ``y ~ Bernoulli(s)`` (calibrated), decisions ``s >= 0.5``:
    true Brier ``E[s(1 - s)] = 1/6``; true F1 ``2 TP / (2 TP + FP + FN)`` with ``TP = 3/8``,
    ``FP = FN = 1/8`` (shares of rows).
    """
    rng = np.random.default_rng(seed)
    s = rng.random((sims, n))
    y = (rng.random((sims, n)) < s).astype(np.int64)
    pred = (s >= 0.5).astype(np.int64)
    C = 10
    cbin = np.minimum((s * C).astype(np.int64), C - 1)
    key = ((np.arange(sims)[:, None] * 2 + y) * 2 + pred) * C + cbin
    size = sims * 4 * C
    cells = np.stack([np.bincount(key.ravel(), minlength=size).astype(np.float64)] * 2
                     + [np.bincount(key.ravel(), weights=s.ravel(), minlength=size),
                        np.bincount(key.ravel(), weights=(s * s).ravel(), minlength=size)], -1)
    cells = np.concatenate([cells.reshape(sims, 2, 2, C, 4), np.zeros((1, 2, 2, C, 4))])
    names = tuple(f"g{i}" for i in range(sims))
    stats = GroupStats(tuple((g,) for g in names) + (None,), cells, ("overall", "unknown", *names),
                       np.zeros((sims + 2, 2, 1)), score_bins=1, calibration_bins=C)
    # each group its own data set: resample within groups, as the row bootstrap of one data set does
    values = metric_arrays(stats, names, metrics=["brier", "f1"])
    out = {}
    reps = _stratified_bootstrap(stats, names, n_boot=n_boot, seed=seed + 1)
    for m, truth in (("brier", 1 / 6), ("f1", 0.75)):
        lo, hi = metric_limits(stats, names, values[m], m, confidence=confidence, replicates=reps)
        out[m] = _hits(lo, hi, truth)
    return out


def _stratified_bootstrap(stats: GroupStats, names, *, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """``bootstrap_metrics`` per group (one independent row bootstrap per simulated data set)."""
    reps: dict[str, list] = {}
    for i, g in enumerate(names):
        sub = GroupStats(((g,), None), stats.cells[[i, -1]], ("overall", "unknown", g), np.zeros((3, 2, 1)),
                         score_bins=1, calibration_bins=stats.calibration_bins)
        r = bootstrap_metrics(sub, [g], n_boot=n_boot, seed=seed + i, metrics=["brier", "f1"])
        for k, v in r.items():
            reps.setdefault(k, []).append(v[:, 0])
    return {k: np.stack(v, axis=1) for k, v in reps.items()}
