"""Is a group's difference from the rest real? Tests, corrections, detectable effects.

For a proportion metric (selection rate, TPR, FPR, ...) a group is compared with the rest:
the rows of *known* membership outside the group, so the two samples are disjoint even
when groups overlap. The test is Fisher's exact test -- the exact permutation test of a
2x2 table with fixed margins -- while it is cheap, and the pooled two-proportion z-test
above ``exact_max_n`` rows. p-values are corrected across groups per metric (Holm 1979,
or Benjamini & Hochberg 1995). Tests use row counts, not sample weights.

The minimum detectable difference (MDD) is the smallest true difference the z-test would
detect with the given power at level alpha for these sample sizes:
``(z_{1-alpha/2} + z_{power}) * sqrt(p (1 - p) (1/n_1 + 1/n_2))`` with ``p`` the pooled rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from debias.metrics._compute import count_table
from debias.metrics._rates import RATE_CELLS, rate_parts
from debias.metrics.group import DEFAULT_MIN_GROUP_SIZE, evaluate
from debias.metrics.stats import GroupStats

TESTED_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "accuracy", "precision")
Correction = Literal["holm", "bh", "none"]
TestMethod = Literal["auto", "fisher", "z"]


@dataclass(frozen=True)
class TwoProportionTest:
    """Result of comparing k1/n1 with k2/n2."""

    k1: int
    n1: int
    k2: int
    n2: int
    p1: float
    p2: float
    difference: float
    ratio: float
    statistic: float
    p_value: float
    method: str
    significant: bool
    alpha: float

    def to_dict(self) -> dict:
        return asdict(self)


def two_proportion_test(
    k1: int, n1: int, k2: int, n2: int, *,
    method: TestMethod = "auto", alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    alpha: float = 0.05, exact_max_n: int = 100_000,
) -> TwoProportionTest:
    """Test whether the proportions k1/n1 and k2/n2 differ.

    Parameters
    ----------
    k1, n1, k2, n2 : int
        Successes and trials in each sample.
    method : {"auto", "fisher", "z"}
        Fisher's exact test, the pooled z-test, or Fisher up to ``exact_max_n`` rows.
    alternative : {"two-sided", "greater", "less"}
        "greater" tests p1 > p2.

    Returns
    -------
    TwoProportionTest
        ``statistic`` is the z statistic (also reported for Fisher), ``difference`` is
        p1 - p2, ``ratio`` is p1 / p2.
    """
    k1, n1, k2, n2 = (int(round(x)) for x in (k1, n1, k2, n2))
    if min(k1, n1, k2, n2) < 0 or k1 > n1 or k2 > n2:
        raise ValueError(f"need 0 <= k <= n; found k1={k1}, n1={n1}, k2={k2}, n2={n2}")
    p1 = k1 / n1 if n1 else float("nan")
    p2 = k2 / n2 if n2 else float("nan")
    pooled = (k1 + k2) / (n1 + n2) if n1 + n2 else float("nan")
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)) if n1 and n2 else float("nan")
    z = (p1 - p2) / se if se and se > 0 else (0.0 if n1 and n2 else float("nan"))
    use_fisher = method == "fisher" or (method == "auto" and n1 + n2 <= exact_max_n)
    if not (n1 and n2):
        p_value, name = float("nan"), "none"
    elif use_fisher:
        p_value, name = float(sps.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative=alternative)[1]), "fisher"
    else:
        if alternative == "two-sided":
            p_value = float(2 * sps.norm.sf(abs(z)))
        else:
            p_value = float(sps.norm.sf(z) if alternative == "greater" else sps.norm.cdf(z))
        name = "z"
    ratio = p1 / p2 if p2 else float("nan")
    return TwoProportionTest(k1, n1, k2, n2, p1, p2, p1 - p2, ratio, float(z), p_value, name,
                             bool(p_value <= alpha) if not np.isnan(p_value) else False, alpha)


def adjust_p_values(p: Sequence[float], *, method: Correction = "holm") -> np.ndarray:
    """Family-wise (Holm) or false-discovery-rate (Benjamini-Hochberg) adjusted p-values.

    NaN p-values are kept as NaN and do not count towards the family size.
    """
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q, m = p[ok], int(ok.sum())
    if m == 0 or method == "none":
        out[ok] = q
        return out
    order = np.argsort(q)
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    elif method == "bh":
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1)) * q[order][::-1])[::-1]
    else:
        raise ValueError(f"correction must be 'holm', 'bh' or 'none'; found {method!r}")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def minimum_detectable_difference(n1, n2, p, *, alpha: float = 0.05, power: float = 0.8) -> np.ndarray:
    """Smallest difference in proportions detectable with ``power`` at level ``alpha``."""
    n1, n2, p = (np.asarray(x, dtype=float) for x in (n1, n2, p))
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n2 > 0), z * np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)), np.nan)


def group_vs_rest_tests(
    data: pd.DataFrame | GroupStats,
    *,
    metrics: Sequence[str] = TESTED_METRICS,
    correction: Correction = "holm",
    alpha: float = 0.05,
    power: float = 0.8,
    method: TestMethod = "auto",
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    **kwargs,
) -> pd.DataFrame:
    """Each group against the rest (known rows outside it), for each proportion metric.

    Returns
    -------
    DataFrame
        One row per (metric, group): ``metric``, ``group``, ``small_group``, ``k``,
        ``n`` (group), ``k_rest``, ``n_rest``, ``value``, ``rest_value``, ``difference``,
        ``statistic``, ``p_value``, ``p_adjusted`` (across groups, per metric),
        ``significant`` (adjusted p <= alpha), ``mdd`` (minimum detectable difference),
        ``method``.
    """
    bad = [m for m in metrics if m not in RATE_CELLS]
    if bad:
        raise ValueError(f"cannot test {bad}: tests are for proportion metrics {', '.join(RATE_CELLS)}")
    stats = data if isinstance(data, GroupStats) else evaluate(data, metrics=(), **kwargs).stats
    groups = stats.groups
    cells = count_table(stats, (*groups, *(f"rest:{g}" for g in groups)))
    g_cells, r_cells = cells[: len(groups)], cells[len(groups):]
    size = g_cells.sum(axis=(1, 2))
    rows = []
    for m in metrics:
        k, n = rate_parts(g_cells, m)
        kr, nr = rate_parts(r_cells, m)
        block = []
        for i, g in enumerate(groups):
            t = two_proportion_test(k[i], n[i], kr[i], nr[i], method=method, alpha=alpha)
            pooled = (k[i] + kr[i]) / (n[i] + nr[i]) if n[i] + nr[i] else np.nan
            block.append({"metric": m, "group": g, "small_group": bool(size[i] < min_group_size),
                          "k": t.k1, "n": t.n1, "k_rest": t.k2, "n_rest": t.n2, "value": t.p1,
                          "rest_value": t.p2, "difference": t.difference, "statistic": t.statistic,
                          "p_value": t.p_value, "method": t.method,
                          "mdd": float(minimum_detectable_difference(n[i], nr[i], pooled, alpha=alpha, power=power))})
        adj = adjust_p_values([r["p_value"] for r in block], method=correction)
        for r, a in zip(block, adj, strict=True):
            r["p_adjusted"] = float(a)
            r["significant"] = bool(a <= alpha) if not np.isnan(a) else False
        rows.extend(block)
    cols = ["metric", "group", "small_group", "k", "n", "k_rest", "n_rest", "value", "rest_value", "difference",
            "statistic", "p_value", "p_adjusted", "significant", "mdd", "method"]
    return pd.DataFrame(rows, columns=cols)


def rate_alerts(
    stats: GroupStats,
    *,
    metric: str = "selection_rate",
    alpha: float = 0.01,
    min_difference: float = 0.0,
    correction: Correction = "holm",
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Groups whose ``metric`` differs from the rest, significantly and by at least
    ``min_difference``: the live monitor's alarm. Small groups never alert."""
    t = group_vs_rest_tests(stats, metrics=(metric,), correction=correction, alpha=alpha,
                            min_group_size=min_group_size)
    hit = t["significant"] & (t["difference"].abs() >= min_difference) & ~t["small_group"]
    return t[hit].reset_index(drop=True)
