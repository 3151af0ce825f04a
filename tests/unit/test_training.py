"""debias.training.core: pairs, tokenisation, length bucketing, batches, one step, validation,
early stopping and the checkpointed state, on a tiny random BERT."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from debias.schema import NO_GROUP, membership_columns
from debias.training.core import (
    EarlyStopping,
    FairClassifier,
    Tokenize,
    add_partner_text,
    bucket_batches,
    load_training_state,
    make_batch,
    make_optimizer,
    membership_matrix,
    parse_objective,
    partner_texts,
    predict_frame,
    save_training_state,
    selection_score,
    train_step,
    validation_metrics,
)
from debias.training.losses import FairnessObjective
from debias.training.model import freeze, load_classifier

ALL_TERMS = [
    {"name": "cross_entropy"},
    {"name": "group_loss_parity", "weight": 0.5},
    {"name": "soft_demographic_parity", "weight": 0.5},
    {"name": "soft_equalized_odds", "weight": 0.5},
    {"name": "counterfactual_logit_pairing", "weight": 0.5},
    {"name": "adversarial", "weight": 0.1},
    {"name": "group_dro", "weight": 0.5, "params": {"eta": 0.1}},
]


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "a~cf", "b", "c", "d", "e", "f", "f~cf"],
        "text": ["she is a nurse", "he is a nurse", "i hate everyone here today so much",
                 "what a lovely day", "muslims pray", "ok", "the women went home", "the men went home"],
        "label": [0, 0, 1, 0, 0, 1, 1, 1],
        "g_female": [True, False, False, False, False, False, True, False],
        "g_male": [False, True, False, False, False, False, False, True],
        "g_muslim": [False, False, False, False, True, False, False, False],
        "sample_weight": [1.0, 1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 0.5],
        "pair_id": ["a", "a", None, None, None, "e", "f", "f"],
        "is_augmented": [False, True, False, False, False, False, False, True],
    })


@pytest.fixture(scope="module")
def tokenised(tiny_model_dir):
    df = frame()
    df = add_partner_text(df, partners=partner_texts(df))
    return Tokenize(str(tiny_model_dir), max_length=16)(df)


def test_group_columns_and_membership():
    df = frame()
    cols = membership_columns(df.columns)
    assert cols == ["g_female", "g_male", "g_muslim"]
    m = membership_matrix(df, cols + ["g_absent"])
    assert m.shape == (8, 4) and m[:, 3].sum() == 0
    assert m[0].tolist() == [1, 0, 0, 0] and m[4].tolist() == [0, 0, 1, 0]


def test_partner_texts_pairs_both_ways_and_skips_lonely_rows():
    p = partner_texts(frame())
    assert p == {"a": "he is a nurse", "a~cf": "she is a nurse",
                 "f": "the men went home", "f~cf": "the women went home"}
    with pytest.raises(ValueError, match="missing"):
        partner_texts(frame().drop(columns="pair_id"))


def test_tokenize_adds_unpadded_ids(tokenised):
    assert (tokenised["n_tokens"] == tokenised["input_ids"].map(len)).all()
    assert tokenised["n_tokens"].nunique() > 1
    has_cf = tokenised["cf_input_ids"].map(len) > 0
    assert has_cf.tolist() == [True, True, False, False, False, False, True, True]


def test_bucket_batches_cover_rows_once_sorted_within_batches():
    rng = np.random.default_rng(0)
    w = pd.DataFrame({"n_tokens": rng.integers(3, 60, size=103), "row": np.arange(103)})
    batches = bucket_batches(w, batch_size=10, seed=1)
    assert sorted(pd.concat(batches)["row"].tolist()) == list(range(103))
    assert sorted(len(b) for b in batches) == [3] + [10] * 10
    # bucketing: far less padding than batches in input order
    def waste(bs):
        return sum((b["n_tokens"].max() - b["n_tokens"]).sum() for b in bs)
    plain = [w.iloc[i:i + 10] for i in range(0, 103, 10)]
    assert waste(batches) < waste(plain) / 3
    again = bucket_batches(w, batch_size=10, seed=1)
    assert [b["row"].tolist() for b in again] == [b["row"].tolist() for b in batches]
    assert bucket_batches(w.iloc[:0], batch_size=4, seed=0) == []


def test_make_batch_dynamic_vs_fixed_padding(tokenised):
    cols = membership_columns(tokenised.columns)
    b = make_batch(tokenised, group_cols=cols, pad_id=0, counterfactuals=True)
    assert b.inputs["input_ids"].shape == (8, tokenised["n_tokens"].max())
    assert make_batch(tokenised, group_cols=cols, pad_id=0, pad_to=16).inputs["input_ids"].shape == (8, 16)
    assert b.cf_index.tolist() == [0, 1, 6, 7]
    assert b.cf_inputs["input_ids"].shape[0] == 4
    assert b.sample_weight.tolist() == frame()["sample_weight"].tolist()
    assert b.membership.shape == (8, 3)
    assert make_batch(tokenised, group_cols=cols, pad_id=0).cf_inputs is None


def test_counterfactual_rows_do_not_change_the_batch_logits(tiny_model_dir, tokenised):
    model, tok = load_classifier(tiny_model_dir)
    module = FairClassifier(model, pad_id=tok.pad_token_id).eval()
    b = make_batch(tokenised, group_cols=membership_columns(tokenised.columns), pad_id=tok.pad_token_id,
                   counterfactuals=True)
    with torch.no_grad():
        alone, _, _ = module(b.inputs)
        joined, cf, _ = module(b.inputs, b.cf_inputs)
    torch.testing.assert_close(alone, joined, atol=1e-5, rtol=1e-5)
    assert cf.shape == (4, 2)


def test_train_step_all_terms_learns_and_respects_freezing(tiny_model_dir, tokenised):
    torch.manual_seed(0)
    model, tok = load_classifier(tiny_model_dir)
    freeze(model, embeddings=True, layers=1)
    cols = membership_columns(tokenised.columns)
    obj = FairnessObjective(ALL_TERMS, n_groups=len(cols))
    module = FairClassifier(model, n_groups=len(cols), adversary=obj.adversary_params,
                            pad_id=tok.pad_token_id)
    frozen = model.bert.encoder.layer[0].attention.self.query.weight.clone()
    opt, sched = make_optimizer(module, lr=3e-3, weight_decay=0.0, total_steps=100)
    b = make_batch(tokenised, group_cols=cols, pad_id=tok.pad_token_id, counterfactuals=True)
    first = train_step(module, b, obj, opt, sched)
    assert set(first) == {t["name"] for t in ALL_TERMS} | {"loss", "n"}
    assert first["n"] == 8
    for _ in range(15):
        last = train_step(module, b, obj, opt, sched)
    assert last["cross_entropy"] < first["cross_entropy"]
    torch.testing.assert_close(model.bert.encoder.layer[0].attention.self.query.weight, frozen)
    q = obj.dro.q_
    assert q.sum().item() == pytest.approx(1.0) and not torch.allclose(q, torch.full_like(q, 1 / len(q)))


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


def test_training_state_round_trip(tiny_model_dir, tokenised, tmp_path):
    cols = membership_columns(tokenised.columns)
    terms = [{"name": "cross_entropy"}, {"name": "group_dro", "params": {"eta": 0.5}}]

    def build():
        torch.manual_seed(0)
        model, tok = load_classifier(tiny_model_dir)
        obj = FairnessObjective(terms, n_groups=len(cols))
        module = FairClassifier(model, pad_id=tok.pad_token_id)
        opt, sched = make_optimizer(module, lr=1e-3, weight_decay=0.01, total_steps=10, warmup_ratio=0.2)
        return module, obj, opt, sched

    module, obj, opt, sched = build()
    b = make_batch(tokenised, group_cols=cols, pad_id=0)
    for _ in range(3):
        train_step(module, b, obj, opt, sched)
    save_training_state(tmp_path / "ck", module, optimizer=opt, scheduler=sched, objective=obj,
                        extra={"epoch": 2, "history": [{"loss": 0.5}]})
    assert not list((tmp_path / "ck").glob("*.bin"))
    m2, o2, opt2, s2 = build()
    extra = load_training_state(tmp_path / "ck", m2, optimizer=opt2, scheduler=s2, objective=o2)
    assert extra == {"epoch": 2, "history": [{"loss": 0.5}]}
    for (n, p), (_, p2) in zip(module.state_dict().items(), m2.state_dict().items(), strict=True):
        torch.testing.assert_close(p, p2, msg=n)
    torch.testing.assert_close(obj.dro.q_, o2.dro.q_)
    assert s2.last_epoch == sched.last_epoch == 3
    # the same next step from both
    torch.manual_seed(5)  # same dropout masks
    a = train_step(module, b, obj, opt, sched)["loss"]
    torch.manual_seed(5)
    c = train_step(m2, b, o2, opt2, s2)["loss"]
    assert a == pytest.approx(c, rel=1e-5)


def test_predict_frame_matches_module(tiny_model_dir, tokenised):
    model, tok = load_classifier(tiny_model_dir)
    s = predict_frame(model, tokenised, pad_id=tok.pad_token_id, token_type_ids=True, batch_size=3)
    b = make_batch(tokenised, group_cols=[], pad_id=tok.pad_token_id)
    with torch.no_grad():
        ref = torch.softmax(model.eval()(**b.inputs).logits, -1)[:, 1].numpy()
    np.testing.assert_allclose(s, ref, atol=1e-5)


def test_pareto_front_by_hand():
    from debias.training.core import pareto_front

    pts = pd.DataFrame({"auc": [0.9, 0.85, 0.8, 0.7, 0.9, np.nan],
                        "gap": [0.3, 0.1, 0.2, 0.05, 0.4, 0.0]})
    # (0.8, 0.2) is beaten by (0.85, 0.1); (0.9, 0.4) by (0.9, 0.3); NaN never on the front
    assert pareto_front(pts, maximize="auc", minimize="gap").tolist() == [True, True, False, True, False, False]
    with pytest.raises(ValueError, match="missing column 'eo'"):
        pareto_front(pts, maximize="auc", minimize="eo")
