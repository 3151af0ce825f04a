"""The notebook API against its oracles: Fairlearn's MetricFrame on disjoint groups, brute force
on overlapping ones, the corpus balancers' own properties, and interval coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame as FLMetricFrame
from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score, precision_score, roc_auc_score

import debias
from debias.api import GroupResampler, GroupReweighter, MetricFrame


def _data(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    s = np.clip(0.35 * y + 0.1 * (g == "b") + rng.random(n) * 0.6, 0, 1)
    return y, (s >= 0.5).astype(int), s, g


def test_equals_fairlearn_metricframe_on_disjoint_groups():
    y, p, _, g = _data()
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    ours = MetricFrame(metrics={"sr": "selection_rate", "tpr": "tpr", "fpr": "fpr", "acc": "accuracy",
                                "prec": "precision"},
                       y_true=y, y_pred=p, sensitive_features=g, sample_weight=w)
    fl = FLMetricFrame(metrics={"sr": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate,
                                "acc": accuracy_score, "prec": precision_score},
                       y_true=y, y_pred=p, sensitive_features=g, sample_params={
                           k: {"sample_weight": w} for k in ("sr", "tpr", "fpr", "acc", "prec")})
    pd.testing.assert_frame_equal(ours.by_group.sort_index(), fl.by_group.sort_index().astype(float),
                                  check_names=False, atol=1e-12)
    pd.testing.assert_series_equal(ours.overall, fl.overall.astype(float), atol=1e-12)
    for method in ("between_groups", "to_overall"):
        pd.testing.assert_series_equal(ours.difference(method), fl.difference(method=method).astype(float),
                                       atol=1e-12)
        pd.testing.assert_series_equal(ours.ratio(method), fl.ratio(method=method).astype(float), atol=1e-12)
    pd.testing.assert_series_equal(ours.group_min(), fl.group_min().astype(float), atol=1e-12)


def test_a_single_callable_gives_scalars_like_fairlearn():
    y, _, s, g = _data(seed=2)
    ours = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=s, sensitive_features=g)
    fl = FLMetricFrame(metrics=roc_auc_score, y_true=y, y_pred=s, sensitive_features=g)
    assert ours.overall == pytest.approx(fl.overall)
    assert ours.difference() == pytest.approx(fl.difference())
    np.testing.assert_allclose(ours.by_group.sort_index().to_numpy(), fl.by_group.sort_index().to_numpy())


def test_overlapping_groups_count_every_row_that_names_the_group():
    y = np.array([1, 0, 1, 1, 0, 0])
    p = np.array([1, 1, 0, 1, 0, 1])
    groups = [["female"], ["female", "muslim"], ["muslim"], [], ["female"], ["muslim"]]
    mf = MetricFrame(metrics={"n": "count", "sr": "selection_rate"}, y_true=y, y_pred=p, sensitive_features=groups)
    # by hand: female rows 0, 1, 4 -> decisions 1, 1, 0; muslim rows 1, 2, 5 -> 1, 0, 1
    assert mf.by_group.loc["female", "n"] == 3 and mf.by_group.loc["female", "sr"] == pytest.approx(2 / 3)
    assert mf.by_group.loc["muslim", "sr"] == pytest.approx(2 / 3) and mf.overall["n"] == 6


def test_bootstrap_intervals_cover_the_truth():
    # 95% intervals of a group's selection rate against the known rate: 60 simulated data sets
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(60):
        g = rng.choice(["a", "b"], 400)
        p = (rng.random(400) < np.where(g == "a", 0.3, 0.6)).astype(int)
        iv = MetricFrame(metrics="selection_rate", y_true=np.zeros(400, int), y_pred=p, sensitive_features=g,
                         n_boot=200, seed=int(rng.integers(1 << 30))).intervals
        row = iv[(iv["group"] == "b")].iloc[0]
        covered += row["lo"] <= 0.6 <= row["hi"]
    assert 52 <= covered <= 60  # about 57 of 60 expected; 52 is 3 sd below


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        MetricFrame(metrics="auc", y_true=[0, 1], y_pred=[0, 1], sensitive_features=["a", "b"])
    with pytest.raises(ValueError, match="sensitive_features has 1 rows"):
        MetricFrame(metrics="accuracy", y_true=[0, 1], y_pred=[0, 1], sensitive_features=["a"])
    with pytest.raises(ValueError, match="no intervals"):
        _ = MetricFrame(metrics="accuracy", y_true=[0, 1], y_pred=[0, 1], sensitive_features=["a", "b"]).intervals


def test_resampler_makes_labels_independent_of_groups():
    rng = np.random.default_rng(0)
    n = 4000
    g = rng.choice(["a", "b"], n, p=[0.7, 0.3])
    y = (rng.random(n) < np.where(g == "a", 0.2, 0.6)).astype(int)
    X = pd.DataFrame({"text": [f"t{i}" for i in range(n)]})
    Xr, yr, gr = GroupResampler("hybrid", seed=1).fit_resample(X, y, [[v] for v in g])
    assert len(Xr) == len(yr) == len(gr)
    rates = pd.Series(yr).groupby([v[0] for v in gr]).mean()
    assert abs(rates["a"] - rates["b"]) < 0.03  # was 0.4
    # every kept row is an input row with its own label
    idx = Xr["text"].str[1:].astype(int).to_numpy()
    assert (y[idx] == yr).all()


def test_reweighter_is_kamiran_calders():
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    g = ["a", "a", "a", "a", "b", "b", "b", "b"]
    w = GroupReweighter().fit_transform(y, g)
    # KC: w(g, y) = n_g n_y / (N n_gy); a/1: 4*3/(8*2) = 0.75, a/0: 4*5/(8*2) = 1.25,
    # b/1: 4*3/(8*1) = 1.5, b/0: 4*5/(8*3) = 0.8333
    np.testing.assert_allclose(w, [0.75, 0.75, 1.25, 1.25, 5 / 6, 1.5, 5 / 6, 5 / 6])
    assert w.mean() == pytest.approx(1.0)


def test_import_debias_exposes_the_api():
    assert debias.MetricFrame is MetricFrame and debias.GroupResampler is GroupResampler
    assert callable(debias.fairness_summary) and callable(debias.counterfactual_variants)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = debias.nope
