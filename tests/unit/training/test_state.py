"""debias.training.state: the checkpointed training state round-trips (weights, optimiser,
scheduler, DRO weights, extra) and the restored run takes the same next step."""

from __future__ import annotations

import pytest
import torch

from debias.schema import membership_columns
from debias.training.data import make_batch
from debias.training.losses import FairnessObjective
from debias.training.model import load_classifier
from debias.training.module import FairClassifier
from debias.training.state import load_training_state, read_training_extra, save_training_state
from debias.training.step import make_optimizer, train_step


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
    assert read_training_extra(tmp_path / "ck") == {"epoch": 2, "history": [{"loss": 0.5}]}
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
