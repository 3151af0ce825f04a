"""debias.predict: length-sorted batching returns the same scores, in the input order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from debias.model import collate, encode, load_classifier
from debias.predict import Predictor, length_sorted_batches

TEXTS = [
    "a much longer sentence that goes on for quite a few more tokens than the others do",
    "hi",
    "medium length text here",
    "",
    "another one, a bit longer than medium but not much",
    "ok then",
    "x",
]


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor(tiny_model_dir, batch_size=3, max_length=32)


def _one_by_one(model_dir, texts):
    model, tok = load_classifier(model_dir)
    model.eval()
    out = []
    with torch.no_grad():
        for t in texts:
            b = collate(encode([t], tok, max_length=32), pad_id=tok.pad_token_id)
            out.append(torch.softmax(model(**b).logits, -1)[0, 1].item())
    return np.array(out)


def test_scores_match_unsorted_one_by_one_loop(predictor, tiny_model_dir):
    got = predictor.predict_texts(TEXTS)
    assert got.dtype == np.float64 and got.shape == (len(TEXTS),)
    np.testing.assert_allclose(got, _one_by_one(tiny_model_dir, TEXTS), atol=1e-5)
    assert ((got > 0) & (got < 1)).all()


def test_order_preserved_under_permutation(predictor):
    base = predictor.predict_texts(TEXTS)
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    got = predictor.predict_texts([TEXTS[i] for i in perm])
    np.testing.assert_allclose(got, base[perm], atol=1e-5)


def test_empty_list(predictor):
    out = predictor.predict_texts([])
    assert out.shape == (0,) and out.dtype == np.float64


def test_call_adds_y_score_and_keeps_columns(predictor):
    df = pd.DataFrame({"id": list("abc"), "text": TEXTS[:3]})
    out = predictor(df)
    assert list(out.columns) == ["id", "text", "y_score"]
    assert out["id"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(out["y_score"], predictor.predict_texts(TEXTS[:3]), atol=1e-6)
    with pytest.raises(ValueError, match="missing column 'body'"):
        predictor(df, text_col="body")


def test_length_sorted_batches_cover_every_index_once():
    batches = length_sorted_batches([5, 1, 3, 1, 9], 2)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == [0, 1, 2, 3, 4]
    assert flat.tolist() == [1, 3, 2, 0, 4]  # stable: equal lengths keep input order
    assert [len(b) for b in batches] == [2, 2, 1]
