"""Audit counts and report: hand-worked 2x2 tables and scipy as the oracle."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from debias.corpus.audit import (
    audit_counts,
    audit_report,
    audit_table,
    group_counts,
    log_odds_ratio,
    merge_counts,
)


def _frame() -> pd.DataFrame:
    # 8 rows; female: rows 0-3 (labels 1,1,1,0); muslim: rows 3-4 (0,1); none: rows 5-7 (0,0,1).
    return pd.DataFrame(
        {
            "label": [1, 1, 1, 0, 1, 0, 0, 1],
            "g_female": [True, True, True, True, False, False, False, False],
            "g_muslim": [False, False, False, True, True, False, False, False],
        }
    )


def test_counts_by_hand_with_overlapping_membership():
    c = audit_counts(_frame(), group_names=["female", "muslim"])
    assert list(c["group"]) == ["female", "muslim", "__none__", "__all__"]
    assert c.set_index("group").loc["female"].tolist() == [1, 3]
    assert c.set_index("group").loc["muslim"].tolist() == [1, 1]
    assert c.set_index("group").loc["__none__"].tolist() == [2, 1]
    assert c.set_index("group").loc["__all__"].tolist() == [3, 5]
    assert group_counts(c) == {"female": 4, "muslim": 2}


def test_merge_of_batches_equals_whole():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"label": rng.integers(0, 2, 300)})
    for g in ["a", "b", "c"]:
        df[f"g_{g}"] = rng.random(300) < 0.3
    whole = audit_counts(df, group_names=["a", "b", "c"])
    merged = merge_counts(
        [
            audit_counts(p, group_names=["a", "b", "c"])
            for p in (df.iloc[:50], df.iloc[50:51], df.iloc[51:200], df.iloc[200:])
        ]
    )
    pd.testing.assert_frame_equal(whole, merged)
    # An empty batch contributes zeros and keeps every group row.
    empty = audit_counts(df.iloc[:0], group_names=["a", "b", "c"])
    assert len(empty) == 5 and empty[["n_neg", "n_pos"]].to_numpy().sum() == 0


def test_log_odds_ratio_by_hand_and_haldane():
    r = log_odds_ratio(10, 20, 30, 40)
    assert r["log_odds_ratio"] == pytest.approx(math.log(10 * 40 / (20 * 30)))
    se = math.sqrt(1 / 10 + 1 / 20 + 1 / 30 + 1 / 40)
    assert r["se"] == pytest.approx(se)
    assert r["ci_low"] == pytest.approx(r["log_odds_ratio"] - 1.959964 * se, abs=1e-6)
    assert not r["haldane"]
    z = log_odds_ratio(0, 5, 3, 4)
    assert z["haldane"]
    assert z["log_odds_ratio"] == pytest.approx(math.log(0.5 * 4.5 / (5.5 * 3.5)))
    assert z["ci_low"] < z["log_odds_ratio"] < z["ci_high"]


def test_report_matches_hand_and_scipy():
    rep = audit_report(audit_counts(_frame(), group_names=["female", "muslim"]), min_group_size=3)
    json.dumps(rep)  # JSON-serialisable
    assert rep["n"] == 8 and rep["n_pos"] == 5 and rep["base_rate"] == pytest.approx(5 / 8)
    f = rep["groups"]["female"]
    assert f["n"] == 4 and f["n_pos"] == 3 and f["label_rate"] == 0.75 and f["share"] == 0.5
    # female in: 3 pos 1 neg; out: 2 pos 2 neg -> OR = 3*2/(1*2) = 3.
    assert f["log_odds_ratio"] == pytest.approx(math.log(3))
    expected = stats.chi2_contingency(np.array([[3, 1], [2, 2]]))
    assert f["p_value"] == pytest.approx(expected.pvalue)
    assert f["chi2"] == pytest.approx(expected.statistic)
    assert rep["groups"]["muslim"]["small"] and not f["small"]


def test_report_against_scipy_on_random_data():
    rng = np.random.default_rng(1)
    n = 4000
    g = rng.random(n) < 0.2
    y = (rng.random(n) < np.where(g, 0.3, 0.15)).astype(int)
    rep = audit_report(audit_counts(pd.DataFrame({"label": y, "g_x": g}), group_names=["x"]))
    s = rep["groups"]["x"]
    table = np.array(
        [[(g & (y == 1)).sum(), (g & (y == 0)).sum()], [(~g & (y == 1)).sum(), (~g & (y == 0)).sum()]]
    )
    oracle = stats.contingency.odds_ratio(table, kind="sample")
    assert s["log_odds_ratio"] == pytest.approx(math.log(oracle.statistic))
    # Woolf's interval equals the one scipy builds for the sample odds ratio.
    lo, hi = oracle.confidence_interval(0.95)
    assert s["ci_low"] == pytest.approx(math.log(lo), rel=1e-6)
    assert s["ci_high"] == pytest.approx(math.log(hi), rel=1e-6)
    assert s["ci_low"] > 0  # a real, strong association is detected
    assert s["p_value"] == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert s["p_value"] < 1e-6


def test_degenerate_groups_give_none_not_errors():
    df = pd.DataFrame({"label": [0, 1, 1], "g_a": [False, False, False], "g_b": [True, True, True]})
    rep = audit_report(audit_counts(df, group_names=["a", "b"]))
    json.dumps(rep)
    assert rep["groups"]["a"]["n"] == 0 and rep["groups"]["a"]["label_rate"] is None
    assert rep["groups"]["a"]["p_value"] is None and rep["groups"]["b"]["log_odds_ratio"] is None
    table = audit_table(rep)
    assert "| a |" not in table and "No rows for 2 group(s): a, __none__." in table


def test_table_lists_every_group():
    rep = audit_report(audit_counts(_frame(), group_names=["female", "muslim"]))
    table = audit_table(rep)
    lines = table.strip().splitlines()
    assert lines[2].startswith("| group |")
    assert sum(line.startswith("| female |") for line in lines) == 1
    assert any(line.startswith("| __none__ |") for line in lines)
    assert "+1.10" in table  # ln 3 for female


def test_bad_input_is_named():
    df = _frame()
    with pytest.raises(ValueError, match="missing group columns \\['g_gay'\\]"):
        audit_counts(df, group_names=["gay"])
    df["label"] = df["label"].astype(float)
    df.loc[0, "label"] = 0.5
    with pytest.raises(ValueError, match="must hold class ids"):
        audit_counts(df, group_names=["female"])
    with pytest.raises(ValueError, match="__all__"):
        audit_report(pd.DataFrame({"group": ["a"], "n_neg": [1], "n_pos": [1]}))


def test_chi_square_matches_scipy_on_small_and_large_tables():
    from debias.corpus.audit import _chi2_p

    rng = np.random.default_rng(7)
    tables = [np.array([[1, 1], [1, 1]]), np.array([[5, 0], [0, 5]]), np.array([[2, 3], [3, 2]]),
              np.array([[100000, 3], [2, 90000]])]
    tables += [rng.integers(0, hi, size=(2, 2)) + 1 for hi in (3, 10, 1000, 10**6) for _ in range(25)]
    for t in tables:
        chi2, p = _chi2_p(t)
        want = stats.chi2_contingency(t)  # Yates' correction, as scipy applies to 2x2 tables
        assert chi2 == pytest.approx(want.statistic, rel=1e-9, abs=1e-12)
        assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
    assert _chi2_p(np.array([[0, 0], [3, 4]])) == (None, None)


def test_k_classes_audit_one_class_against_the_rest():
    df = _frame()
    df["label"] = [i % 3 for i in range(len(df))]
    for positive in (0, 1, 2):
        got = audit_counts(df, group_names=["female"], positive=positive).set_index("group")
        member = df["g_female"].fillna(False).astype(bool)
        assert got.loc["female", "n_pos"] == int((member & (df["label"] == positive)).sum())
        assert got.loc["female", "n_neg"] == int((member & (df["label"] != positive)).sum())
        assert got.loc["__all__", "n_pos"] + got.loc["__all__", "n_neg"] == len(df)
