"""debias.training.data: membership, counterfactual partners, tokenisation, length bucketing and
batches, on the tiny random BERT's tokenizer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.schema import membership_columns
from debias.training.data import (
    bucket_batches,
    iter_train_batches,
    make_batch,
    membership_matrix,
    partner_texts,
    window_batches,
)


def test_group_columns_and_membership(train_frame):
    cols = membership_columns(train_frame.columns)
    assert cols == ["g_female", "g_male", "g_muslim"]
    m = membership_matrix(train_frame, cols + ["g_absent"])
    assert m.shape == (8, 4) and m[:, 3].sum() == 0
    assert m[0].tolist() == [1, 0, 0, 0] and m[4].tolist() == [0, 0, 1, 0]


def test_partner_texts_pairs_both_ways_and_skips_lonely_rows(train_frame):
    p = partner_texts(train_frame)
    assert p == {"a": "he is a nurse", "a~cf": "she is a nurse",
                 "f": "the men went home", "f~cf": "the women went home"}
    with pytest.raises(ValueError, match="missing"):
        partner_texts(train_frame.drop(columns="pair_id"))


def test_tokenize_adds_unpadded_ids(tokenised):
    assert (tokenised["n_tokens"] == tokenised["input_ids"].map(len)).all()
    assert tokenised["n_tokens"].nunique() > 1
    has_cf = tokenised["cf_input_ids"].map(len) > 0
    assert has_cf.tolist() == [True, True, False, False, False, False, True, True]


def test_bucket_batches_cover_rows_once_sorted_within_batches():
    rng = np.random.default_rng(0)
    w = pd.DataFrame({"n_tokens": rng.integers(3, 60, size=103), "row": np.arange(103)})
    batches = bucket_batches(w, batch_size=10, seed=1)
    assert sorted(pd.concat(batches)["row"].tolist()) == list(range(103))
    assert sorted(len(b) for b in batches) == [3] + [10] * 10
    # bucketing: far less padding than batches in input order
    def waste(bs):
        return sum((b["n_tokens"].max() - b["n_tokens"]).sum() for b in bs)
    plain = [w.iloc[i:i + 10] for i in range(0, 103, 10)]
    assert waste(batches) < waste(plain) / 3
    again = bucket_batches(w, batch_size=10, seed=1)
    assert [b["row"].tolist() for b in again] == [b["row"].tolist() for b in batches]
    assert bucket_batches(w.iloc[:0], batch_size=4, seed=0) == []


def test_window_batches_fixed_keeps_input_order_dynamic_buckets():
    w = pd.DataFrame({"n_tokens": [9, 1, 8, 2, 7], "row": range(5)})
    fixed = window_batches(w, batch_size=2, dynamic=False, seed=0)
    assert [b["row"].tolist() for b in fixed] == [[0, 1], [2, 3], [4]]
    dynamic = window_batches(w, batch_size=2, dynamic=True, seed=0)
    assert [b["row"].tolist() for b in dynamic] == [b["row"].tolist()
                                                    for b in bucket_batches(w, batch_size=2, seed=0)]


def test_iter_train_batches_is_lazy_and_seeds_window_i_with_seed_plus_i(tokenised):
    cols = membership_columns(tokenised.columns)
    pulled = []

    def windows():
        for i in range(0, 8, 4):
            pulled.append(i)
            yield tokenised.iloc[i:i + 4]

    it = iter_train_batches(windows(), batch_size=2, dynamic=True, seed=10, group_cols=cols, pad_id=0)
    first = next(it)
    assert pulled == [0] and len(first) == 2  # the second window is not read yet
    rest = list(it)
    assert pulled == [0, 4] and [len(b) for b in rest] == [2, 2, 2]
    # window 1 is cut exactly as bucket_batches cuts it with seed 10 + 1
    want = bucket_batches(tokenised.iloc[4:8], batch_size=2, seed=11)
    for got, bdf in zip(rest[1:], want, strict=True):
        assert got.y.tolist() == bdf["label"].tolist()
        assert got.inputs["input_ids"].shape[1] == bdf["n_tokens"].max()


def test_make_batch_dynamic_vs_fixed_padding(tokenised, train_frame):
    cols = membership_columns(tokenised.columns)
    b = make_batch(tokenised, group_cols=cols, pad_id=0, counterfactuals=True)
    assert b.inputs["input_ids"].shape == (8, tokenised["n_tokens"].max())
    assert make_batch(tokenised, group_cols=cols, pad_id=0, pad_to=16).inputs["input_ids"].shape == (8, 16)
    assert b.cf_index.tolist() == [0, 1, 6, 7]
    assert b.cf_inputs["input_ids"].shape[0] == 4
    assert b.sample_weight.tolist() == train_frame["sample_weight"].tolist()
    assert b.membership.shape == (8, 3)
    assert make_batch(tokenised, group_cols=cols, pad_id=0).cf_inputs is None
