"""K-class metrics against fairlearn (per class, one-vs-rest) and scikit-learn's multi-class metrics."""

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from debias.metrics import counterfactual_metrics, equalized_odds_difference
from debias.metrics.multiclass import (
    accuracy_by_group,
    multiclass_bias_auc,
    multiclass_counterfactual,
    multiclass_criteria,
    multiclass_group_metrics,
)

CLASSES = ["hate", "offensive", "neither"]


def _frame(seed: int, n: int = 1500, k: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array(["female", "muslim", "black"])
    g = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    y = rng.choice(k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y] + 0.5 * np.eye(k)[np.minimum(g, k - 1)]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return pd.DataFrame({"y_true": y, "y_pred": p.argmax(axis=1), "y_proba": list(p),
                         "groups": [[names[i]] for i in g], "sf": names[g]})


@pytest.mark.parametrize("seed", [0, 1])
def test_per_class_group_rates_equal_fairlearn_one_vs_rest(seed):
    df = _frame(seed)
    ours = multiclass_group_metrics(df, classes=CLASSES, min_group_size=1)
    for k, name in enumerate(CLASSES):
        yt, yp = (df["y_true"] == k).astype(int), (df["y_pred"] == k).astype(int)
        mf = fm.MetricFrame(metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate,
                                     "fpr": fm.false_positive_rate},
                            y_true=yt, y_pred=yp, sensitive_features=df["sf"])
        mine = ours[(ours["class"] == name) & (ours["kind"] == "group")].set_index("group")
        for metric in ("selection_rate", "tpr", "fpr"):
            for group, value in mf.by_group[metric].items():
                assert mine.loc[group, metric] == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_criteria_per_class_equal_fairlearn_and_the_max_row_is_the_worst(seed):
    df = _frame(seed)
    crit = multiclass_criteria(df, classes=CLASSES).set_index("class")
    for k, name in enumerate(CLASSES):
        yt, yp = (df["y_true"] == k).astype(int), (df["y_pred"] == k).astype(int)
        assert crit.loc[name, "demographic_parity_difference"] == pytest.approx(
            fm.demographic_parity_difference(yt, yp, sensitive_features=df["sf"]), abs=1e-12)
        assert crit.loc[name, "equalized_odds_difference"] == pytest.approx(
            fm.equalized_odds_difference(yt, yp, sensitive_features=df["sf"]), abs=1e-12)
    for col in ("demographic_parity_difference", "equalized_odds_difference"):
        assert crit.loc["max", col] == pytest.approx(crit.loc[CLASSES, col].max())


def test_accuracy_and_macro_f1_by_group_equal_scikit_learn():
    df = _frame(2)
    ours = accuracy_by_group(df, n_classes=3).set_index("group")
    for group in ("female", "muslim", "black"):
        m = df["sf"] == group
        assert ours.loc[group, "count"] == m.sum()
        assert ours.loc[group, "accuracy"] == pytest.approx(accuracy_score(df["y_true"][m], df["y_pred"][m]))
        assert ours.loc[group, "macro_f1"] == pytest.approx(
            f1_score(df["y_true"][m], df["y_pred"][m], average="macro"))
    assert ours.loc["overall", "macro_f1"] == pytest.approx(f1_score(df["y_true"], df["y_pred"], average="macro"))
    # a group that never sees one class: scikit-learn averages over the labels present
    tiny = pd.DataFrame({"y_true": [0, 0, 1], "y_pred": [0, 1, 1], "groups": [["a"]] * 3})
    assert accuracy_by_group(tiny, n_classes=3).set_index("group").loc["a", "macro_f1"] == pytest.approx(
        f1_score([0, 0, 1], [0, 1, 1], average="macro"))


def test_per_class_bias_aucs_equal_scikit_learn_on_the_defining_subsets():
    df = _frame(4)
    ours = multiclass_bias_auc(df, classes=CLASSES)
    p = np.stack(df["y_proba"].to_numpy())
    for k, name in enumerate(CLASSES):
        y = (df["y_true"] == k).to_numpy()
        row = ours[(ours["class"] == name) & (ours["group"] == "muslim")].iloc[0]
        g = (df["sf"] == "muslim").to_numpy()
        assert row["subgroup_auc"] == pytest.approx(roc_auc_score(y[g], p[g, k]))
        bpsn = (~g & y) | (g & ~y)  # background positives, subgroup negatives
        assert row["bpsn_auc"] == pytest.approx(roc_auc_score(y[bpsn], p[bpsn, k]))
        bnsp = (~g & ~y) | (g & y)
        assert row["bnsp_auc"] == pytest.approx(roc_auc_score(y[bnsp], p[bnsp, k]))


