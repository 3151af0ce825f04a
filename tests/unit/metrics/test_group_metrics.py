"""Group metrics, disparities and named criteria against fairlearn and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from metrics_data import random_predictions
from sklearn import metrics as skm

from debias.metrics import (
    GroupStats,
    demographic_parity_difference,
    demographic_parity_ratio,
    disparate_impact_ratio,
    disparities,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    error_rate_balance,
    group_metrics,
)

TOL = 1e-9
FAIRLEARN = {
    "selection_rate": fm.selection_rate,
    "tpr": fm.true_positive_rate,
    "fpr": fm.false_positive_rate,
    "fnr": fm.false_negative_rate,
    "tnr": fm.true_negative_rate,
    "accuracy": skm.accuracy_score,
    "precision": skm.precision_score,
    "f1": skm.f1_score,
}


def _single_group_frame(seed: int, weights: bool) -> pd.DataFrame:
    df = random_predictions(800, seed=seed, overlap=False, weights=weights, unknown=0.0)
    df["group"] = df["groups"].str[0]
    return df


def _metric_frame(df: pd.DataFrame, weights: bool) -> fm.MetricFrame:
    params = {k: {"sample_weight": df["sample_weight"].to_numpy()} for k in FAIRLEARN} if weights else None
    return fm.MetricFrame(metrics=FAIRLEARN, y_true=df["y_true"], y_pred=df["y_pred"],
                          sensitive_features=df["group"], sample_params=params)


@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_metrics_equal_fairlearn_metricframe(seed, weights):
    df = _single_group_frame(seed, weights)
    ours = group_metrics(df, group_col="group", min_group_size=0).set_index("group")
    mf = _metric_frame(df, weights)
    for name in FAIRLEARN:
        np.testing.assert_allclose(ours.loc[mf.by_group.index, name], mf.by_group[name], rtol=0, atol=TOL)
        assert abs(ours.loc["overall", name] - mf.overall[name]) < TOL
    assert (ours.loc[mf.by_group.index, "count"] == df["group"].value_counts()[mf.by_group.index]).all()


@pytest.mark.parametrize("weights", [False, True])
def test_score_metrics_equal_sklearn_per_overlapping_group(weights):
    df = random_predictions(700, seed=3, weights=weights)
    ours = group_metrics(df, min_group_size=0).set_index("group")
    w = df["sample_weight"] if weights else None
    for g in ("asian", "black", "muslim", "women"):
        m = df["groups"].map(lambda x, g=g: x is not None and g in x).to_numpy()
        sw = None if w is None else w[m]
        assert abs(ours.loc[g, "roc_auc"] - skm.roc_auc_score(df.y_true[m], df.y_score[m], sample_weight=sw)) < TOL
        assert abs(ours.loc[g, "brier"] - skm.brier_score_loss(df.y_true[m], df.y_score[m], sample_weight=sw)) < TOL
        assert abs(ours.loc[g, "tpr"] - skm.recall_score(df.y_true[m], df.y_pred[m], sample_weight=sw)) < TOL
        assert ours.loc[g, "count"] == m.sum()
    assert abs(ours.loc["overall", "roc_auc"] - skm.roc_auc_score(df.y_true, df.y_score, sample_weight=w)) < TOL
    unknown = df["groups"].isna().to_numpy()
    assert ours.loc["unknown", "count"] == unknown.sum()


def test_expected_calibration_error_matches_direct_binning():
    df = random_predictions(500, seed=4)
    ece = group_metrics(df, calibration_bins=10).set_index("group").loc["overall", "ece"]
    b = np.minimum((df.y_score * 10).astype(int), 9)
    direct = sum((b == k).mean() * abs(df.y_score[b == k].mean() - df.y_true[b == k].mean())
                 for k in range(10) if (b == k).any())
    assert abs(ece - direct) < TOL


def test_hand_worked_example():
    # group a: (y, yhat) = (1,1), (1,0), (0,1), (0,0); group b: (1,1), (0,0); one unknown row.
    df = pd.DataFrame({
        "y_true": [1, 1, 0, 0, 1, 0, 1],
        "y_pred": [1, 0, 1, 0, 1, 0, 0],
        "groups": [["a"], ["a"], ["a"], ["a"], ["b"], ["b"], None],
    })
    t = group_metrics(df, min_group_size=0).set_index("group")
    assert t.loc["a", ["selection_rate", "tpr", "fpr", "accuracy", "precision", "f1"]].tolist() == [0.5] * 6
    assert t.loc["b", ["selection_rate", "tpr", "fpr", "accuracy"]].tolist() == [0.5, 1.0, 0.0, 1.0]
    assert t.loc["unknown", "count"] == 1 and t.loc["overall", "count"] == 7
    assert t.loc["overall", "tpr"] == 2 / 4
    assert np.isnan(t.loc["unknown", "fpr"])  # no negatives: undefined, not 0
    d = disparities(df, min_group_size=0).set_index("metric")
    assert d.loc["tpr", "difference"] == 0.5 and d.loc["tpr", "ratio"] == 0.5
    assert d.loc["tpr", "min_group"] == "a" and d.loc["tpr", "max_group"] == "b"
    assert d.loc["accuracy", "difference_to_overall"] == pytest.approx(1 - 4 / 7)


def test_disparities_and_criteria_equal_fairlearn():
    df = _single_group_frame(5, weights=False)
    kw = {"group_col": "group", "min_group_size": 0}
    mf = _metric_frame(df, False)
    d = disparities(df, **kw).set_index("metric")
    for name in FAIRLEARN:
        for method, col in (("between_groups", ""), ("to_overall", "_to_overall")):
            assert abs(d.loc[name, "difference" + col] - mf.difference(method=method)[name]) < TOL
            assert abs(d.loc[name, "ratio" + col] - mf.ratio(method=method)[name]) < TOL
    args = (df.y_true, df.y_pred)
    sf = {"sensitive_features": df["group"]}
    for method in ("between_groups", "to_overall"):
        assert abs(float(demographic_parity_difference(df, method=method, **kw))
                   - fm.demographic_parity_difference(*args, method=method, **sf)) < TOL
        assert abs(float(demographic_parity_ratio(df, method=method, **kw))
                   - fm.demographic_parity_ratio(*args, method=method, **sf)) < TOL
        assert abs(float(equalized_odds_difference(df, method=method, **kw))
                   - fm.equalized_odds_difference(*args, method=method, **sf)) < TOL
        assert abs(float(equalized_odds_ratio(df, method=method, **kw))
                   - fm.equalized_odds_ratio(*args, method=method, **sf)) < TOL
        assert abs(float(equal_opportunity_difference(df, method=method, **kw))
                   - fm.equal_opportunity_difference(*args, method=method, **sf)) < TOL


def test_four_fifths_rule_and_error_rate_balance():
    df = pd.DataFrame({"y_true": [0, 1] * 20, "y_pred": [1] * 10 + [0] * 10 + [1] * 16 + [0] * 4,
                       "group": ["a"] * 20 + ["b"] * 20})
    di = disparate_impact_ratio(df, group_col="group", min_group_size=0)
    assert di.value == pytest.approx(0.5 / 0.8) and di.passed is False
    assert (di.min_group, di.max_group) == ("a", "b")
    erb = error_rate_balance(df, group_col="group", min_group_size=0)
    t = group_metrics(df, group_col="group", min_group_size=0).set_index("group")
    assert erb.value == pytest.approx(max(abs(t.loc["a", "fpr"] - t.loc["b", "fpr"]), abs(t.loc["a", "fnr"] - t.loc["b", "fnr"])))
    ok = disparate_impact_ratio(df.assign(y_pred=1), group_col="group", min_group_size=0)
    assert ok.value == 1.0 and ok.passed is True


def test_small_groups_flagged_and_left_out_of_disparities():
    df = random_predictions(300, seed=6, overlap=False, unknown=0.0)
    df.loc[:4, "groups"] = pd.Series([["tiny"]] * 5)
    t = group_metrics(df, min_group_size=10).set_index("group")
    assert t.loc["tiny", "small_group"] and t.loc["tiny", "count"] == 5
    assert not t.loc["asian", "small_group"]
    d = disparities(df, min_group_size=10).set_index("metric")
    assert "tiny" in d.loc["selection_rate", "excluded"]
    assert d.loc["selection_rate", "n_groups"] == 4
    d_all = disparities(df, min_group_size=10, include_small=True).set_index("metric")
    assert d_all.loc["selection_rate", "n_groups"] == 5


def test_unknown_never_compared():
    df = random_predictions(400, seed=7, unknown=0.3)
    d = disparities(df, min_group_size=0)
    assert not d["min_group"].eq("unknown").any() and not d["max_group"].eq("unknown").any()
    assert all("unknown" not in e for e in d["excluded"])


def test_three_ways_to_give_membership_agree():
    df = random_predictions(300, seed=8, unknown=0.0)
    cols = {g: df["groups"].map(lambda x, g=g: g in x) for g in ("asian", "black", "muslim", "women")}
    wide = pd.concat([df.drop(columns="groups"), pd.DataFrame(cols)], axis=1)
    a = group_metrics(df, min_group_size=0)
    b = group_metrics(wide, group_col=list(cols), min_group_size=0)
    pd.testing.assert_frame_equal(a, b)


def test_intersections_equal_direct_masks():
    df = random_predictions(500, seed=9)
    t = group_metrics(df, intersections=[("black", "women")], min_group_size=0).set_index("group")
    m = df["groups"].map(lambda x: x is not None and {"black", "women"} <= set(x)).to_numpy()
    assert t.loc["black & women", "kind"] == "intersection"
    assert t.loc["black & women", "count"] == m.sum()
    assert abs(t.loc["black & women", "selection_rate"] - df.y_pred[m].mean()) < TOL
    assert abs(t.loc["black & women", "roc_auc"] - skm.roc_auc_score(df.y_true[m], df.y_score[m])) < TOL
    st = GroupStats.from_batch(df, intersections=[("black", "women")])
    ts = group_metrics(st, min_group_size=0).set_index("group")
    assert abs(ts.loc["black & women", "selection_rate"] - df.y_pred[m].mean()) < TOL


def test_stats_input_gives_same_count_metrics_and_bounded_auc():
    df = random_predictions(900, seed=10, weights=True)
    exact = group_metrics(df, min_group_size=0).set_index("group")
    hist = group_metrics(GroupStats.from_batch(df, score_bins=1024), min_group_size=0).set_index("group")
    cols = ["count", "selection_rate", "tpr", "fpr", "precision", "f1", "brier", "ece"]
    np.testing.assert_allclose(hist[cols].to_numpy(float), exact[cols].to_numpy(float), rtol=0, atol=TOL)
    err = (hist["roc_auc"] - exact["roc_auc"]).abs()
    assert (err <= hist["roc_auc_error_bound"] + 1e-12).all()
    assert (hist["roc_auc_error_bound"] < 0.01).all()


def test_bad_input_messages():
    df = random_predictions(20, seed=11)
    with pytest.raises(ValueError, match="missing column.*'label'"):
        group_metrics(df, y_true_col="label")
    with pytest.raises(ValueError, match="only 0 and 1"):
        group_metrics(df.assign(y_true=2))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        group_metrics(df.assign(y_score=1.5))
    with pytest.raises(ValueError, match="reserved"):
        group_metrics(df.assign(groups=[["overall"]] * 20))
    with pytest.raises(ValueError, match="unknown metric"):
        group_metrics(df, metrics=["auroc"])
    with pytest.raises(TypeError, match="DataFrame or GroupStats"):
        group_metrics([1, 2])


def test_equality_differences_against_per_term_confusion_matrices():
    """FPED / FNED (Dixon et al. 2018) against scikit-learn's confusion matrix per group, with a
    group too small to count and one whose FNR is undefined (no positives)."""
    from debias.metrics import equality_differences, fairness_summary

    rng = np.random.default_rng(4)
    rows = []
    for g, n, base in (("a", 300, 0.3), ("b", 250, 0.6), ("c", 200, 0.5), ("tiny", 10, 0.5), ("nopos", 80, 0.0)):
        y = (rng.random(n) < base).astype(int)
        s = np.clip(0.35 * y + rng.random(n) * 0.65 + (0.1 if g == "b" else 0.0), 0, 1)
        rows.append(pd.DataFrame({"y_true": y, "y_score": s, "groups": [[g]] * n}))
    df = pd.concat(rows, ignore_index=True)
    pred = (df["y_score"] >= 0.5).astype(int)

    def rates(mask):
        tn, fp, fn, tp = skm.confusion_matrix(df["y_true"][mask], pred[mask], labels=[0, 1]).ravel()
        return fp / (fp + tn), (fn / (fn + tp) if fn + tp else np.nan)

    fpr_all, fnr_all = rates(np.ones(len(df), bool))
    per = {g: rates(df["groups"].map(lambda x, g=g: g in x).to_numpy()) for g in ("a", "b", "c", "nopos")}
    want_fped = sum(abs(fp - fpr_all) for fp, _ in per.values())
    want_fned = sum(abs(fn - fnr_all) for _, fn in per.values() if not np.isnan(fn))

    got = equality_differences(df, min_group_size=30)
    assert got["n_groups"] == 4 and got["n_groups_fpr"] == 4 and got["n_groups_fnr"] == 3
    assert got["fped"] == pytest.approx(want_fped, abs=TOL)
    assert got["fned"] == pytest.approx(want_fned, abs=TOL)
    assert got["fned_mean"] == pytest.approx(want_fned / 3, abs=TOL)
    assert got["fped"] > 0.05  # group b's shifted scores make it a real difference
    with_small = equality_differences(df, min_group_size=30, include_small=True)
    assert with_small["n_groups"] == 5 and with_small["fped"] > got["fped"] - TOL
    summary = fairness_summary(df, min_group_size=30, n_boot=20)
    assert summary["equality_differences"]["fped"] == pytest.approx(want_fped, abs=TOL)
