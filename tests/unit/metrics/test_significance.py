"""Group-vs-rest tests, multiple-testing corrections, minimum detectable difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from metrics_data import random_predictions
from scipy import stats as sps

from debias.metrics import (
    GroupStats,
    adjust_p_values,
    group_vs_rest_tests,
    minimum_detectable_difference,
    rate_alerts,
    two_proportion_test,
)


def test_holm_and_bh_hand_worked():
    p = [0.01, 0.04, 0.03, np.nan]
    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.06 (monotone)
    np.testing.assert_allclose(adjust_p_values(p, method="holm")[:3], [0.03, 0.06, 0.06])
    # BH: 0.01*3/1, 0.03*3/2, 0.04*3/3 -> 0.03, 0.045, 0.04 -> step-up min -> 0.03, 0.04, 0.04
    np.testing.assert_allclose(adjust_p_values(p, method="bh")[:3], [0.03, 0.04, 0.04])
    assert np.isnan(adjust_p_values(p)[3])
    np.testing.assert_allclose(adjust_p_values([0.02, 0.5], method="none"), [0.02, 0.5])


def test_bh_matches_scipy():
    p = np.random.default_rng(0).random(20) ** 3
    np.testing.assert_allclose(adjust_p_values(p, method="bh"), sps.false_discovery_control(p), atol=1e-12)


def test_two_proportion_z_and_fisher():
    z = two_proportion_test(60, 200, 40, 200, method="z")
    pooled = 0.25
    expected_z = (0.3 - 0.2) / np.sqrt(pooled * 0.75 * (2 / 200))
    assert z.statistic == pytest.approx(expected_z) and z.p_value == pytest.approx(2 * sps.norm.sf(expected_z))
    f = two_proportion_test(3, 10, 9, 10, method="fisher")
    assert f.p_value == pytest.approx(sps.fisher_exact([[3, 7], [9, 1]])[1]) and f.method == "fisher"
    assert two_proportion_test(3, 10, 9, 10).method == "fisher"  # auto: exact when small
    assert two_proportion_test(30000, 100000, 30000, 100000).method == "z"
    with pytest.raises(ValueError, match="0 <= k <= n"):
        two_proportion_test(5, 3, 1, 2)


def test_minimum_detectable_difference_formula_and_monotone():
    mdd = minimum_detectable_difference(100, 900, 0.5, alpha=0.05, power=0.8)
    assert mdd == pytest.approx((1.959964 + 0.841621) * np.sqrt(0.25 * (1 / 100 + 1 / 900)), rel=1e-5)
    assert minimum_detectable_difference(1000, 9000, 0.5) < mdd


def test_group_vs_rest_uses_known_rows_outside_the_group():
    df = random_predictions(600, seed=1, unknown=0.1)
    t = group_vs_rest_tests(df, metrics=["selection_rate"], min_group_size=0).set_index("group")
    in_a = df["groups"].map(lambda x: x is not None and "asian" in x)
    rest = df["groups"].notna() & ~in_a
    row = t.loc["asian"]
    assert (row["n"], row["k"]) == (in_a.sum(), df.y_pred[in_a].sum())
    assert (row["n_rest"], row["k_rest"]) == (rest.sum(), df.y_pred[rest].sum())
    assert row["p_value"] == pytest.approx(sps.fisher_exact([[row.k, row.n - row.k],
                                                            [row.k_rest, row.n_rest - row.k_rest]])[1])
    assert (t["p_adjusted"] >= t["p_value"] - 1e-15).all()


def test_real_difference_detected_and_null_not():
    rng = np.random.default_rng(2)
    n = 4000
    g = rng.choice(["a", "b", "c", "d"], n)
    y_pred = (rng.random(n) < np.where(g == "a", 0.6, 0.4)).astype(int)
    df = pd.DataFrame({"y_true": rng.integers(0, 2, n), "y_pred": y_pred, "g": g})
    t = group_vs_rest_tests(df, group_col="g", metrics=["selection_rate"]).set_index("group")
    assert t.loc["a", "significant"] and t.loc["a", "difference"] > 0.15
    assert t.loc["a", "mdd"] < 0.2 - 0.05  # the effect exceeds what this sample can detect
    alerts = rate_alerts(GroupStats.from_batch(df, group_col="g"), alpha=0.01, min_difference=0.1)
    assert alerts["group"].tolist() == ["a"]


def test_tests_reject_non_proportions():
    with pytest.raises(ValueError, match="proportion metrics"):
        group_vs_rest_tests(random_predictions(50), metrics=["f1"])
