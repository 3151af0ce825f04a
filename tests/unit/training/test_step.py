"""debias.training.step: one step with every loss term (learns, respects freezing, moves the DRO
weights), on the tiny random BERT."""

from __future__ import annotations

import pytest
import torch

from debias.schema import membership_columns
from debias.training.data import make_batch
from debias.training.losses import FairnessObjective
from debias.training.model import freeze, load_classifier
from debias.training.module import FairClassifier
from debias.training.step import make_optimizer, train_step

ALL_TERMS = [
    {"name": "cross_entropy"},
    {"name": "group_loss_parity", "weight": 0.5},
    {"name": "soft_demographic_parity", "weight": 0.5},
    {"name": "soft_equalized_odds", "weight": 0.5},
    {"name": "counterfactual_logit_pairing", "weight": 0.5},
    {"name": "adversarial", "weight": 0.1},
    {"name": "group_dro", "weight": 0.5, "params": {"eta": 0.1}},
]


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
