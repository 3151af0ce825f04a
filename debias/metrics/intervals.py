"""Closed-form confidence intervals: proportions, AUCs, their differences and ratios, extrema.

Every function is vectorised over leading axes and returns ``(lo, hi)`` arrays that lie in
the statistic's range and contain its estimate.

* **Proportions** (selection rate, TPR, FPR, ...): the Wilson score interval (Wilson 1927;
  recommended by Brown, Cai & DasGupta 2001). It is never zero-width: 0 of 38 gives
  [0, 0.092]. With sample weights the weighted rate is used with the row count as ``n``
  (exact for constant weights).
* **ROC AUC**: DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988) from the placement
  values, computed on the score histograms, and a Wald interval on the logit scale, so the
  interval stays inside (0, 1) (the "modified Wald logit" interval of Qin & Hotilovac 2008).
  At AUC 0 or 1 (perfect separation, DeLong variance 0) the bound is Clopper-Pearson on
  ``min(P, N)`` disjoint (positive, negative) pairs, all ordered: ``[(alpha/2)**(1/m), 1]``.
* **Differences and ratios** of two such estimates: MOVER (Zou & Donner 2008), which recovers
  each side's variance from its own interval. On Wilson limits the difference is Newcombe's
  hybrid score interval (Newcombe 1998, method 10); ratios use MOVER on the log scale.
  Both sides are treated as independent: exact for disjoint groups, conservative for a
  group against ``overall`` or against a group it overlaps (the covariance is positive).
* **Extrema** (the worst group's value, the largest gap): :func:`extremum_interval`. A
  percentile bootstrap of a minimum is biased (it can exclude its own estimate); instead,
  for ``max_g theta_g`` the upper bound is the largest per-group upper bound at the nominal
  level, and the lower bound the largest per-group lower bound at level ``alpha / k``
  (Bonferroni) over the ``k`` groups that could be the maximum (upper bound above the
  largest lower bound). Coverage is at least nominal when the groups are far apart (k = 1:
  the worst group's own interval) and when they tie. A gap ``max - min`` is MOVER on the
  two extremum intervals, clipped at 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as _st

Limits = Callable[[float], tuple[np.ndarray, np.ndarray]]


def z_value(confidence: float) -> float:
    """Two-sided normal quantile ``z_{1 - alpha/2}`` for ``confidence = 1 - alpha``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); found {confidence}")
    return float(_st.norm.ppf(0.5 + confidence / 2))


