"""The checkpointed training state: weights as safetensors, and the optimiser, scheduler, loss
state and an ``extra`` record (epoch, history, early stopping) in a file that loads with
``weights_only=True`` (no pickled code runs on resume).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from debias.training.losses import FairnessObjective

__all__ = ["TRAIN_STATE", "WEIGHTS", "load_training_state", "read_training_extra", "save_training_state"]

WEIGHTS = "weights.safetensors"
TRAIN_STATE = "train_state.pt"


def save_training_state(path: str | Path, module: torch.nn.Module, *, optimizer: Any, scheduler: Any,
                        objective: FairnessObjective, extra: dict[str, Any]) -> None:
    """Weights as safetensors; optimiser, scheduler, loss state and ``extra`` (epoch, history,
    early stopping) as a tensors-and-primitives file that loads with ``weights_only=True``."""
    from safetensors.torch import save_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_model(module, str(path / WEIGHTS))
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "objective": objective.state_dict(), "extra": extra}
    buf = io.BytesIO()
    torch.save(state, buf)
    (path / TRAIN_STATE).write_bytes(buf.getvalue())


def load_training_state(path: str | Path, module: torch.nn.Module, *, optimizer: Any = None,
                        scheduler: Any = None, objective: FairnessObjective | None = None) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns ``extra``."""
    from safetensors.torch import load_model

    path = Path(path)
    load_model(module, str(path / WEIGHTS), device=str(next(module.parameters()).device))
    state = torch.load(path / TRAIN_STATE, map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if objective is not None:
        objective.load_state_dict(state["objective"])
    return state["extra"]


def read_training_extra(path: str | Path) -> dict[str, Any]:
    """Only the ``extra`` record (epoch, history ...) of a saved training state."""
    state = torch.load(Path(path) / TRAIN_STATE, map_location="cpu", weights_only=True)
    return state["extra"]

