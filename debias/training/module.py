"""The fair classifier and its assembly: the HF classifier plus, when the adversarial loss is
on, an adversary head, built together with the objective in one place (:func:`build_module`),
so the training workers and the export of the best checkpoint build the same thing.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import torch

from debias.training.losses import AdversaryHead, FairnessObjective
from debias.training.model import freeze, load_classifier, wants_token_type_ids

__all__ = ["BuiltModule", "FairClassifier", "build_module"]


def _pad_cols(t: torch.Tensor, length: int, value: int) -> torch.Tensor:
    if t.shape[1] == length:
        return t
    pad = t.new_full((t.shape[0], length - t.shape[1]), value)
    return torch.cat([t, pad], dim=1)


class FairClassifier(torch.nn.Module):
    """The HF classifier plus, when the adversarial loss is on, an adversary head.

    Counterfactual partners go through the same forward call as the batch (concatenated), so
    DDP sees one forward per step and the extra cost is exactly the partners' rows.
    """

    def __init__(self, model: torch.nn.Module, *, n_groups: int = 0,
                 adversary: dict[str, Any] | None = None, pad_id: int = 0) -> None:
        super().__init__()
        self.model = model
        self.pad_id = int(pad_id)
        self.adversary = None
        if adversary is not None:
            hidden = int(model.config.hidden_size)
            self.adversary = AdversaryHead(hidden, n_groups, width=int(adversary.get("width", 64)),
                                           alpha=float(adversary.get("alpha", 1.0)))

    def forward(self, inputs: dict[str, torch.Tensor], cf_inputs: dict[str, torch.Tensor] | None = None):
        n = inputs["input_ids"].shape[0]
        if cf_inputs is not None:
            length = max(inputs["input_ids"].shape[1], cf_inputs["input_ids"].shape[1])
            joined = {}
            for k in inputs:
                val = self.pad_id if k == "input_ids" else 0
                joined[k] = torch.cat([_pad_cols(inputs[k], length, val),
                                       _pad_cols(cf_inputs[k], length, val)])
            inputs = joined
        out = self.model(**inputs, output_hidden_states=self.adversary is not None)
        logits = out.logits
        group_logits = None
        if self.adversary is not None:
            pooled = out.hidden_states[-1][:n, 0]  # (B, H): the [CLS] position, last layer
            group_logits = self.adversary(pooled)
        cf_logits = logits[n:] if cf_inputs is not None else None
        return logits[:n], cf_logits, group_logits


class BuiltModule(NamedTuple):
    module: FairClassifier
    objective: FairnessObjective
    tokenizer: Any
    pad_id: int
    token_type_ids: bool


def build_module(model_dir: str | os.PathLike, *, losses: list[Any], n_groups: int, n_classes: int = 2,
                 freeze_embeddings: bool = False, freeze_layers: int = 0,
                 seed: int | None = None) -> BuiltModule:
    """Load the classifier from ``model_dir``, freeze what is asked, build the objective from
    ``losses`` and wrap both into a :class:`FairClassifier`.

    ``seed`` (set before the new classification and adversary heads are drawn) makes the heads
    identical on every DDP rank; None leaves torch's generator as it is (e.g. when a checkpoint
    overwrites every weight anyway).
    """
    if seed is not None:
        torch.manual_seed(seed)
    model, tok = load_classifier(model_dir, num_labels=n_classes)
    freeze(model, embeddings=freeze_embeddings, layers=freeze_layers)
    objective = FairnessObjective(losses, n_groups=n_groups, n_classes=n_classes)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    module = FairClassifier(model, n_groups=n_groups, adversary=objective.adversary_params, pad_id=pad_id)
    return BuiltModule(module, objective, tok, pad_id, wants_token_type_ids(tok))
