"""Fairness-regularised training losses, as plain torch.

The total loss is a weighted sum of terms (config: ``train.losses``, a list of
``{name, weight, params}``). Every term that needs group statistics (per-group sums and
counts) all-reduces them across data-parallel workers *before* computing the penalty, so the
penalty is that of the global batch, not of each worker's slice (see :func:`all_reduce_sum`).

Groups: a row's identity groups come from a ``(batch, K)`` 0/1 membership matrix (the
``g_<group>`` columns); rows with no group form their own cell, so the matrix used here has
``K + 1`` columns, the last one being "no group". A row mentioning two groups counts in both.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F

from debias.config import LossName

LOSS_NAMES: tuple[str, ...] = typing.get_args(LossName)


# ---------------------------------------------------------------- distributed group statistics


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is also a sum over ranks.

    Every rank computes the same penalty P(S) of the global sums S = sum_r s_r. The gradient
    reaching rank r's local sums is then sum_r' dP/dS = W dP/dS; DDP averages parameter
    gradients over the W ranks, so the update is exactly sum_r dP/dS ds_r/dtheta, the gradient
    of the penalty of the concatenated batch.
    """

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = t.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def distributed_world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over data-parallel ranks; the identity in a single process."""
    if distributed_world() == 1:
        return t
    return _AllReduceSum.apply(t)


def with_none_cell(membership: torch.Tensor) -> torch.Tensor:
    """Append the "no group" column: 1 where a row has no identity group. ``(B, K) -> (B, K+1)``."""
    m = membership.float()
    none = (m.sum(dim=1, keepdim=True) == 0).float()
    return torch.cat([m, none], dim=1)


def group_sums(values: torch.Tensor, membership: torch.Tensor, *,
               reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Global per-group ``(sums, counts)`` of ``values`` (B,) over ``membership`` (B, G)."""
    m = membership.to(values.dtype)
    stacked = torch.stack([values @ m, m.sum(dim=0)])  # (2, G): one collective, not two
    stacked = reduce(stacked)
    return stacked[0], stacked[1]


