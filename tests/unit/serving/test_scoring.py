"""One batch of the service's queue with a stub model: cleaning, pairs, groups and decisions."""

from __future__ import annotations

import numpy as np
import pytest

from debias.corpus.clean import clean_texts
from debias.evaluation.thresholds import GroupThresholds
from debias.identity.annotate import IdentityAnnotator
from debias.identity.lexicon import AXES, load_lexicon
from debias.serving.classes import ServedClasses
from debias.serving.scoring import Item, score_items


class StubPredictor:
    """Class probabilities from the lengths of the texts it is given; records what it got."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.calls: list[tuple[list[str], list[str | None] | None]] = []

    def predict_proba(self, texts, pairs=None):
        self.calls.append((list(texts), None if pairs is None else list(pairs)))
        n2 = [len(p or "") for p in (pairs or [None] * len(texts))]
        logits = np.array([[(len(t) + 3 * m) % (j + 5) for j in range(self.k)] for t, m in zip(texts, n2, strict=True)],
                          dtype=float)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def annotator():
    return IdentityAnnotator(load_lexicon(list(AXES)))


def _score(items, k, annotator, threshold=0.5):
    pred = StubPredictor(k)
    names = tuple(f"c{i}" for i in range(k))
    out = score_items(items, predictor=pred, annotator=annotator, clean=lambda ts: clean_texts(ts),
                      classes=ServedClasses(names, focus=0 if k > 2 else 1),
                      rule=GroupThresholds.global_only(threshold, source="test"))
    return out, pred


def test_single_texts_are_cleaned_once_and_scored_without_pairs(annotator):
    items = [Item("<b>My sister</b>  is here"), Item("already clean", observe=False, needs_clean=False)]
    out, pred = _score(items, 2, annotator)
    assert pred.calls == [(clean_texts(["<b>My sister</b>  is here"]) + ["already clean"], None)]
    assert out.proba.shape == (2, 2) and np.allclose(out.scores, out.proba[:, 1])
    assert out.labels.tolist() == (out.scores >= 0.5).astype(int).tolist()
    assert "female" in out.groups[0] and out.groups[1] == []


def test_pairs_clean_both_texts_union_their_groups_and_keep_single_rows(annotator):
    items = [Item("the woman fixed the car", "<i>a  man</i> fixed it"), Item("what a day"),
             Item("the old man said so", "the muslim teacher", needs_clean=False)]
    out, pred = _score(items, 3, annotator)
    (texts, pairs), = pred.calls
    assert texts == ["the woman fixed the car", "what a day", "the old man said so"]
    assert pairs == [clean_texts(["<i>a  man</i> fixed it"])[0], None, "the muslim teacher"]
    assert {"female", "male"} <= set(out.groups[0]) and out.groups[1] == []
    assert {"male", "muslim"} <= set(out.groups[2])  # one group from each text
    p = pred.predict_proba(texts, pairs)
    assert np.allclose(out.proba, p) and out.labels.tolist() == p.argmax(axis=1).tolist()
    assert np.allclose(out.scores, p[:, 0])  # the focus class
