"""Counterfactual augmentation of a batch: row schema per mode, determinism, the prefilter."""

from __future__ import annotations

import pandas as pd
import pytest

from debias.corpus.augment import counterfactual_batch, row_mapping
from debias.identity.annotate import IdentityAnnotator
from debias.identity.lexicon import AXES, load_lexicon
from debias.identity.swaps import load_swaps

SWAP_AXES = ["gender", "religion", "race_ethnicity", "sexual_orientation", "gender_identity", "nationality"]


@pytest.fixture(scope="module")
def table():
    return load_swaps(SWAP_AXES)


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(list(AXES))


def test_row_mapping_is_a_derangement_and_deterministic(table):
    m = row_mapping(table, "row-1", 7)
    assert m == row_mapping(table, "row-1", 7)
    for groups in table.groups.values():
        assert sorted(m[g] for g in groups) == sorted(groups)
        assert all(m[g] != g for g in groups)
    assert m["male"] == "female" and m["female"] == "male"


def _frame(lexicon):
    df = pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "text": ["He is my brother", "nice weather", "Muslim women pray", "she said hi"],
        "label": [1, 0, 1, 0],
    })
    return IdentityAnnotator(lexicon)(df)


def test_append_mode_schema(table, lexicon):
    df = _frame(lexicon)
    out = counterfactual_batch(df, table=table, lexicon=lexicon, mode="append", seed=0)
    assert len(out) == 4 + 3
    gen = out[out["is_augmented"]]
    assert gen["id"].tolist() == ["a~cf", "c~cf", "d~cf"]
    assert set(gen["pair_id"]) <= set(out.loc[~out["is_augmented"], "id"])  # every pair_id is a source
    src = out[~out["is_augmented"]].set_index("id")
    assert pd.isna(src.loc["b", "pair_id"]) and src.loc["a", "pair_id"] == "a"
    assert gen.set_index("id").loc["a~cf", "text"] == "She is my sister"
    assert gen["label"].tolist() == [1, 1, 0]                                    # carried over
    c = gen.set_index("id").loc["c~cf"]
    assert c["groups"] != ["female", "muslim"] and "male" in c["groups"] and c["g_male"]  # re-annotated
    assert not c["g_female"]


def test_pairs_mode_and_determinism(table, lexicon):
    df = _frame(lexicon)
    a = counterfactual_batch(df, table=table, lexicon=lexicon, mode="pairs", seed=3)
    b = counterfactual_batch(df, table=table, lexicon=lexicon, mode="pairs", seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert sorted(a["id"]) == ["a", "a~cf", "c", "c~cf", "d", "d~cf"]
    assert a["pair_id"].notna().all()
    assert (a.groupby("pair_id").size() == 2).all()


def test_replace_mode(table, lexicon):
    df = _frame(lexicon)
    none = counterfactual_batch(df, table=table, lexicon=lexicon, mode="replace", probability=0.0)
    assert none["text"].tolist() == df["text"].tolist() and not none["is_augmented"].any()
    full = counterfactual_batch(df, table=table, lexicon=lexicon, mode="replace", probability=1.0)
    assert full["id"].tolist() == df["id"].tolist()
    assert full["is_augmented"].tolist() == [True, False, True, True]
    assert full["text"][0] == "She is my sister" and full["pair_id"].isna().all()
    many = pd.DataFrame({"id": [str(i) for i in range(400)], "text": ["he is here"] * 400})
    share = counterfactual_batch(many, table=table, lexicon=None, mode="replace", probability=0.3, seed=1)["is_augmented"].mean()
    assert 0.2 < share < 0.4


def test_augmented_rows_are_not_sources(table, lexicon):
    df = pd.DataFrame({"id": ["a", "a~cf"], "text": ["he", "she"], "is_augmented": [False, True], "pair_id": ["a", "a"]})
    out = counterfactual_batch(df, table=table, lexicon=lexicon, mode="append")
    assert out["id"].tolist() == ["a", "a~cf", "a~cf"]


def test_batch_errors(table, lexicon):
    with pytest.raises(ValueError, match="missing id_col column 'id'"):
        counterfactual_batch(pd.DataFrame({"text": ["he"]}), table=table, lexicon=lexicon, mode="append")
    with pytest.raises(ValueError, match="mode must be one of"):
        counterfactual_batch(pd.DataFrame({"id": ["1"], "text": ["he"]}), table=table, lexicon=lexicon, mode="swap")


def test_prefilter_changes_nothing_but_skips_rows(table, lexicon):
    import dataclasses

    from debias.corpus.augment import _may_match

    texts = ["He loves his wife.", "HE said SHE said", "Mr. Smith met his Father-in-law", "John told Mary",
             "women\u2019s rights", "the theme of the manager", "I gave her a book", "a Muslim and a Jew",
             "GAY pride", "the weather is nice", "", None, "nothing to see here", "my brother-in-law",
             "Ünïcödé text with no terms", "the Christians and the Hindus", "an Indian woman", "men's rights"]
    df = pd.DataFrame({"id": [f"r{i}" for i in range(4 * len(texts))], "text": texts * 4, "label": 0})
    assert len(df) >= 64  # the prefilter runs on batches of 64 and more
    maybe = _may_match(df["text"].tolist(), table)
    assert not maybe.all() and maybe.any()
    exact = dataclasses.replace(table, prefilter=None)
    for mode in ("append", "pairs", "replace"):
        fast = counterfactual_batch(df, table=table, lexicon=lexicon, mode=mode, probability=1.0, seed=2)
        slow = counterfactual_batch(df, table=exact, lexicon=lexicon, mode=mode, probability=1.0, seed=2)
        pd.testing.assert_frame_equal(fast, slow)
    # every text the exact regex matches passes the prefilter
    hits = [isinstance(t, str) and table.pattern.search(t) is not None for t in df["text"]]
    assert all(m for m, h in zip(maybe, hits, strict=True) if h)