def group_means(values: torch.Tensor, membership: torch.Tensor, *,
                reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum,
                min_count: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(means, present)``: per-group means of the global batch and a mask of groups with
    at least ``min_count`` rows (means of absent groups are 0 and must be ignored)."""
    sums, counts = group_sums(values, membership, reduce=reduce)
    present = counts >= min_count
    means = sums / counts.clamp_min(1.0)
    return means, present


def _spread(x: torch.Tensor, how: str) -> torch.Tensor:
    if x.numel() < 2:
        return x.sum() * 0.0  # keeps the graph; nothing to compare
    if how == "variance":
        return x.var(unbiased=False)
    if how == "range":
        return x.max() - x.min()
    raise ValueError(f"spread must be 'variance' or 'range'; found {how!r}")


def _deviation(x: torch.Tensor, ref: torch.Tensor, how: str) -> torch.Tensor:
    if x.numel() == 0:
        return ref.sum() * 0.0
    d = x - ref
    if how == "mean_abs":
        return d.abs().mean()
    if how == "max_abs":
        return d.abs().max()
    if how == "mean_sq":
        return (d * d).mean()
    raise ValueError(f"reduction must be 'mean_abs', 'max_abs' or 'mean_sq'; found {how!r}")


# ---------------------------------------------------------------- the terms


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, *,
                  sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean cross-entropy ``sum_i w_i CE_i / sum_i w_i`` (weights from balance)."""
    ce = F.cross_entropy(logits.float(), y.long(), reduction="none")
    if sample_weight is None:
        return ce.mean()
    w = sample_weight.to(ce.dtype)
    return (w * ce).sum() / w.sum().clamp_min(1e-12)


def group_loss_parity(per_example_loss: torch.Tensor, membership: torch.Tensor, *,
                      spread: Literal["variance", "range"] = "variance",
                      reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum,
                      min_count: float = 1.0) -> torch.Tensor:
    """Spread of the per-group mean losses over the groups present in the (global) batch.

    ``membership`` includes the "no group" cell (see :func:`with_none_cell`).
    """
    means, present = group_means(per_example_loss, membership, reduce=reduce, min_count=min_count)
    return _spread(means[present], spread)


def soft_demographic_parity(prob: torch.Tensor, membership: torch.Tensor, *,
                            reduction: Literal["mean_abs", "max_abs", "mean_sq"] = "mean_abs",
                            reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum,
                            min_count: float = 1.0) -> torch.Tensor:
    """Deviation of each group's mean predicted probability from the overall mean.

    A differentiable relaxation of the demographic parity difference (Zafar et al. 2017 use
    the same idea with a decision-boundary covariance; here the rates themselves are soft).
    ``prob`` is ``(B,)`` (the positive class) or ``(B, K)``: then every class's deviations
    count, one-vs-rest; for K = 2 the class-0 deviations mirror the class-1 ones, so the value
    equals the binary one.
    """
    if prob.dim() == 2:  # K classes: every class's rate, one-vs-rest, in one collective
        m = torch.cat([membership.to(prob.dtype), torch.ones_like(prob[:, :1])], dim=1)
        stacked = reduce(torch.cat([prob.T @ m, m.sum(dim=0, keepdim=True)]))  # (K + 1, G + 1)
        counts = stacked[-1]
        means = stacked[:-1] / counts.clamp_min(1.0)
        present = counts[:-1] >= min_count
        devs = means[:, :-1][:, present] - means[:, -1:]
        return _deviation(devs.reshape(-1), torch.zeros((), dtype=prob.dtype, device=prob.device), reduction)
    ones = torch.ones_like(prob).unsqueeze(1)
    m = torch.cat([membership.to(prob.dtype), ones], dim=1)  # last column: everyone
    means, present = group_means(prob, m, reduce=reduce, min_count=min_count)
    overall = means[-1]
    return _deviation(means[:-1][present[:-1]], overall, reduction)


def soft_equalized_odds(prob: torch.Tensor, y: torch.Tensor, membership: torch.Tensor, *,
                        reduction: Literal["mean_abs", "max_abs", "mean_sq"] = "mean_abs",
                        reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum,
                        min_count: float = 1.0) -> torch.Tensor:
    """Soft TPR and FPR gaps: per label y, each group's mean probability among rows of label y
    against the overall one (Hardt et al. 2016, equalized odds, relaxed to probabilities).

    ``prob`` ``(B, K)``: for each class k, one-vs-rest, the soft TPR (mean P(k) where y = k)
    and FPR (where y != k) gaps; equal to the binary value for K = 2.
    """
    if prob.dim() == 2:
        return _soft_equalized_odds_k(prob, y, membership, reduction=reduction, reduce=reduce,
                                      min_count=min_count)
    y = y.to(prob.dtype).unsqueeze(1)
    base = torch.cat([membership.to(prob.dtype), torch.ones_like(y)], dim=1)
    # One collective for both labels: columns [groups|all] x [y=0, y=1].
    m = torch.cat([base * (1 - y), base * y], dim=1)
    means, present = group_means(prob, m, reduce=reduce, min_count=min_count)
    g = base.shape[1]
    devs = []
    for lab in range(2):
        block, ok = means[lab * g:(lab + 1) * g], present[lab * g:(lab + 1) * g]
        if not bool(ok[-1]):  # no row of this label anywhere in the global batch
            continue
        devs.append(block[:-1][ok[:-1]] - block[-1])
    if not devs:
        return prob.sum() * 0.0
    d = torch.cat(devs)
    return _deviation(d, torch.zeros((), dtype=d.dtype, device=d.device), reduction)


def _soft_equalized_odds_k(prob: torch.Tensor, y: torch.Tensor, membership: torch.Tensor, *,
                           reduction: str, reduce: Callable[[torch.Tensor], torch.Tensor],
                           min_count: float) -> torch.Tensor:
    n_classes = prob.shape[1]
    base = torch.cat([membership.to(prob.dtype), torch.ones_like(prob[:, :1])], dim=1)  # (B, G + 1)
    onehot = F.one_hot(y.long(), n_classes).to(prob.dtype)  # (B, K)
    # per class k: columns [groups|all] among y != k, then among y = k; one collective for all
    masks = torch.cat([base.unsqueeze(1) * (1 - onehot).unsqueeze(2),
                       base.unsqueeze(1) * onehot.unsqueeze(2)], dim=2)  # (B, K, 2(G + 1))
    sums = torch.einsum("bk,bkc->kc", prob, masks)
    counts = masks.sum(dim=0)
    stacked = reduce(torch.stack([sums, counts]))
    means = stacked[0] / stacked[1].clamp_min(1.0)
    present = stacked[1] >= min_count
    g = base.shape[1]
    devs = []
    for k in range(n_classes):
        for side in range(2):
            block, ok = means[k, side * g:(side + 1) * g], present[k, side * g:(side + 1) * g]
            if bool(ok[-1]):
                devs.append(block[:-1][ok[:-1]] - block[-1])
    if not devs:
        return prob.sum() * 0.0
    d = torch.cat(devs)
    return _deviation(d, torch.zeros((), dtype=d.dtype, device=d.device), reduction)


def logit_margin(logits: torch.Tensor) -> torch.Tensor:
    """Log-odds of the positive class: ``z1 - z0`` for 2 logits, the logit itself for 1."""
    logits = logits.float()
    return logits[:, 0] if logits.shape[-1] == 1 else logits[:, 1] - logits[:, 0]


def counterfactual_logit_pairing(logits: torch.Tensor, cf_logits: torch.Tensor, *,
                                 distance: Literal["l1", "l2"] = "l1") -> torch.Tensor:
    """Mean distance between the logit of a text and that of its counterfactual partner.

    Counterfactual logit pairing, Garg et al. 2019 ("Counterfactual Fairness in Text
    Classification through Robustness", Sec. 4): ``mean |g(x) - g(x')|`` over pairs, with g the
    positive-class log-odds. Both arguments are the rows of the pairs, aligned. With K > 2
    logits, g is every pairwise log-odds ``z_k - z_j`` and the distance their sum over the
    K(K-1)/2 pairs divided by K - 1 (for K = 2: the binary value).
    """
    if logits.shape[0] != cf_logits.shape[0]:
        raise ValueError(f"logits and cf_logits must be aligned; found {logits.shape[0]} and "
                         f"{cf_logits.shape[0]} rows")
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    if logits.shape[-1] > 2:  # K classes: every pairwise log-odds z_k - z_j, averaged over K - 1
        dz = logits.float() - cf_logits.float()
        pair = dz.unsqueeze(2) - dz.unsqueeze(1)  # (P, K, K); each pair counted twice
        k = logits.shape[-1]
        if distance == "l1":
            return pair.abs().sum(dim=(1, 2)).mean() / (2 * (k - 1))
        if distance == "l2":
            return (pair * pair).sum(dim=(1, 2)).mean() / (2 * (k - 1))
        raise ValueError(f"distance must be 'l1' or 'l2'; found {distance!r}")
    d = logit_margin(logits) - logit_margin(cf_logits)
    if distance == "l1":
        return d.abs().mean()
    if distance == "l2":
        return (d * d).mean()
    raise ValueError(f"distance must be 'l1' or 'l2'; found {distance!r}")


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return -ctx.alpha * grad, None


def grad_reverse(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient times ``-alpha`` backward (Ganin & Lempitsky 2015, Sec. 3.2)."""
    return _GradReverse.apply(x, float(alpha))


class AdversaryHead(torch.nn.Module):
    """Predicts identity groups from the pooled representation through gradient reversal.

    The adversary minimises its loss; the reversed gradient makes the encoder maximise it,
    removing group information from the representation (Zhang et al. 2018; Ganin & Lempitsky
    2015). Multi-label: one logit per group.
    """

    def __init__(self, hidden_size: int, n_groups: int, *, width: int = 64, alpha: float = 1.0):
        super().__init__()
        if n_groups < 1:
            raise ValueError(f"the adversary needs at least one group column; found {n_groups}")
        self.alpha = float(alpha)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(hidden_size, width), torch.nn.ReLU(), torch.nn.Linear(width, n_groups)
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(grad_reverse(pooled.float(), self.alpha))


def adversarial_loss(group_logits: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the adversary's group predictions, ``(B, K)`` each."""
    return F.binary_cross_entropy_with_logits(group_logits.float(), groups.float())


@dataclass
class GroupDRO:
    """Online group DRO over (group x label) cells (Sagawa et al. 2020, Algorithm 1).

    ``q`` is a distribution over cells; after each batch ``q_c <- q_c exp(eta L_c)`` for the
    cells present, renormalised, and the loss is ``sum_c q_c L_c``. ``q_`` is loss state:
    checkpointed with the model and identical on every rank (computed from all-reduced means).
    """

    n_cells: int
    eta: float = 0.01
    q_: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.n_cells < 1:
            raise ValueError(f"n_cells must be >= 1; found {self.n_cells}")
        if self.q_ is None:
            self.q_ = torch.full((self.n_cells,), 1.0 / self.n_cells, dtype=torch.float64)

    @staticmethod
    def cells(membership: torch.Tensor, y: torch.Tensor, *, n_classes: int = 2) -> torch.Tensor:
        """``(B, KG)`` cell membership: group g with label c is cell ``c * G + g``."""
        m = membership.float()
        onehot = F.one_hot(y.long(), n_classes).float()
        return torch.cat([m * onehot[:, c:c + 1] for c in range(n_classes)], dim=1)

    def __call__(self, per_example_loss: torch.Tensor, cells: torch.Tensor, *,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum,
                 update: bool = True) -> torch.Tensor:
        if cells.shape[1] != self.n_cells:
            raise ValueError(f"expected {self.n_cells} cells; found {cells.shape[1]}")
        means, present = group_means(per_example_loss, cells, reduce=reduce)
        if update:
            with torch.no_grad():
                q = self.q_.to(means.device)
                step = torch.where(present, means.detach().double() * self.eta,
                                   torch.zeros_like(q))
                q = q * torch.exp(step)
                self.q_ = (q / q.sum()).cpu()
        q = self.q_.to(device=means.device, dtype=means.dtype)
        return (q * means * present.to(means.dtype)).sum()

    def state_dict(self) -> dict[str, Any]:
        return {"n_cells": self.n_cells, "eta": self.eta, "q": self.q_.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n_cells"]) != self.n_cells:
            raise ValueError(f"DRO state has {state['n_cells']} cells; this run has {self.n_cells}")
        self.q_ = state["q"].clone().double()


# ---------------------------------------------------------------- the combined objective


@dataclass
class LossInputs:
    """What one step hands the objective. ``membership`` is (B, K) without the none cell."""

    logits: torch.Tensor
    y: torch.Tensor
    membership: torch.Tensor
    sample_weight: torch.Tensor | None = None
    cf_logits: torch.Tensor | None = None  # (P, C) logits of the counterfactual partners
    cf_index: torch.Tensor | None = None  # (P,) rows of the batch the partners belong to
    group_logits: torch.Tensor | None = None  # adversary output (B, K)


def _term_spec(term: Any) -> tuple[str, float, dict[str, Any]]:
    if hasattr(term, "model_dump"):
        term = term.model_dump()
    if not isinstance(term, dict) or "name" not in term:
        raise TypeError(f"a loss term must be a dict or LossTerm with a 'name'; found {term!r}")
    name = term["name"]
    if name not in LOSS_NAMES:
        raise ValueError(f"unknown loss term {name!r}; expected one of {', '.join(LOSS_NAMES)}")
    return name, float(term.get("weight", 1.0)), dict(term.get("params") or {})


_ALLOWED_PARAMS = {
    "cross_entropy": set(),
    "group_loss_parity": {"spread", "min_count"},
    "soft_demographic_parity": {"reduction", "min_count"},
    "soft_equalized_odds": {"reduction", "min_count"},
    "counterfactual_logit_pairing": {"distance"},
    "adversarial": {"alpha", "width"},
    "group_dro": {"eta"},
}


class FairnessObjective:
    """The weighted sum of the configured terms; holds the loss state (DRO weights).

    Parameters
    ----------
    terms : list of ``LossTerm`` or ``{"name", "weight", "params"}``.
    n_groups : number of identity group columns K (cells are built with the none cell added).
    n_classes : label classes (2: binary; the rate terms then use the positive class only).
    reduce : how group statistics are summed over ranks (default: all-reduce if distributed).
    """

    def __init__(self, terms: list[Any], *, n_groups: int, n_classes: int = 2,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = all_reduce_sum) -> None:
        if not terms:
            raise ValueError("train.losses must list at least one term; found none")
        self.terms = [_term_spec(t) for t in terms]
        for name, _, params in self.terms:
            extra = set(params) - _ALLOWED_PARAMS[name]
            if extra:
                raise ValueError(f"loss {name!r} got unknown params {sorted(extra)}; allowed: "
                                 f"{sorted(_ALLOWED_PARAMS[name]) or 'none'}")
        self.names = [n for n, _, _ in self.terms]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"each loss term may appear once; found {self.names}")
        self.n_groups = int(n_groups)
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2; found {n_classes}")
        self.n_classes = int(n_classes)
        self.reduce = reduce
        self.dro: GroupDRO | None = None
        for name, _, params in self.terms:
            if name == "group_dro":
                self.dro = GroupDRO(n_cells=self.n_classes * (self.n_groups + 1), eta=float(params.get("eta", 0.01)))
            if name == "adversarial" and self.n_groups < 1:
                raise ValueError("the adversarial loss needs identity group columns (g_*); found none")

    @property
    def needs_counterfactuals(self) -> bool:
        return "counterfactual_logit_pairing" in self.names

    @property
    def adversary_params(self) -> dict[str, Any] | None:
        for name, _, params in self.terms:
            if name == "adversarial":
                return params
        return None

    def __call__(self, inp: LossInputs, *, update_state: bool = True
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """``(total, {term: value})``; the values are detached floats for logging."""
        ce_i = F.cross_entropy(inp.logits.float(), inp.y.long(), reduction="none")
        cells = with_none_cell(inp.membership)
        if inp.logits.shape[-1] != self.n_classes:
            raise ValueError(f"the model gives {inp.logits.shape[-1]} logits; the objective expects "
                             f"{self.n_classes} classes")
        prob = torch.softmax(inp.logits.float(), dim=-1)
        if self.n_classes == 2:
            prob = prob[:, 1]  # binary: the positive class's rates, as they always were
        total = inp.logits.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        for name, weight, params in self.terms:
            if name == "cross_entropy":
                v = cross_entropy(inp.logits, inp.y, sample_weight=inp.sample_weight)
            elif name == "group_loss_parity":
                v = group_loss_parity(ce_i, cells, reduce=self.reduce, **params)
            elif name == "soft_demographic_parity":
                v = soft_demographic_parity(prob, cells, reduce=self.reduce, **params)
            elif name == "soft_equalized_odds":
                v = soft_equalized_odds(prob, inp.y, cells, reduce=self.reduce, **params)
            elif name == "counterfactual_logit_pairing":
                if inp.cf_logits is None or inp.cf_index is None:
                    v = inp.logits.sum() * 0.0
                else:
                    v = counterfactual_logit_pairing(inp.logits[inp.cf_index], inp.cf_logits,
                                                     distance=params.get("distance", "l1"))
            elif name == "adversarial":
                if inp.group_logits is None:
                    raise ValueError("the adversarial loss needs group_logits from the adversary head")
                v = adversarial_loss(inp.group_logits, inp.membership)
            else:  # group_dro
                assert self.dro is not None
                v = self.dro(ce_i, GroupDRO.cells(cells, inp.y, n_classes=self.n_classes), reduce=self.reduce,
                             update=update_state)
            parts[name] = float(v.detach())
            if weight:
                total = total + weight * v
        if not math.isfinite(float(total.detach())):
            raise FloatingPointError(f"non-finite loss; terms: {parts}")
        return total, parts

    def state_dict(self) -> dict[str, Any]:
        return {"dro": self.dro.state_dict() if self.dro is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.dro is not None and state.get("dro") is not None:
            self.dro.load_state_dict(state["dro"])
