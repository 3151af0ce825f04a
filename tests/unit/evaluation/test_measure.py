"""debias.evaluation.measure: scores go back to their suites by position, the threshold is the
configured one or the F1-best on the val suite, predictions follow it, and suite metrics feed the
gates; small frames worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.evaluation.gates import parse_gates
from debias.evaluation.measure import (
    attach_scores,
    choose_rule,
    choose_threshold,
    measure_suites,
    with_predictions,
)
from debias.evaluation.thresholds import GroupThresholds, fit_group_thresholds


def suites() -> dict[str, pd.DataFrame]:
    val = pd.DataFrame({"text": ["a", "b", "c", "d"], "y_true": [0, 1, 0, 1],
                        "groups": [["female"], ["female"], [], []]})
    test = pd.DataFrame({"text": ["e", "f", "g"], "y_true": [1, 0, 1], "groups": [["male"], [], ["male"]]})
    return {"val": val, "test": test}


KINDS = {"val": "val_split", "test": "test_split"}


def test_attach_scores_by_position_and_checks_the_count():
    frames = suites()
    scored = attach_scores(frames, np.array([0.1, 0.7, 0.4, 0.9, 0.8, 0.3, 0.6]))
    assert scored["val"]["y_score"].tolist() == [0.1, 0.7, 0.4, 0.9]
    assert scored["test"]["y_score"].tolist() == [0.8, 0.3, 0.6]
    assert "y_score" not in frames["val"].columns  # the input frames are left alone
    with pytest.raises(ValueError, match="expected 7 scores"):
        attach_scores(frames, np.zeros(6))


def test_choose_threshold_configured_or_f1_best_on_val():
    scored = attach_scores(suites(), np.array([0.1, 0.7, 0.4, 0.9, 0.8, 0.3, 0.6]))
    assert choose_threshold(scored, KINDS, threshold=0.5, tune=False) == (0.5, "config")
    # val: positives score 0.7 and 0.9, negatives 0.1 and 0.4 -> t = 0.7 separates them (F1 1)
    t, source = choose_threshold(scored, KINDS, threshold=0.5, tune=True)
    assert t == pytest.approx(0.7) and source == "F1-best on suite 'val' (F1 1.0000)"
    with pytest.raises(ValueError, match="val_split"):
        choose_threshold(scored, {"val": "test_split", "test": "test_split"}, threshold=0.5, tune=True)


def test_choose_threshold_recall_matched_on_val():
    scored = attach_scores(suites(), np.array([0.1, 0.7, 0.4, 0.9, 0.8, 0.3, 0.6]))
    # val positives score 0.7 and 0.9: recall 1 needs t <= 0.7, recall 0.5 allows t = 0.9
    assert choose_threshold(scored, KINDS, threshold=0.5, tune=True, recall=1.0)[0] == pytest.approx(0.7)
    t, source = choose_threshold(scored, KINDS, threshold=0.5, tune=True, recall=0.5)
    assert t == pytest.approx(0.9) and source.startswith("recall-matched on suite 'val' (recall 0.5000")
    assert choose_threshold(scored, KINDS, threshold=0.5, tune=False, recall=0.5) == (0.5, "config")
    rule = choose_rule(scored, KINDS, threshold=0.5, tune=True, recall=0.5)
    assert rule.threshold == pytest.approx(0.9) and not rule.rules


def test_tune_recall_needs_tune_threshold():
    from debias.config import load_config

    with pytest.raises(ValueError, match="tune_threshold"):
        load_config("configs/demo.yaml", ["evaluate.tune_recall=0.9"])
    cfg = load_config("configs/demo.yaml", ["evaluate.tune_recall=0.9", "evaluate.tune_threshold=true",
                                            "evaluate.suites=[{name: val, kind: val_split}]"])
    assert cfg.evaluate.tune_recall == 0.9


def test_with_predictions_is_score_at_or_above_threshold():
    scored = attach_scores(suites(), np.array([0.1, 0.7, 0.4, 0.9, 0.8, 0.3, 0.6]))
    pred = with_predictions(scored, 0.6)
    assert pred["val"]["y_pred"].tolist() == [0, 1, 0, 1]
    assert pred["test"]["y_pred"].tolist() == [1, 0, 1]  # 0.6 >= 0.6
    assert pred["test"]["y_pred"].dtype == np.int8


def test_measure_suites_feeds_the_gates():
    frames = with_predictions(attach_scores(suites(), np.array([0.1, 0.7, 0.4, 0.9, 0.8, 0.3, 0.6])), 0.5)
    gates = parse_gates(["auc>=0.99", "val:auc<0.5"], suites=list(frames))
    out = measure_suites(frames, KINDS, gates, threshold=0.5, n_boot=20, min_group_size=1, seed=0)
    assert set(out["metrics"]) == set(out["values"]) == {"val", "test"}
    assert out["metrics"]["test"]["n_rows"] == 3 and out["metrics"]["val"]["kind"] == "val_split"
    # both suites rank every positive above every negative: AUC 1 (the first suite is val)
    assert out["values"]["val"]["auc"] == pytest.approx(1.0) and out["values"]["test"]["auc"] == pytest.approx(1.0)
    assert [g["passed"] for g in out["gates"]] == [True, False]


def _two_groups(n: int = 2000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Val and test suites where the model scores group "b" 0.2 higher than group "a"."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("val", "test"):
        g = rng.integers(0, 2, n)
        y = rng.integers(0, 2, n)
        s = np.clip(0.3 + 0.4 * y + 0.2 * g + rng.normal(0, 0.15, n), 0, 1)
        out[name] = pd.DataFrame({"text": [f"{name} {i}" for i in range(n)], "y_true": y, "y_score": s,
                                  "groups": [["b"] if v else ["a"] for v in g]})
    return out


def test_choose_rule_global_fitted_or_stored():
    frames = _two_groups()
    rule = choose_rule(frames, KINDS, threshold=0.5, tune=False)
    assert rule.constraint == "none" and rule.threshold == 0.5 and rule.source == "config"
    fitted = choose_rule(frames, KINDS, threshold=0.5, tune=True, group_thresholds="equal_opportunity",
                         min_rows=30)
    v = frames["val"]
    oracle = fit_group_thresholds(v["y_true"].to_numpy(), v["y_score"].to_numpy(), v["groups"].tolist(),
                                  constraint="equal_opportunity", min_rows=30)
    assert fitted.rules.keys() == oracle.rules.keys() and set(fitted.rules) >= {"a", "b"}
    for c in oracle.rules:
        assert fitted.rules[c].thresholds == oracle.rules[c].thresholds
    assert fitted.threshold == pytest.approx(choose_threshold(frames, KINDS, threshold=0.5, tune=True)[0])
    assert "fitted on suite 'val'" in fitted.source
    # applied to the held-out suite: the TPR gap between the groups shrinks
    plain = with_predictions(frames, 0.5)["test"]
    post = with_predictions(frames, fitted, seed=0)["test"]
    t = frames["test"]

    def tpr_gap(pred):
        a = pred[(t["y_true"] == 1) & (t["groups"].str[0] == "a")]["y_pred"].mean()
        b = pred[(t["y_true"] == 1) & (t["groups"].str[0] == "b")]["y_pred"].mean()
        return abs(a - b)

    assert tpr_gap(plain) > 0.08 and tpr_gap(post) < 0.04
    # a global-only rule predicts exactly as its threshold does
    g = GroupThresholds.global_only(0.6)
    assert (with_predictions(frames, g)["test"]["y_pred"] == with_predictions(frames, 0.6)["test"]["y_pred"]).all()
    assert choose_rule(frames, KINDS, threshold=0.5, tune=False, group_thresholds="stored", stored=fitted) is fitted
    with pytest.raises(ValueError, match="holds no group_thresholds.json"):
        choose_rule(frames, KINDS, threshold=0.5, tune=False, group_thresholds="stored")
    with pytest.raises(ValueError, match="needs a val_split suite"):
        choose_rule(frames, {"val": "test_split", "test": "test_split"}, threshold=0.5, tune=False,
                    group_thresholds="equalized_odds")


def test_focus_labels_and_multiclass_block_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    from debias.evaluation.measure import focus_labels, measure_suites, multiclass_suite_metrics

    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    p = rng.dirichlet([1, 1, 1], n)
    groups = [["a"] if i % 2 else ["b"] for i in range(n)]
    test = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": ["t"] * n, "y_true": y, "groups": groups,
                         "y_score": p[:, 2], "y_proba": list(p), "pair_id": None, "suite": "test"})
    tmpl = test.assign(y_true=(y == 2).astype(int))
    frames = focus_labels({"test": test, "tmpl": tmpl}, {"test": "test_split", "tmpl": "identity_templates"},
                          focus=2, n_classes=3)
    assert (frames["test"]["y_true"] == (y == 2)).all() and (frames["test"]["y_class"] == y).all()
    assert "y_class" not in frames["tmpl"].columns  # already the focus class's 0/1
    mc = multiclass_suite_metrics(frames["test"], classes=["x", "y", "z"], min_group_size=1)
    overall = {r["group"]: r for r in mc["by_group"]}
    assert overall["overall"]["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert overall["overall"]["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    a = np.array([g == ["a"] for g in groups])
    assert overall["a"]["macro_f1"] == pytest.approx(f1_score(y[a], p[a].argmax(1), average="macro"))
    rates = [[(p[m].argmax(1) == k).mean() for m in (a, ~a)] for k in range(3)]
    crit = {r["class"]: r for r in mc["criteria"]}
    for k, name in enumerate("xyz"):
        assert crit[name]["demographic_parity_difference"] == pytest.approx(abs(rates[k][0] - rates[k][1]))
    assert crit["max"]["demographic_parity_difference"] == pytest.approx(max(abs(r[0] - r[1]) for r in rates))
    # the worst subgroup / BPSN AUC per class, one-vs-rest, against scikit-learn's roc_auc_score
    from sklearn.metrics import roc_auc_score

    worst = {r["class"]: r for r in mc["bias_auc"]}
    for k, name in enumerate("xyz"):
        yk = (y == k).astype(int)
        sub = {g: roc_auc_score(yk[m], p[m, k]) for g, m in (("a", a), ("b", ~a))}
        assert worst[name]["min_subgroup_auc"] == pytest.approx(min(sub.values()))
        assert worst[name]["min_subgroup_auc_group"] == min(sub, key=sub.get)
        bpsn = {}
        for g, m in (("a", a), ("b", ~a)):  # in-group negatives with out-group positives
            keep = (m & (yk == 0)) | (~m & (yk == 1))
            bpsn[g] = roc_auc_score(yk[keep], p[keep, k])
        assert worst[name]["min_bpsn_auc"] == pytest.approx(min(bpsn.values()))
    out = measure_suites({"test": frames["test"].assign(y_pred=(p[:, 2] >= 0.5).astype("int8"))},
                         {"test": "test_split"}, [], threshold=0.5, n_boot=5, min_group_size=1, seed=0,
                         classes=["x", "y", "z"])
    assert out["metrics"]["test"]["multiclass"]["classes"] == ["x", "y", "z"]
