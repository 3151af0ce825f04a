"""One batch of the service's queue: clean, score, detect groups, decide.

Every text the service scores (a classify request's texts, a counterfactual's original and its
variants) is one :class:`Item` in one batch queue, so requests of any size share forward
passes. A text pair is one item with both texts: both are cleaned like a single text, the model
scores the pair, and its groups are the union of the groups each text mentions (as preprocess
annotates pair corpora). Randomised per-group rules draw from the first text, as evaluation
keys its decisions (``debias.evaluation.thresholds.decide``), so the same input gets the same
decision in both. The model and the tools are passed in: a unit test drives this with a stub
predictor and no Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from debias.serving.classes import ServedClasses, decide

__all__ = ["Item", "ScoredBatch", "score_items"]


class Item(NamedTuple):
    """One text (or text pair) in the batch queue.

    ``observe``: a real decision the monitor counts (counterfactual variants are scored but not
    counted); ``needs_clean``: raw request input (counterfactual texts arrive cleaned).
    """

    text: str
    pair: str | None = None
    observe: bool = True
    needs_clean: bool = True


class ScoredBatch(NamedTuple):
    scores: np.ndarray         # (n,) probability of classes.score_class
    labels: np.ndarray         # (n,) class ids
    proba: np.ndarray          # (n, K) class probabilities, class-id order
    groups: list[list[str]]    # identity groups per item (both texts of a pair)


def score_items(items: Sequence[Item], *, predictor: Any, annotator: Any,
                clean: Callable[[list[str]], list[str]], classes: ServedClasses, rule: Any) -> ScoredBatch:
    """Score one batch.

    Parameters
    ----------
    items : the batch, in queue order.
    predictor : has ``predict_proba(texts, pairs=None) -> (n, K)``
        (:class:`debias.evaluation.predict.Predictor`).
    annotator : has ``detect_groups(texts) -> list[list[str]]`` (None entries: no groups).
    clean : the service's cleaning, many texts at once.
    classes, rule : what :func:`debias.serving.classes.decide` reads the probabilities with.
    """
    texts = [it.text for it in items]
    pairs = [it.pair for it in items]
    raw = [i for i, it in enumerate(items) if it.needs_clean]
    raw_pairs = [i for i in raw if pairs[i] is not None]
    if raw:  # one vectorised call per batch: cleaning one text at a time costs as much as 32
        cleaned = iter(clean([texts[i] for i in raw] + [pairs[i] for i in raw_pairs]))
        for i in raw:
            texts[i] = next(cleaned)
        for i in raw_pairs:
            pairs[i] = next(cleaned)
    has_pairs = any(p is not None for p in pairs)
    proba = np.asarray(predictor.predict_proba(texts, pairs if has_pairs else None), dtype=np.float64)
    groups = [list(g) for g in annotator.detect_groups(texts)]
    if has_pairs:
        second = annotator.detect_groups(pairs)
        groups = [sorted(set(a) | set(b)) for a, b in zip(groups, second, strict=True)]
    scores, labels = decide(proba, classes=classes, rule=rule, groups=groups, keys=texts)
    return ScoredBatch(scores, labels, proba, groups)
