"""debias.training.selection: validation scores and metrics by hand, the selection objective,
early stopping, the epoch score, the best-checkpoint rule and the Pareto front."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from debias.schema import NO_GROUP
from debias.training.data import make_batch
from debias.training.model import load_classifier
from debias.training.selection import (
    NAN_SCORE,
    EarlyStopping,
    best_checkpoint,
    epoch_score,
    pareto_front,
    parse_objective,
    predict_frame,
    selection_score,
    validation_metrics,
)


def test_validation_metrics_by_hand():
    y = np.array([1, 0, 1, 0, 1, 0])
    s = np.array([0.9, 0.2, 0.4, 0.6, 0.8, 0.1])
    m = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]])
    overall, by = validation_metrics(y, s, m, ["g_a", "g_b"])
    assert by["group"].tolist() == ["a", "b", NO_GROUP]
    assert by["accuracy"].tolist() == [1.0, 0.0, 1.0]
    assert by["positive_rate"].tolist() == [0.5, 0.5, 0.5]
    assert overall["val_accuracy"] == pytest.approx(4 / 6)
    assert overall["val_dp_difference"] == 0.0
    assert overall["val_eo_difference"] == 1.0  # tpr 1, 0, 1 and fpr 0, 1, 0
    assert overall["val_worst_group_accuracy"] == 0.0
    from sklearn.metrics import roc_auc_score
    assert overall["val_auc"] == pytest.approx(roc_auc_score(y, s))
    # BNSP of b: its positive (0.4) against background negatives (0.2, 0.1) -> 1.0;
    # BPSN of b: background positives (0.9, 0.8) against its negative (0.6) -> 1.0
    b_row = by.set_index("group").loc["b"]
    assert b_row["bnsp_auc"] == 1.0 and b_row["bpsn_auc"] == 1.0
    assert math.isnan(by.set_index("group").loc[NO_GROUP, "bnsp_auc"])
    assert overall["val_min_bnsp_auc"] == 1.0
    small, _ = validation_metrics(y, s, m, ["g_a", "g_b"], min_group_size=3)
    # every group has 2 rows: none qualifies for the fairness summaries
    assert math.isnan(small["val_worst_group_accuracy"]) and small["val_dp_difference"] == 0.0


def test_selection_objective_parsing():
    assert parse_objective("val_auc") == [(1.0, "val_auc")]
    assert parse_objective("val_auc - 0.5*val_eo_difference + 2 * x") == [
        (1.0, "val_auc"), (-0.5, "val_eo_difference"), (2.0, "x")]
    assert selection_score({"val_auc": 0.8, "val_eo_difference": 0.2}, "val_auc-0.5*val_eo_difference") == pytest.approx(0.7)
    with pytest.raises(ValueError, match="unknown metric"):
        parse_objective("val_acc", known=("val_accuracy",))
    with pytest.raises(ValueError, match="cannot parse"):
        parse_objective("val_auc val_x")
    with pytest.raises(ValueError, match="available"):
        selection_score({"val_auc": 1.0}, "val_f1")
    assert math.isnan(selection_score({"val_auc": float("nan")}, "val_auc"))


def test_early_stopping():
    es = EarlyStopping(patience=2)
    assert es.update(0.5, 0) == (True, False)
    assert es.update(0.4, 1) == (False, False)
    assert es.update(float("nan"), 2) == (False, True)
    assert es.best_epoch_ == 0
    other = EarlyStopping(patience=2)
    other.load_state_dict(es.state_dict())
    assert other.state_dict() == es.state_dict()
    assert EarlyStopping(None).update(0.0, 0)[1] is False


def test_epoch_score_validation_objective_train_loss_and_nan():
    val = {"val_auc": 0.8, "val_eo_difference": 0.2}
    assert epoch_score(val, objective="val_auc - 0.5*val_eo_difference", train_loss=9.0) == pytest.approx(0.7)
    assert epoch_score(None, objective="val_auc", train_loss=0.25) == -0.25  # no val split
    assert epoch_score({"val_auc": float("nan")}, objective="val_auc", train_loss=0.1) == NAN_SCORE


def test_best_checkpoint_highest_score_ties_to_the_later_epoch():
    scored = [("e1", {"selection_score": 0.7, "epoch": 1}), ("e2", {"selection_score": 0.9, "epoch": 2}),
              ("e3", {"selection_score": 0.9, "epoch": 3}), ("e4", {"selection_score": NAN_SCORE, "epoch": 4})]
    assert best_checkpoint(scored) == "e3"
    assert best_checkpoint(scored[:2]) == "e2"
    assert best_checkpoint([("x", {"epoch": 9}), ("y", {"selection_score": -5.0, "epoch": 1})]) == "y"
    assert best_checkpoint([]) is None


def test_predict_frame_matches_module(tiny_model_dir, tokenised):
    model, tok = load_classifier(tiny_model_dir)
    s = predict_frame(model, tokenised, pad_id=tok.pad_token_id, token_type_ids=True, batch_size=3)
    b = make_batch(tokenised, group_cols=[], pad_id=tok.pad_token_id)
    with torch.no_grad():
        ref = torch.softmax(model.eval()(**b.inputs).logits, -1)[:, 1].numpy()
    np.testing.assert_allclose(s, ref, atol=1e-5)


def test_pareto_front_by_hand():
    pts = pd.DataFrame({"auc": [0.9, 0.85, 0.8, 0.7, 0.9, np.nan],
                        "gap": [0.3, 0.1, 0.2, 0.05, 0.4, 0.0]})
    # (0.8, 0.2) is beaten by (0.85, 0.1); (0.9, 0.4) by (0.9, 0.3); NaN never on the front
    assert pareto_front(pts, maximize="auc", minimize="gap").tolist() == [True, True, False, True, False, False]
    with pytest.raises(ValueError, match="missing column 'eo'"):
        pareto_front(pts, maximize="auc", minimize="eo")
