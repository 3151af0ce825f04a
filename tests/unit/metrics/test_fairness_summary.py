"""fairness_summary: one JSON document with everything, from rows or from statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from metrics_data import random_predictions

from debias.metrics import GroupStats, fairness_summary


def test_summary_is_json_and_consistent():
    df = random_predictions(500, seed=0)
    df["pair_id"] = (np.arange(len(df)) // 2).astype(str)
    s = fairness_summary(df, n_boot=100, seed=0, min_group_size=0, intersections=[("black", "women")])
    back = json.loads(json.dumps(s, allow_nan=False))
    assert back["n_rows"] == 500 and back["n_unknown"] == int(df["groups"].isna().sum())
    groups = {r["group"] for r in back["by_group"]}
    assert {"asian", "black", "muslim", "women", "black & women", "unknown", "overall"} == groups
    assert {c for c in back["criteria"]} >= {"demographic_parity_difference", "disparate_impact_ratio"}
    dp = back["criteria"]["demographic_parity_difference"]
    assert dp["ci_low"] <= dp["value"] <= dp["ci_high"]
    assert back["counterfactual"]["n_pairs"] == 250
    assert 0 < back["final_bias_metric"] < 1
    assert {r["group"] for r in back["bias_auc"]} == groups - {"unknown"}


def test_summary_from_stats_matches_rows_on_counts():
    df = random_predictions(400, seed=1)
    a = fairness_summary(df, n_boot=50, seed=0)
    b = fairness_summary(GroupStats.from_batch(df), n_boot=50, seed=0)
    assert b["config"]["auc"] == "histogram" and b["counterfactual"] is None
    ra = {r["group"]: r for r in a["by_group"]}
    for r in b["by_group"]:
        assert r["count"] == ra[r["group"]]["count"]
        assert abs(r["selection_rate"] - ra[r["group"]]["selection_rate"]) < 1e-12
    assert a["tests"] == b["tests"]


def test_every_group_under_the_minimum_size_gives_nan_criteria_not_an_error():
    df = pd.DataFrame({"y_true": [0, 1, 0, 1, 1, 0], "y_score": [0.1, 0.8, 0.6, 0.4, 0.9, 0.2],
                       "groups": [["a"], ["a"], ["b"], ["b"], [], []]})
    s = fairness_summary(df, n_boot=20, seed=0, min_group_size=10)
    crit = s["criteria"]["demographic_parity_difference"]
    assert crit["value"] is None or math.isnan(crit["value"])
