"""debias.evaluation.predict: length-sorted batching returns the same scores, in the input order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from debias.evaluation.predict import Predictor, length_sorted_batches, padding_aware_batches
from debias.training.model import collate, encode, load_classifier

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


def test_consecutive_batches_give_the_same_scores(tiny_model_dir):
    plain = Predictor(tiny_model_dir, batch_size=4, max_length=32, padding_aware=False)
    np.testing.assert_allclose(plain.predict_texts(TEXTS), _one_by_one(tiny_model_dir, TEXTS), atol=1e-5)


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


def _slots(batches, lengths, overhead):
    lengths = np.asarray(lengths)
    return sum(overhead + len(b) * lengths[b].max() for b in batches)


def _brute_best(lengths, batch_size, overhead):
    """Least cost over every cut of the sorted order into runs of at most batch_size."""
    s = sorted(lengths)
    n = len(s)
    best = float("inf")
    for mask in range(1 << max(0, n - 1)):  # bit k set: cut after sorted position k
        cuts = [0] + [k + 1 for k in range(n - 1) if mask >> k & 1] + [n]
        runs = [s[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        if all(len(r) <= batch_size for r in runs):
            best = min(best, sum(overhead + len(r) * max(r) for r in runs))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_padding_aware_batches_are_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 11))
    lengths = rng.integers(1, 60, n).tolist()
    batch_size, overhead = int(rng.integers(1, 6)), float(rng.choice([0.0, 4.0, 16.0, 100.0]))
    batches = padding_aware_batches(lengths, batch_size, overhead_tokens=overhead)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert _slots(batches, lengths, overhead) == pytest.approx(_brute_best(lengths, batch_size, overhead))


def test_padding_aware_batches_split_uneven_and_keep_even_batches_full():
    even = padding_aware_batches([7] * 70, 32)  # equal lengths: as few passes as batch_size allows
    assert len(even) == 3 and sum(map(len, even)) == 70 and max(map(len, even)) <= 32
    # a served batch: 28 short tweets and 4 long ones; one padded batch costs 16 + 32 * 60
    lengths = [12] * 28 + [60] * 4
    batches = padding_aware_batches(lengths, 32)
    assert sorted(len(b) for b in batches) == [4, 28]
    assert _slots(batches, lengths, 16) < 16 + 32 * 60
    assert padding_aware_batches([], 8) == []
    with pytest.raises(ValueError, match="batch_size"):
        padding_aware_batches([1], 0)
