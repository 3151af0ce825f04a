"""debias.training.step: one step with every loss term (learns, respects freezing, moves the DRO
weights), one epoch of steps (learns a separable toy task, counts its rows, draws no batch
beyond its steps) and bounded progress lines, on the tiny random BERT; no Ray."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from debias.schema import membership_columns
from debias.training.data import Tokenize, make_batch
from debias.training.losses import FairnessObjective
from debias.training.model import freeze, load_classifier
from debias.training.module import FairClassifier
from debias.training.step import EpochProgress, fmt_eta, make_optimizer, train_epoch, train_step

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


def toy_batches(model_dir, pad_id: int) -> list:
    """Two batches of a task a linear probe separates: label 1 iff the text says 'hate'."""
    texts = ["hate hate you", "good day", "i hate it", "nice people", "hate", "lovely good day",
             "they hate us", "good"]
    df = pd.DataFrame({"text": texts, "label": [int("hate" in t) for t in texts]})
    df = Tokenize(str(model_dir), max_length=8)(df)
    return [make_batch(df.iloc[i:i + 4], group_cols=[], pad_id=pad_id) for i in (0, 4)]


def test_train_epoch_learns_a_separable_toy_task_and_counts_rows(tiny_model_dir):
    torch.manual_seed(0)
    model, tok = load_classifier(tiny_model_dir)
    module = FairClassifier(model, pad_id=tok.pad_token_id)
    obj = FairnessObjective([{"name": "cross_entropy"}], n_groups=0)
    batches = toy_batches(tiny_model_dir, tok.pad_token_id)
    epochs = 10
    opt, _ = make_optimizer(module, lr=1e-2, weight_decay=0.0, total_steps=1)  # constant lr: no scheduler
    seen = []
    means = []
    for _ in range(epochs):
        res = train_epoch(module, iter(batches), obj, opt, None, steps=2, grad_clip=1.0,
                          on_step=seen.append)
        assert (res.steps, res.rows) == (2, 8)
        assert set(res.sums) == {"cross_entropy", "loss"} and res.seconds >= 0
        means.append(res.means())
    assert seen == [1, 2] * epochs
    assert set(means[0]) == {"train_cross_entropy", "train_loss"}
    assert means[-1]["train_loss"] < 0.5 * means[0]["train_loss"]
    module.eval()
    with torch.no_grad():
        pred = torch.cat([module(b.inputs)[0].argmax(-1) for b in batches])
    assert pred.tolist() == torch.cat([b.y for b in batches]).tolist()


def test_train_epoch_draws_no_batch_beyond_its_steps_and_fails_when_short(tiny_model_dir):
    model, tok = load_classifier(tiny_model_dir)
    module = FairClassifier(model, pad_id=tok.pad_token_id)
    obj = FairnessObjective([{"name": "cross_entropy"}], n_groups=0)
    opt, _ = make_optimizer(module, lr=1e-3, weight_decay=0.0, total_steps=4)
    batches = toy_batches(tiny_model_dir, tok.pad_token_id)
    drawn = []

    def lazy():
        for b in batches * 3:
            drawn.append(len(b))
            yield b

    assert train_epoch(module, lazy(), obj, opt, steps=3).rows == 12
    assert len(drawn) == 3  # DDP ranks must not step past steps_per_epoch
    with pytest.raises(RuntimeError, match="rank 1 ran out of data after 2 of 3 steps"):
        train_epoch(module, iter(batches), obj, opt, steps=3, who="rank 1")


def test_epoch_progress_says_at_most_one_line_per_interval_and_none_on_the_last_step():
    now = [0.0]
    lines = []
    p = EpochProgress(1000, label="run epoch 1/2", say=lines.append, every_s=60.0, world=2,
                      clock=lambda: now[0])
    for step in range(1, 1001):  # one step per second: 1000 s of epoch
        now[0] = float(step)
        p.update(step, rows=8 * step, loss_sum=0.5 * step)
    assert len(lines) == p.lines_ == 1000 // 60  # t = 60, 120, ..., 960
    assert lines[0] == "run epoch 1/2 step 60/1000 | loss 0.5000 | 16.0 samples/s | epoch ETA 0:15:40"
    assert p.update(1000, rows=8000, loss_sum=500.0) is None  # the last step: the epoch line follows
    assert fmt_eta(3725.9) == "1:02:05" and fmt_eta(-3) == "0:00:00"
