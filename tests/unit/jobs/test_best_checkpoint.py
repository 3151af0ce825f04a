"""The train job's export and the sweep pick their epoch with the one rule of
debias.training.selection.best_checkpoint (highest selection_score, ties to the later epoch),
on a stand-in for Ray Train's Result."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from jobs.sweep import best_metrics
from jobs.train import _best_checkpoint

M1 = {"selection_score": 0.8, "epoch": 1}
M2 = {"selection_score": 0.9, "epoch": 2}
M3 = {"selection_score": 0.9, "epoch": 3}


def test_train_and_sweep_pick_the_same_epoch():
    result = SimpleNamespace(best_checkpoints=[("c1", M1), ("c3", M3), ("c2", M2)], checkpoint="latest",
                             metrics=M3)
    assert _best_checkpoint(result) == "c3"
    assert best_metrics(result) == M3


def test_without_scored_checkpoints_fall_back_to_the_latest():
    assert _best_checkpoint(SimpleNamespace(best_checkpoints=[], checkpoint="latest")) == "latest"
    assert best_metrics(SimpleNamespace(best_checkpoints=None, metrics={"epoch": 4})) == {"epoch": 4}
    with pytest.raises(RuntimeError, match="no checkpoint"):
        _best_checkpoint(SimpleNamespace(best_checkpoints=[], checkpoint=None))
