"""Gates pass and fail as written; bad expressions fail before any inference with clear errors."""

from __future__ import annotations

import math

import pytest

from debias.evaluation.gates import METRICS, check_gates, parse_gate, parse_gates

VALUES = {
    "test": {"auc": 0.91, "dp_difference": 0.12,
             "bnsp_auc": {"female": 0.95, "muslim": 0.85, "tiny": math.nan}},
    "templates": {"auc": 0.70, "dp_difference": 0.02, "bnsp_auc": {"female": 0.99, "muslim": 0.97}},
}


def test_parse_forms():
    g = parse_gate(" bnsp_auc.min >= 0.9 ")
    assert (g.metric, g.agg, g.op, g.threshold, g.suite) == ("bnsp_auc", "min", ">=", 0.9, None)
    g = parse_gate("templates:dp_difference<=1e-1", suites=["test", "templates"])
    assert (g.suite, g.metric, g.agg, g.threshold) == ("templates", "dp_difference", None, 0.1)
    assert parse_gate("auc>.5").op == ">"


@pytest.mark.parametrize("expr,passed,value", [
    ("bnsp_auc.min>=0.9", False, 0.85),        # first suite (test); NaN group ignored
    ("bnsp_auc.max>=0.9", True, 0.95),
    ("bnsp_auc.mean>0.89", True, 0.90),
    ("dp_difference<=0.1", False, 0.12),
    ("templates:dp_difference<=0.1", True, 0.02),
    ("templates:bnsp_auc.min>=0.9", True, 0.97),
    ("auc<0.91", False, 0.91),                 # strict: equal does not pass
    ("auc<=0.91", True, 0.91),
    ("auc==0.91", True, 0.91),
])
def test_gates_pass_and_fail_as_written(expr, passed, value):
    (r,) = check_gates([parse_gate(expr)], VALUES)
    assert r["passed"] is passed
    assert r["value"] == pytest.approx(value)
    assert r["expr"] == expr
    assert (r["reason"] is None) == passed


def test_missing_metric_or_all_nan_fails_the_gate():
    res = check_gates(parse_gates(["cf_gap_mean<=0.1", "bnsp_auc.min>=0.5"]),
                      {"test": {"bnsp_auc": {"a": math.nan}}})
    assert [r["passed"] for r in res] == [False, False]
    assert "no suite reports cf_gap_mean" in res[0]["reason"]
    assert "has no value" in res[1]["reason"] and res[1]["value"] is None


def test_unknown_metric_lists_the_available_names():
    with pytest.raises(ValueError) as e:
        parse_gate("bnsp.min>=0.9")
    msg = str(e.value)
    assert "unknown metric 'bnsp'" in msg
    for name in ("bnsp_auc.{min,max,mean}", "dp_difference", "subgroup_auc"):
        assert name in msg


@pytest.mark.parametrize("expr,match", [
    ("bnsp_auc>=0.9", "add an aggregate, e.g. 'bnsp_auc.min'"),
    ("fpr>=0.9", r"e.g. 'fpr.max'"),
    ("dp_difference.max<=0.1", "one overall number"),
    ("bnsp_auc.median>=0.9", "unknown aggregate 'median'"),
    ("bnsp_auc.min => 0.9", "cannot parse gate"),
    ("bnsp_auc.min>=high", "cannot parse gate"),
    ("nope:auc>=0.9", "unknown suite 'nope'"),
])
def test_bad_gate_messages(expr, match):
    with pytest.raises(ValueError, match=match):
        parse_gate(expr, suites=["test"])


def test_parse_gates_reports_every_bad_gate_at_once():
    with pytest.raises(ValueError) as e:
        parse_gates(["auc>=0.5", "x>1", "y<2"])
    assert "'x'" in str(e.value) and "'y'" in str(e.value)


def test_every_metric_says_which_way_is_better():
    for m in METRICS.values():
        assert m.better in ("higher", "lower") and m.label
