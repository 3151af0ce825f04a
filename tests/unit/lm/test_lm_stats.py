"""Item bootstrap and seeded limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.lm.stats import bootstrap_statistic, seeded_limit


def test_interval_contains_estimate_and_matches_normal_approximation():
    x = np.random.default_rng(0).integers(0, 2, 400).astype(float)
    b = bootstrap_statistic({"x": x}, lambda x: x.mean(), n_boot=2000, seed=1)
    assert b["ci_low"] < b["value"] < b["ci_high"]
    se = np.sqrt(x.mean() * (1 - x.mean()) / len(x))    # the percentile width is ~ 2 x 1.96 se
    assert (b["ci_high"] - b["ci_low"]) == pytest.approx(2 * 1.96 * se, rel=0.15)
    again = bootstrap_statistic({"x": x}, lambda x: x.mean(), n_boot=2000, seed=1)
    assert again == b
    assert np.isnan(bootstrap_statistic({"x": x}, lambda x: x.mean(), n_boot=0)["ci_low"])
    with pytest.raises(ValueError, match="one length"):
        bootstrap_statistic({"a": x, "b": x[:3]}, lambda a, b: 0.0)


def test_seeded_limit_rows_and_keys():
    df = pd.DataFrame({"k": np.repeat(np.arange(10), 3), "v": np.arange(30)})
    a, b = seeded_limit(df, 5, seed=2), seeded_limit(df, 5, seed=2)
    assert a.equals(b) and len(a) == 5 and a.index.is_monotonic_increasing
    s = seeded_limit(df, 4, seed=0, key="k")
    assert s["k"].nunique() == 4 and len(s) == 12
    assert seeded_limit(df, None, seed=0) is df
    with pytest.raises(ValueError):
        seeded_limit(df, 0, seed=0)
