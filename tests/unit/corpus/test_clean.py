"""clean_batch / clean_text: one hand-worked example per rule and per reject reason."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from debias.config import CleanConfig
from debias.corpus.clean import check_labels, clean_batch, clean_text, clean_texts

P = CleanConfig().model_dump()


def _reasons(out):
    return [None if pd.isna(r) else r for r in out["reject_reason"]]


def _one(text, label=1, **over):
    df = pd.DataFrame({"comment": pd.Series([text], dtype=object), "y": [label]})
    return clean_batch(df, text_col="comment", label_col="y", label_map={}, params={**P, **over}).iloc[0]


@pytest.mark.parametrize("raw, want", [
    ("ｆｕｌｌ width ﬁsh", "full width fish"),                       # NFKC
    ("Tom &amp; Jerry &lt;3 &#8220;hi&#8221;", "Tom & Jerry <3 \u201chi\u201d"),  # entities
    ("<p>Hello <b>there</b></p><br/>you", "Hello there you"),        # tags
    ("a <script>alert(1)</script> b <!-- c --> d", "a b d"),          # script / comments
    ("i <3 u and a < b > c", "i <3 u and a < b > c"),                 # not tags
    ("zero\u200bwidth\x00null\x07bell", "zerowidthnullbell"),         # control chars
    ("  many \t spaces\n\nand\u2028lines  ", "many spaces and lines"),  # whitespace
    ("see https://t.co/AbC12?x=1 now", "see [URL] now"),
    ("see http://x.org/a/b.", "see [URL]."),                          # trailing full stop kept
    ("go to www.example.com, or google.com/maps", "go to [URL], or [URL]"),
    ("mail bob.smith+x@mail.example.co.uk today", "mail [EMAIL] today"),
    ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
    ("ring +44 20 7946 0958!", "ring [PHONE]!"),
    ("ids 12345678901234 and 2019-2020 stay", "ids 12345678901234 and 2019-2020 stay"),
    ("@jack_1 said hi to @Jill.", "[USER] said hi to [USER]."),
    ("RT @bob: x@y.com", "RT [USER]: [EMAIL]"),
])
def test_clean_text_rules(raw, want):
    assert clean_text(raw) == want


def test_flags_switch_rules_off():
    raw = "Hi @bob <b>x</b> http://a.io"
    assert clean_text(raw, params={**P, "mask_users": False, "strip_html": False, "mask_urls": False}) == raw
    assert clean_text("Hello World @Bob", params={**P, "lowercase": True}) == "hello world [USER]"


def test_clean_is_idempotent_on_examples():
    for raw in ["see https://t.co/x now", "<i>A</i> &amp; B @c 555-123-4567", "a\u2028b  c"]:
        once = clean_text(raw)
        assert clean_text(once) == once


def test_reject_reasons_hand_worked():
    df = pd.DataFrame({
        "comment": ["fine text", None, b"\xff\xfe bad", np.nan, "   <br> ", "ab", "x" * 12, b"ok bytes",
                    3.5, "fine", "fine", "fine"],
        "y": [1, 0, 1, 1, 0, 1, 1, 0, 1, None, "maybe", 2.0],
    })
    out = clean_batch(df, text_col="comment", label_col="y", label_map={}, params={**P, "min_chars": 3, "max_chars": 10})
    assert _reasons(out) == [
        None, "null_text", "undecodable_text", "null_text", "empty_text", "text_too_short",
        "text_too_long", None, None, "null_label", "unknown_label", "unknown_label"]
    assert out["text"].tolist()[7:9] == ["ok bytes", "3.5"]
    assert out["text"][1] == "" and "\ufffd" in out["text"][2]
    assert out["label"].dtype == "Int64"
    assert out["label"].tolist()[:3] == [1, 0, 1] and out["label"].isna().tolist()[9:] == [True, True, True]


def test_keeps_input_columns_and_returns_new_frame():
    df = pd.DataFrame({"id": ["a", "b"], "comment": ["x y", "z"], "y": [0, 1]})
    before = df.copy()
    out = clean_batch(df, text_col="comment", label_col="y", label_map={}, params=P)
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == ["id", "comment", "y", "text", "label", "dedup_key", "reject_reason"]
    assert out["reject_reason"].isna().all()


@pytest.mark.parametrize("raw, want", [
    (1, 1), (0, 0), (1.0, 1), ("0", 0), (" 1 ", 1), ("TRUE", 1), ("false", 0), (True, 1), (False, 0),
])
def test_labels_without_map(raw, want):
    assert _one("text", raw)["label"] == want


def test_label_map_with_floats_and_case():
    df = pd.DataFrame({"t": ["a", "b", "c", "d", "e"], "y": [0.0, 1.0, 2.0, "Hateful", "other"]})
    out = clean_batch(df, text_col="t", label_col="y",
                      label_map={"0": 1, "1": 1, "2": 0, "hateful": 1}, params=P)
    assert out["label"].tolist()[:4] == [1, 1, 0, 1]
    assert _reasons(out) == [None, None, None, None, "unknown_label"]


def test_dedup_key_is_casefolded_whitespace_collapsed_blake2b():
    df = pd.DataFrame({"t": ["Hello  World", "hello world", "HELLO WORLD!", "Straße"], "y": [0, 1, 0, 1]})
    keys = clean_batch(df, text_col="t", label_col="y", label_map={}, params=P)["dedup_key"].tolist()
    assert keys[0] == keys[1] != keys[2]
    assert keys[0] == hashlib.blake2b(b"hello world", digest_size=8).hexdigest()
    assert keys[3] == hashlib.blake2b(b"strasse", digest_size=8).hexdigest()
    assert all(len(k) == 16 for k in keys)


def test_string_dtype_input_and_all_null_batch_keep_schema():
    df = pd.DataFrame({"t": pd.Series(["a b", None], dtype="string"), "y": [1, 1]})
    out = clean_batch(df, text_col="t", label_col="y", label_map={}, params=P)
    assert _reasons(out) == [None, "null_text"]
    empty = clean_batch(pd.DataFrame({"t": [None, None], "y": [None, None]}), text_col="t",
                        label_col="y", label_map={}, params=P)
    assert str(empty["text"].dtype) == str(out["text"].dtype) == "string"
    assert str(empty["reject_reason"].dtype) == "string"


def test_lone_surrogate_is_undecodable():
    out = _one("bad \udcff text")
    assert out["reject_reason"] == "undecodable_text"


def test_missing_column_message_names_columns():
    df = pd.DataFrame({"comment": ["x"], "label": [1]})
    with pytest.raises(ValueError, match="missing text_col column 'text'; columns present: comment, label"):
        clean_batch(df, text_col="text", label_col="label", label_map={}, params=P)


def test_bad_params_and_label_map():
    df = pd.DataFrame({"t": ["x"], "y": [1]})
    with pytest.raises(ValueError):
        clean_batch(df, text_col="t", label_col="y", label_map={}, params={"max_charz": 3})
    with pytest.raises(ValueError, match="class ids 0..1"):
        clean_batch(df, text_col="t", label_col="y", label_map={"a": 2}, params=P)
    with pytest.raises(ValueError, match="class ids 0..2"):
        clean_batch(df, text_col="t", label_col="y", label_map={"a": 3}, params=P, class_names=["a", "b", "c"])
    with pytest.raises(TypeError):
        clean_text(None)


def test_clean_texts_matches_clean_batch():
    raws = ["A &amp; <b>B</b>", "call 555-123-4567", "@u hi"]
    df = pd.DataFrame({"t": raws, "y": [0, 1, 0]})
    assert clean_texts(raws) == clean_batch(df, text_col="t", label_col="y", label_map={}, params=P)["text"].tolist()


def test_chunked_arrow_backed_strings_are_cleaned_like_one_array():
    import pyarrow as pa

    chunked = pa.chunked_array([["a &amp; b", "x"], ["<i>y</i> &lt;3", None]])
    series = pd.Series(pd.arrays.ArrowExtensionArray(chunked))
    out = clean_batch(pd.DataFrame({"t": series, "y": ["1", "0", "1", "0"]}), text_col="t", label_col="y",
                      label_map={}, params=CleanConfig().model_dump())
    assert out["text"].tolist()[:3] == ["a & b", "x", "y <3"]
    assert out["reject_reason"].tolist()[3] == "null_text"


def test_k_class_labels_by_id_name_or_map():
    names = ["hate", "offensive", "neither"]
    df = pd.DataFrame({"t": ["a b c"] * 7, "y": ["0", 2, "Hate", "neither", "3", None, 1.0]})
    out = clean_batch(df, text_col="t", label_col="y", label_map={}, params=P, class_names=names)
    assert out["label"].tolist() == [0, 2, 0, 2, pd.NA, pd.NA, 1]
    assert out["reject_reason"].tolist() == [pd.NA, pd.NA, pd.NA, pd.NA, "unknown_label", "null_label", pd.NA]
    mapped = clean_batch(df.iloc[:4], text_col="t", label_col="y", params=P, class_names=names,
                         label_map={"0": 2, "2": 1, "hate": 0, "neither": 1})
    assert mapped["label"].tolist() == [2, 1, 0, 1]


def test_score_labels_threshold_and_keep_the_score():
    df = pd.DataFrame({"t": ["a b c"] * 6, "y": [0.2, "0.5", 0.9, None, "n/a", float("inf")]})
    out = clean_batch(df, text_col="t", label_col="y", label_map={}, params=P, label_threshold=0.5)
    assert out["label"].tolist() == [0, 1, 1, pd.NA, pd.NA, pd.NA]
    assert out["reject_reason"].tolist() == [pd.NA, pd.NA, pd.NA, "null_label", "unknown_label", "unknown_label"]
    assert out["label_score"].tolist()[:3] == [0.2, 0.5, 0.9] and out["label_score"].iloc[3:].isna().all()


def test_check_labels_names_the_values_found():
    names = ["hate", "offensive", "neither"]
    assert check_labels(pd.Series(["hate", "neither", "hate", "x"]), label_map={}, class_names=names) == {0: 2, 2: 1}
    with pytest.raises(ValueError, match=r"3 of the first 3 .*'toxic' \(2\), 'ok' \(1\)"):
        check_labels(pd.Series(["toxic", "ok", "toxic", None]), label_map={}, class_names=names)
    with pytest.raises(ValueError, match="label_threshold"):
        check_labels(pd.Series(["high", "low"]), label_map={}, label_threshold=0.5)
