"""One optimisation step (:func:`train_step`), the optimiser it steps (:func:`make_optimizer`),
and one epoch of steps (:func:`train_epoch`) with its bounded progress lines
(:class:`EpochProgress`). Plain torch; ``jobs/train.py`` runs it under Ray Train / DDP.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from debias.training.data import TrainBatch
from debias.training.losses import FairnessObjective, LossInputs

__all__ = ["EpochProgress", "EpochResult", "fmt_eta", "make_optimizer", "train_epoch", "train_step"]


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


def fmt_eta(seconds: float) -> str:
    """``H:MM:SS`` for a (non-negative) number of seconds."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class EpochProgress:
    """Within-epoch progress lines: at most one per ``every_s`` seconds and none on the last
    step (the epoch's own summary line follows), so a long epoch logs about once a minute, not
    once a step.

    ``label`` starts each line (e.g. ``"run-1 epoch 2/5"``); ``world`` scales this rank's rows
    to the global samples/s (every rank trains the same steps on an equal shard); ``clock`` is
    injectable for tests.
    """

    def __init__(self, total_steps: int, *, label: str, say: Callable[[str], None] = print,
                 every_s: float = 60.0, world: int = 1, clock: Callable[[], float] = time.time) -> None:
        self.total_steps = int(total_steps)
        self.label, self.say, self.every_s, self.world, self.clock = label, say, float(every_s), int(world), clock
        self.started_ = self.last_ = clock()
        self.lines_ = 0

    def update(self, step: int, *, rows: int, loss_sum: float) -> str | None:
        """After ``step`` steps (``rows`` rows, summed loss ``loss_sum``): the line said, or None."""
        now = self.clock()
        if now - self.last_ < self.every_s or step >= self.total_steps:
            return None
        self.last_ = now
        elapsed = max(now - self.started_, 1e-9)
        line = (f"{self.label} step {step}/{self.total_steps} | loss {loss_sum / step:.4f} | "
                f"{rows * self.world / elapsed:.1f} samples/s | "
                f"epoch ETA {fmt_eta((self.total_steps - step) / (step / elapsed))}")
        self.say(line)
        self.lines_ += 1
        return line


@dataclass
class EpochResult:
    """What one epoch of :func:`train_epoch` did on this rank."""

    steps: int
    rows: int
    sums: dict[str, float]  # per loss term (and "loss", the total), summed over the steps
    seconds: float

    def means(self) -> dict[str, float]:
        """``train_<term>``: each term's mean over the epoch's steps."""
        return {f"train_{k}": v / max(self.steps, 1) for k, v in self.sums.items()}


def train_epoch(module: torch.nn.Module, batches: Iterable[TrainBatch], objective: FairnessObjective,
                optimizer: torch.optim.Optimizer, scheduler: Any = None, *, steps: int,
                device: torch.device | str = "cpu", grad_clip: float | None = 1.0,
                progress: EpochProgress | None = None, on_step: Callable[[int], None] | None = None,
                who: str = "training", clock: Callable[[], float] = time.time) -> EpochResult:
    """Run exactly ``steps`` :func:`train_step` s over ``batches``; return the rows and summed terms.

    Under DDP every rank must take the same number of steps (an extra step on one rank waits
    forever in the all-reduce), so batches beyond ``steps`` are never drawn (``batches`` may be
    a lazy generator) and running out before ``steps`` raises RuntimeError naming ``who``.
    ``on_step(done)`` runs after each step (after ``progress``).
    """
    t0 = clock()
    sums: dict[str, float] = {}
    rows = done = 0
    for batch in itertools.islice(batches, steps):
        out = train_step(module, batch, objective, optimizer, scheduler, device=device, grad_clip=grad_clip)
        for k, v in out.items():
            if k != "n":
                sums[k] = sums.get(k, 0.0) + v
        rows += out["n"]
        done += 1
        if progress is not None:
            progress.update(done, rows=rows, loss_sum=sums.get("loss", 0.0))
        if on_step is not None:
            on_step(done)
    if done < steps:
        raise RuntimeError(f"{who} ran out of data after {done} of {steps} steps")
    return EpochResult(steps=done, rows=rows, sums=sums, seconds=clock() - t0)
