"""debias.evaluation.measure: scores go back to their suites by position, the threshold is the
configured one or the F1-best on the val suite, predictions follow it, and suite metrics feed the
gates; small frames worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.evaluation.gates import parse_gates
from debias.evaluation.measure import attach_scores, choose_threshold, measure_suites, with_predictions


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