def test_two_classes_reduce_to_the_binary_metrics():
    rng = np.random.default_rng(5)
    n = 800
    s = rng.random(n)
    s = s[np.abs(s - 0.5) > 1e-6]  # no ties at the threshold (argmax and >= 0.5 differ there)
    n = len(s)
    y = (rng.random(n) < s).astype(int)
    groups = [["a"] if r < 0.6 else ["b"] for r in rng.random(n)]
    binary = pd.DataFrame({"y_true": y, "y_score": s, "y_pred": (s >= 0.5).astype(int), "groups": groups})
    multi = pd.DataFrame({"y_true": y, "y_pred": (s >= 0.5).astype(int),
                          "y_proba": list(np.c_[1 - s, s]), "groups": groups})
    crit = multiclass_criteria(multi, classes=["no", "yes"]).set_index("class")
    assert crit.loc["yes", "equalized_odds_difference"] == pytest.approx(equalized_odds_difference(binary).value)
    # counterfactual sets: the TV gap of two classes is the score gap, the argmax flip the threshold flip
    pid = np.repeat(np.arange(n // 2), 2)[: n]
    binary["pair_id"], multi["pair_id"] = pid, pid
    ours = multiclass_counterfactual(multi, n_classes=2)
    ref = counterfactual_metrics(binary, threshold=0.5)
    assert ours["n_pairs"] == ref.n_pairs
    assert ours["mean_tv_gap"] == pytest.approx(ref.mean_abs_gap)
    assert ours["max_tv_gap"] == pytest.approx(ref.max_abs_gap)
    assert ours["flip_rate"] == pytest.approx(ref.flip_rate)


def test_counterfactual_sets_of_three_rows_and_singletons():
    proba = [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],  # set 0: the third row flips
             [0.1, 0.1, 0.8], [0.1, 0.2, 0.7],  # set 1: no flip, TV 0.1
             [0.3, 0.3, 0.4]]  # set 2: a singleton, not counted
    df = pd.DataFrame({"pair_id": [0, 0, 0, 1, 1, 2], "y_proba": proba})
    r = multiclass_counterfactual(df, n_classes=3)
    assert r["n_pairs"] == 2 and r["flip_rate"] == pytest.approx(0.5)
    assert r["max_tv_gap"] == pytest.approx(0.5) and r["mean_tv_gap"] == pytest.approx((0.5 + 0.1) / 2)


def test_bad_class_ids_and_probabilities_get_clear_errors():
    df = _frame(0, n=20)
    with pytest.raises(ValueError, match="class ids 0..1; found 2"):
        multiclass_criteria(df, classes=["a", "b"])
    bad = df.assign(y_proba=[[0.5, 0.5]] * len(df))
    with pytest.raises(ValueError, match="3 probabilities per row"):
        multiclass_bias_auc(bad, classes=CLASSES)


def test_criteria_intervals_are_each_class_s_binary_interval_and_cover_the_max():
    from debias.metrics import demographic_parity_difference, equalized_odds_difference
    from debias.metrics.multiclass import multiclass_criteria, one_vs_rest

    rng = np.random.default_rng(4)
    n = 500
    p = rng.dirichlet([1, 1, 1], n)
    df = pd.DataFrame({"y_true": rng.integers(0, 3, n), "y_pred": p.argmax(1), "y_proba": list(p),
                       "groups": [[g] for g in rng.choice(["a", "b"], n)]})
    kw = {"ci": True, "n_boot": 100, "seed": 0, "min_group_size": 10}
    out = multiclass_criteria(df, classes=CLASSES, **kw).set_index("class")
    for k, name in enumerate(CLASSES):
        b = one_vs_rest(df, k, n_classes=3)
        for col, fn in (("demographic_parity_difference", demographic_parity_difference),
                        ("equalized_odds_difference", equalized_odds_difference)):
            c = fn(b, **kw)
            assert out.loc[name, col] == pytest.approx(c.value)
            assert (out.loc[name, f"{col}_lo"], out.loc[name, f"{col}_hi"]) == pytest.approx((c.ci_low, c.ci_high))
    for col in ("demographic_parity_difference", "equalized_odds_difference"):
        lo, v, hi = out.loc["max", [f"{col}_lo", col, f"{col}_hi"]]
        assert lo <= v <= hi
        assert hi >= out.loc[list(CLASSES), f"{col}_hi"].max() - 1e-12  # no narrower than the widest class reach
    # without ci: the point values only, the same numbers
    plain = multiclass_criteria(df, classes=CLASSES, min_group_size=10).set_index("class")
    assert list(plain.columns) == ["demographic_parity_difference", "equalized_odds_difference"]
    assert np.allclose(plain.to_numpy(), out[plain.columns].to_numpy())
