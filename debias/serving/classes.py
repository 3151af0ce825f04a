"""The classes a served model decides between, and how its probabilities become a response.

A binary model is read as it always was: ``score`` is P(class 1) and the label comes from the
decision rule (one threshold, or the per-group thresholds ``debias evaluate`` stored with the
model). A model of K > 2 classes has no threshold to tune per group: its label is the argmax
class, and ``score`` is the probability of the model card's focus class (``focus_class``, the
class the evaluation read against the rest; class 1 when the card names none), so score-based
readings (counterfactual gaps, the monitor's rates) mean "probability of the focus class"
whatever K is. Pure functions: no Ray, no torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARGMAX", "ServedClasses", "class_names", "decide", "model_classes", "served_classes"]

ARGMAX = "argmax"  # the decision rule's name for K > 2


@dataclass(frozen=True)
class ServedClasses:
    """Class names in class-id order and the model card's focus class id."""

    names: tuple[str, ...]
    focus: int = 1

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise ValueError(f"a classifier needs at least 2 class names; found {list(self.names)}")
        if not 0 <= self.focus < len(self.names):
            raise ValueError(f"focus class {self.focus} is not a class id of {list(self.names)}")

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def binary(self) -> bool:
        return self.n == 2

    @property
    def score_class(self) -> int:
        """The class whose probability ``scores`` holds and the monitor calls positive: class 1
        for a binary model (whatever the card's focus), the focus class for K > 2."""
        return 1 if self.binary else self.focus


def model_classes(model_dir: str | os.PathLike) -> tuple[int, list[str]]:
    """``(K, id2label names in id order)`` from the model's ``config.json``; a one-logit (sigmoid)
    head counts as two classes. ``(2, [])`` when the config is missing or names nothing."""
    try:
        conf = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return 2, []
    id2label = conf.get("id2label") or {}
    try:
        names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        names = []
    k = max(2, int(conf.get("num_labels") or len(names) or 2))
    return k, names if len(names) == k else []


def class_names(model_dir: str | os.PathLike, card: dict[str, Any]) -> list[str]:
    """The label names: the card's ``class_names``, else the model config's ``id2label`` unless
    it is transformers' placeholder ``LABEL_k``, else the project's default for a binary model
    and the placeholders for a K-class one.

    Raises
    ------
    ValueError
        When the card names a different number of classes than the model has.
    """
    from debias.schema import CLASS_NAMES

    k, names = model_classes(model_dir)
    if card.get("class_names"):
        named = [str(n) for n in card["class_names"]]
        if len(named) != k:
            raise ValueError(f"model_card.json names {len(named)} classes ({', '.join(named)}) but the "
                             f"model in {Path(model_dir).name} has {k}")
        return named
    if names and not all(n.startswith("LABEL_") for n in names):
        return names
    return list(CLASS_NAMES) if k == 2 else (names or [f"LABEL_{i}" for i in range(k)])


def served_classes(model_dir: str | os.PathLike, card: dict[str, Any]) -> ServedClasses:
    """:class:`ServedClasses` of a model dir: :func:`class_names` and the card's ``focus_class``
    (a class name or id; default class 1).

    Raises
    ------
    ValueError
        When ``focus_class`` is neither a class name nor a class id of the model.
    """
    names = class_names(model_dir, card)
    f = card.get("focus_class")
    if f is None:
        focus = 1
    elif isinstance(f, str) and f in names:
        focus = names.index(f)
    elif isinstance(f, int | str) and str(f).isdigit() and int(f) < len(names):
        focus = int(f)
    else:
        raise ValueError(f"model_card.json focus_class {f!r} is not one of the model's classes "
                         f"{names} (nor a class id below {len(names)})")
    return ServedClasses(tuple(names), focus)


def decide(proba: np.ndarray, *, classes: ServedClasses, rule: Any, groups: Sequence[Sequence[str]],
           keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` for ``(n, K)`` class probabilities.

    Binary: ``scores = proba[:, 1]`` and ``labels = rule.predict(scores, groups, keys=keys)`` (a
    :class:`debias.evaluation.thresholds.GroupThresholds`; ``keys`` seed its randomised cells).
    K > 2: ``scores = proba[:, classes.focus]``, ``labels = argmax`` (the first class on ties);
    ``rule`` is not used. (:attr:`ServedClasses.score_class` is the column either way.)
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != classes.n:
        raise ValueError(f"expected ({len(keys)}, {classes.n}) class probabilities; found shape {p.shape}")
    if classes.binary:
        scores = p[:, 1]
        return scores, np.asarray(rule.predict(scores, groups, keys=keys), dtype=np.int64)
    return p[:, classes.score_class], p.argmax(axis=1).astype(np.int64)
