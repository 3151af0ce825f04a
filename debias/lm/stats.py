"""Item-level bootstrap for the audit's statistics (rates, scores) and a seeded row sample.

The LM suites' statistics are functions of per-item arrays (a 0/1 "stereotype preferred", a
predicted option). Resampling items with replacement and recomputing the statistic gives
percentile intervals (Efron & Tibshirani 1993, ch. 13) through the project's
:func:`debias.metrics.percentile_interval`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from debias.metrics.bootstrap import percentile_interval

__all__ = ["bootstrap_statistic", "seeded_limit", "by_category"]


def seeded_limit(df: pd.DataFrame, limit: int | None, *, seed: int, key: str | None = None) -> pd.DataFrame:
    """A seeded sample of ``limit`` rows (or of ``limit`` distinct ``key`` values), in input order."""
    if limit is None:
        return df
    if limit < 1:
        raise ValueError(f"limit must be >= 1 or None; found {limit}")
    rng = np.random.default_rng(seed)
    if key is None:
        if len(df) <= limit:
            return df
        keep = np.sort(rng.choice(len(df), size=limit, replace=False))
        return df.iloc[keep]
    values = df[key].drop_duplicates().to_numpy()
    if len(values) <= limit:
        return df
    chosen = set(rng.choice(values, size=limit, replace=False).tolist())
    return df[df[key].isin(chosen)]


def bootstrap_statistic(arrays: Mapping[str, np.ndarray], stat: Callable[..., float], *, n_boot: int = 1000,
                        seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high", "n"}`` of ``stat(**arrays)`` with an item bootstrap.

    ``arrays`` are aligned per item (same length); each replicate resamples item indices.
    ``n_boot=0`` gives the point value with NaN bounds.
    """
    lens = {k: len(v) for k, v in arrays.items()}
    if len(set(lens.values())) > 1:
        raise ValueError(f"bootstrap arrays must have one length; found {lens}")
    n = next(iter(lens.values()), 0)
    if n == 0:
        return {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    value = float(stat(**arrays))
    lo = hi = float("nan")
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        reps = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, size=n)
            reps[b] = stat(**{k: np.asarray(v)[idx] for k, v in arrays.items()})
        lo_a, hi_a = percentile_interval(reps[:, None], confidence)
        lo, hi = float(lo_a[0]), float(hi_a[0])
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": int(n)}


def by_category(df: pd.DataFrame, category_col: str, fn: Callable[[pd.DataFrame, str], dict],
                *, overall: str = "overall") -> list[dict]:
    """``[fn(df, overall), fn(df[cat == c], c) for each category]`` as records (sorted by category)."""
    rows = [fn(df, overall)]
    for cat in sorted(df[category_col].dropna().unique().tolist()):
        rows.append(fn(df[df[category_col] == cat], str(cat)))
    return rows