def wilson_interval(k, n, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``k`` successes in ``n`` trials (NaN where ``n == 0``).

    ``k`` may be fractional (``p_hat * n`` for a weighted rate).
    """
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.clip(k / n, 0.0, 1.0)
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
    ok = n > 0
    lo = np.where(ok, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(ok, np.clip(centre + half, 0.0, 1.0), np.nan)
    # the exact endpoints at 0 and 1 (rounding leaves 1e-17 there otherwise)
    lo = np.where(ok & (k <= 0), 0.0, lo)
    hi = np.where(ok & (k >= n), 1.0, hi)
    return lo, hi


def mover_difference(p1, l1, u1, p2, l2, u2) -> tuple[np.ndarray, np.ndarray]:
    """MOVER interval for ``p1 - p2`` from each estimate's own interval (Zou & Donner 2008).

    On Wilson limits this is Newcombe's (1998) hybrid score interval, method 10.
    """
    p1, l1, u1, p2, l2, u2 = (np.asarray(x, dtype=np.float64) for x in (p1, l1, u1, p2, l2, u2))
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def mover_ratio(p1, l1, u1, p2, l2, u2) -> tuple[np.ndarray, np.ndarray]:
    """MOVER interval for ``p1 / p2`` on the log scale (estimates and limits >= 0).

    ``p1 == 0`` gives ``[0, u1 / l2]``; ``l2 == 0`` leaves the upper bound infinite.
    NaN where ``p2 == 0`` (the ratio is undefined).
    """
    p1, l1, u1, p2, l2, u2 = (np.asarray(x, dtype=np.float64) for x in (p1, l1, u1, p2, l2, u2))
    with np.errstate(invalid="ignore", divide="ignore"):
        lp1, lp2 = np.log(p1), np.log(p2)
        d = lp1 - lp2
        lo = np.exp(d - np.sqrt((lp1 - np.log(l1)) ** 2 + (np.log(u2) - lp2) ** 2))
        hi = np.exp(d + np.sqrt((np.log(u1) - lp1) ** 2 + (lp2 - np.log(l2)) ** 2))
        zero = p1 <= 0
        lo = np.where(zero, 0.0, lo)
        hi = np.where(zero, u1 / l2, hi)
    undefined = ~(p2 > 0)
    return np.where(undefined, np.nan, lo), np.where(undefined, np.nan, hi)


def fold_ratio(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Interval of ``min(r, 1/r)`` from an interval ``[lo, hi]`` of a ratio ``r > 0``."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_lo, inv_hi = np.where(hi > 0, 1 / hi, np.inf), np.where(lo > 0, 1 / lo, np.inf)
    below, above = hi <= 1, lo >= 1
    a = np.where(below, lo, np.where(above, inv_lo, np.minimum(lo, inv_lo)))
    b = np.where(below, hi, np.where(above, inv_hi, 1.0))
    return np.clip(a, 0, 1), np.clip(b, 0, 1)


def fold_abs(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Interval of ``|d|`` from an interval ``[lo, hi]`` of ``d``."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    straddle = (lo <= 0) & (hi >= 0)
    a = np.where(straddle, 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    return a, np.maximum(np.abs(lo), np.abs(hi))


def auc_interval(pos_hist: np.ndarray, neg_hist: np.ndarray, *, point=None,
                 confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """DeLong logit interval for the AUC of binned scores, over the last axis (bins).

    Parameters
    ----------
    pos_hist, neg_hist : ndarray (..., bins)
        Positive and negative score histograms (counts, or weights used as counts).
    point : array-like, optional
        The AUC the interval is centred on (e.g. the exact AUC of the unbinned rows);
        default the histogram AUC.
    """
    pos, neg = np.asarray(pos_hist, dtype=np.float64), np.asarray(neg_hist, dtype=np.float64)
    P, Nn = pos.sum(-1), neg.sum(-1)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.cumsum(neg, -1) - neg
        above = P[..., None] - np.cumsum(pos, -1)
        v10 = (below + 0.5 * neg) / Nn[..., None]  # placement of a positive in each bin
        v01 = (above + 0.5 * pos) / P[..., None]  # of a negative
        a_hist = (pos * v10).sum(-1) / P
        s10 = (pos * (v10 - a_hist[..., None]) ** 2).sum(-1) / np.maximum(P - 1, 1)
        s01 = (neg * (v01 - a_hist[..., None]) ** 2).sum(-1) / np.maximum(Nn - 1, 1)
        se = np.sqrt(s10 / P + s01 / Nn)
        a = a_hist if point is None else np.broadcast_to(np.asarray(point, dtype=np.float64), a_hist.shape)
        inner = (a > 0) & (a < 1) & (se > 0)
        aa = np.clip(a, 1e-12, 1 - 1e-12)
        logit = np.log(aa / (1 - aa))
        half = z * se / (aa * (1 - aa))
        from scipy.special import expit  # the logistic without exp overflow at extreme logits

        lo = np.where(inner, expit(logit - half), np.nan)
        hi = np.where(inner, expit(logit + half), np.nan)
        # perfect (or perfectly wrong) ordering: Clopper-Pearson on min(P, N) disjoint pairs
        m = np.maximum(np.minimum(np.round(P), np.round(Nn)), 1)
        edge = ((1 - confidence) / 2) ** (1 / m)
        lo = np.where(~inner & (a >= 0.5), np.minimum(edge, a), lo)
        hi = np.where(~inner & (a >= 0.5), 1.0, hi)
        lo = np.where(~inner & (a < 0.5), 0.0, lo)
        hi = np.where(~inner & (a < 0.5), np.maximum(1 - edge, a), hi)
    defined = (P > 0) & (Nn > 0) & np.isfinite(a)
    return np.where(defined, lo, np.nan), np.where(defined, hi, np.nan)


def extremum_interval(estimates, limits: Limits, *, kind: str, confidence: float = 0.95
                      ) -> tuple[float, float, float]:
    """Interval for ``max_g theta_g`` (``kind="max"``) or ``min_g theta_g`` over groups.

    Parameters
    ----------
    estimates : array-like (k,)
        Each group's estimate (NaN groups are ignored).
    limits : callable
        ``limits(confidence) -> (lo, hi)``, each group's own interval at that level.

    Returns
    -------
    estimate, lo, hi : float
        The extremum and its interval; see the module docstring for the construction.
    """
    if kind not in ("max", "min"):
        raise ValueError(f"kind must be 'max' or 'min'; found {kind!r}")
    est = np.asarray(estimates, dtype=np.float64)
    sign = 1.0 if kind == "max" else -1.0
    lo, hi = (np.asarray(x, dtype=np.float64) for x in limits(confidence))
    ok = np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    # work on the "max" side: for a min, negate everything (lo and hi swap)
    e, a, b = (sign * est, sign * lo, sign * hi) if kind == "max" else (sign * est, sign * hi, sign * lo)
    best = float(np.max(e[ok]))
    upper = float(np.max(b[ok]))
    candidates = ok & (b >= np.max(a[ok]))
    k = int(candidates.sum())
    alpha = 1 - confidence
    lo2, hi2 = (np.asarray(x, dtype=np.float64) for x in limits(1 - alpha / k)) if k > 1 else (lo, hi)
    a2 = sign * lo2 if kind == "max" else sign * hi2
    lower = float(np.max(np.where(candidates & np.isfinite(a2), a2, -np.inf)))
    lower = min(lower, best)
    if kind == "max":
        return best, lower, upper
    return -best, -upper, -lower
