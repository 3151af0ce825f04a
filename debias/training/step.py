"""One optimisation step (:func:`train_step`) and the optimiser it steps
(:func:`make_optimizer`). Plain torch; ``jobs/train.py`` runs it under Ray Train / DDP.
"""

from __future__ import annotations

from typing import Any

import torch

from debias.training.data import TrainBatch
from debias.training.losses import FairnessObjective, LossInputs

__all__ = ["make_optimizer", "train_step"]


def train_step(module: torch.nn.Module, batch: TrainBatch, objective: FairnessObjective,
               optimizer: torch.optim.Optimizer, scheduler: Any = None, *,
               device: torch.device | str = "cpu", grad_clip: float | None = 1.0) -> dict[str, float]:
    """One optimisation step; returns the loss terms, the total and the number of rows.

    On CUDA the forward pass runs under bf16 autocast (the loss in fp32).
    """
    device = torch.device(device)
    module.train()
    b = batch.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits, cf_logits, group_logits = module(b.inputs, b.cf_inputs)
    total, parts = objective(LossInputs(logits=logits, y=b.y, membership=b.membership,
                                        sample_weight=b.sample_weight, cf_logits=cf_logits,
                                        cf_index=b.cf_index, group_logits=group_logits))
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {**parts, "loss": float(total.detach()), "n": len(batch)}


def make_optimizer(module: torch.nn.Module, *, lr: float, weight_decay: float, total_steps: int,
                   warmup_ratio: float = 0.0) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (no decay on biases and LayerNorm) with linear warmup then linear decay."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    total = max(int(total_steps), 1)
    warm = int(round(warmup_ratio * total))

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
