"""Counterfactual swaps: hand-worked rewrites, the involution invariant, batch row schema."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debias.identity.annotate import IdentityAnnotator
from debias.identity.lexicon import AXES, load_lexicon
from debias.identity.swaps import (
    available_swap_axes,
    counterfactual_batch,
    counterfactual_variants,
    load_swaps,
    rewrite,
    row_mapping,
    swap_text,
)

SWAP_AXES = ["gender", "religion", "race_ethnicity", "sexual_orientation", "gender_identity", "nationality"]


@pytest.fixture(scope="module")
def table():
    return load_swaps(SWAP_AXES)


@pytest.fixture(scope="module")
def gender():
    return load_swaps(["gender"])


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(list(AXES))


@pytest.mark.parametrize("text, want", [
    ("He loves his wife.", "She loves her husband."),
    ("the boys and the girls", "the girls and the boys"),
    ("HE said SHE said", "SHE said HE said"),                        # UPPER
    ("Mr. Smith met his Father-in-law", "Mrs. Smith met her Mother-in-law"),  # Title, hyphens kept
    ("John told Mary", "Mary told John"),                            # names swap when capitalised
    ("women's rights", "men's rights"),
    ("the theme of the manager", "the theme of the manager"),        # no partial words
    # her-ambiguity: object -> him, determiner -> his
    ("I gave her a book", "I gave him a book"),
    ("I saw her yesterday.", "I saw him yesterday."),
    ("with her.", "with him."),
    ("her own car and her dog", "his own car and his dog"),
    ("the car is his.", "the car is hers."),
    ("his car", "her car"),
    ("hers is red", "his is red"),
])
def test_swap_text_hand_worked(gender, text, want):
    assert swap_text(text, gender) == want


def test_lowercase_word_that_is_a_name_is_kept(gender):
    assert swap_text("jack up the car", gender) == "jack up the car"


def test_gender_table_is_an_involution_word_by_word(gender):
    for word in gender.entries:
        if word in {"his", "him", "her", "hers"}:
            continue
        once = swap_text(_title(word), gender)
        assert once.lower() != word, word
        assert swap_text(once, gender) == _title(word), word


def _title(s: str) -> str:
    # str.title() would give "Ma'Am"; Title case here means the first letter of each word.
    return " ".join(w[:1].upper() + w[1:] for w in s.split(" "))


def _gender_vocab():
    t = load_swaps(["gender"])
    words = sorted(w for w in t.entries if w not in {"his", "him", "her", "hers"} and w not in t.names)
    return words, sorted(t.names)


_WORDS, _NAMES = _gender_vocab()
_FILLER = ["the", "a", "and", "said", "that", "loves", "is", "very", "old", "with", "to", "house", "."]
_case = st.sampled_from([str.lower, _title, str.upper])
_token = st.one_of(
    st.tuples(st.sampled_from(_WORDS), _case).map(lambda p: p[1](p[0])),
    st.tuples(st.sampled_from(_NAMES), st.sampled_from([_title, str.upper])).map(lambda p: p[1](p[0])),
    st.sampled_from(_FILLER),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_token, min_size=1, max_size=12), st.sampled_from([" ", "  ", ", "]))
def test_swap_twice_is_identity(tokens, sep):
    text = sep.join(tokens)
    assert swap_text(swap_text(text, _TABLE), _TABLE) == text


_TABLE = load_swaps(["gender"])


def test_multi_group_rewrite_and_keep_phrases(table):
    assert rewrite("Christians pray in churches", table, {"christian": "muslim"}) == "Muslims pray in mosques"
    assert rewrite("The White House and white people", table, {"white": "black"}) == "The White House and black people"
    assert rewrite("Black-owned", table, {"black": "asian"}) == "Asian-owned"  # a hyphen is a word boundary
    assert rewrite("African-American", table, {"black": "asian"}) == "Asian-American"


def test_counterfactual_variants(table, lexicon):
    vs = counterfactual_variants("He is a Muslim.", lexicon=lexicon, table=table)
    by = {(v["source_group"], v["target_group"]): v["text"] for v in vs}
    assert by[("male", "female")] == "She is a Muslim."
    assert by[("muslim", "jewish")] == "He is a Jewish."
    assert {v["axis"] for v in vs} == {"gender", "religion"}
    assert len([v for v in vs if v["axis"] == "religion"]) == 6
    assert counterfactual_variants("nothing to see", lexicon=lexicon, table=table) == []


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


def test_errors(table, lexicon, tmp_path):
    with pytest.raises(ValueError, match="missing id_col column 'id'"):
        counterfactual_batch(pd.DataFrame({"text": ["he"]}), table=table, lexicon=lexicon, mode="append")
    with pytest.raises(ValueError, match="mode must be one of"):
        counterfactual_batch(pd.DataFrame({"id": ["1"], "text": ["he"]}), table=table, lexicon=lexicon, mode="swap")
    with pytest.raises(ValueError, match="available swap axes: "):
        load_swaps(["politics"])
    (tmp_path / "gender.yaml").write_text("axis: gender\ngroups: [male, female]\nwords:\n  - [he, she, it]\n")
    with pytest.raises(ValueError, match=r"words row 1: expected a list of 2 terms"):
        load_swaps(["gender"], swap_dir=tmp_path)
    (tmp_path / "gender.yaml").write_text("axis: gender\ngroups: [male, female\n")
    with pytest.raises(ValueError, match=r"gender\.yaml: line \d+"):
        load_swaps(["gender"], swap_dir=tmp_path)


def test_swap_groups_are_lexicon_groups(lexicon):
    for axis in available_swap_axes():
        t = load_swaps([axis])
        assert set(t.groups[axis]) <= set(lexicon.groups_of(axis)), axis


def test_prefilter_changes_nothing_but_skips_rows(table, lexicon):
    import dataclasses

    from debias.identity.swaps import _may_match

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
