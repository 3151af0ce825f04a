"""IdentityAnnotator and from_given_columns on small frames with hand-worked answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.identity.annotate import IdentityAnnotator, from_given_columns
from debias.identity.lexicon import AXES, load_lexicon


@pytest.fixture(scope="module")
def ann():
    return IdentityAnnotator(load_lexicon(list(AXES)))


@pytest.mark.parametrize("text, want", [
    ("She will manage the theme", []),                            # "man" in manage, "he" in the
    ("The woman and the MAN", ["female", "male"]),               # case
    ("two Women, three girls", ["female"]),                       # plurals
    ("an African-American   Muslim", ["black", "muslim"]),        # hyphen / spaces in multi-word
    ("Mexican-Americans", ["latino"]),                            # stop phrase keeps nationality off
    ("my mother-in-law", ["female"]),
    ("an old woman", ["elderly", "female"]),                      # overlapping axes both count
    ("the White House said", []),                                 # stop phrase
    ("white people and black people", ["black", "white"]),
    ("he lives in a wheelchair", ["disabled"]),
    ("a blind spot; blinds", []),
    ("trans fats are bad", []),
    ("trans women are women", ["female", "transgender"]),
    ("gay, lesbian and bisexual folks", ["bisexual", "gay", "lesbian"]),
    ("women's rights and woman\u2019s day", ["female"]),
    ("", []),
])
def test_detect_hand_worked(ann, text, want):
    assert ann.detect(text) == want


def test_call_adds_groups_and_every_g_column(ann):
    df = pd.DataFrame({"id": ["a", "b", "c"], "text": ["Muslim women", "nothing here", None]})
    out = ann(df)
    assert out["groups"].tolist() == [["female", "muslim"], [], []]
    gcols = [c for c in out.columns if c.startswith("g_")]
    assert gcols == [f"g_{g}" for g in ann.group_names]
    assert out["g_muslim"].tolist() == [True, False, False] and out["g_female"].dtype == bool
    assert out.loc[:, gcols].to_numpy().sum() == 2
    assert list(out.columns[:2]) == ["id", "text"]


def test_batch_path_equals_single_text_path(ann):
    base = ["The old woman", "Christians and Jews", "manage", "Deaf people in Mexico", None,
            "an asian american man", "LGBTQ+ youth", "white wine", "hindu temple"]
    texts = base * 10  # > 64 rows: the vectorised prefilter path
    batch = ann.detect_groups(texts)
    assert batch == [ann.detect(t) for t in texts]
    assert batch[1] == ["christian", "jewish"]


def test_schema_stable_for_empty_batch(ann):
    out = ann(pd.DataFrame({"text": pd.Series([], dtype=object)}))
    assert len(out) == 0 and "groups" in out and f"g_{ann.group_names[0]}" in out


def test_missing_text_column(ann):
    with pytest.raises(ValueError, match="missing text column 'text'; columns present: comment"):
        ann(pd.DataFrame({"comment": ["x"]}))


def test_from_given_columns_scores_and_bools():
    df = pd.DataFrame({"female": [0.9, 0.2, np.nan], "muslim": [0.5, 0.0, 1.0],
                       "is_gay": [False, True, False]})
    out = from_given_columns(df, columns={"female": "female", "muslim": "muslim", "gay": "is_gay"},
                             threshold=0.5, all_groups=["female", "gay", "male", "muslim"])
    assert out["groups"].tolist() == [["female", "muslim"], ["gay"], ["muslim"]]
    assert out["g_male"].tolist() == [False] * 3
    assert [c for c in out.columns if c.startswith("g_")] == ["g_female", "g_gay", "g_male", "g_muslim"]


def test_from_given_columns_errors():
    df = pd.DataFrame({"female": [0.9], "txt": ["a"]})
    with pytest.raises(ValueError, match="identity columns not found"):
        from_given_columns(df, columns={"male": "male"}, threshold=0.5, all_groups=None)
    with pytest.raises(ValueError, match="not in all_groups"):
        from_given_columns(df, columns={"female": "female"}, threshold=0.5, all_groups=["male"])
    with pytest.raises(TypeError, match="numeric or bool"):
        from_given_columns(df, columns={"female": "txt"}, threshold=0.5, all_groups=None)


def test_arrow_schema_same_with_and_without_mentions(ann):
    import pyarrow as pa

    none = pa.Table.from_pandas(ann(pd.DataFrame({"text": ["nothing", "here"]})), preserve_index=False)
    some = pa.Table.from_pandas(ann(pd.DataFrame({"text": ["Muslim women", "x"]})), preserve_index=False)
    assert none.schema.field("groups").type == pa.list_(pa.string())
    assert none.schema.remove_metadata() == some.schema.remove_metadata()
