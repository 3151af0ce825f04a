"""Text pairs (``data.text_pair_col``) stage by stage: cleaning both texts, annotating both sides,
counterfactual swaps on both texts with one mapping, and pair tokenisation with segment ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from debias.config import CleanConfig
from debias.corpus.augment import counterfactual_batch
from debias.corpus.clean import clean_batch, dedup_key
from debias.identity.tools import annotator_for, lexicon_for, swaps_for


def _raw() -> pd.DataFrame:
    return pd.DataFrame({
        "premise": ["The woman fixed the car.", "He is a nurse.", "A fine day.", "x", "Good", None],
        "hypothesis": ["Her brother watched.", None, "   ", "ok", "y" * 50, "z"],
        "label": ["1", "0", "1", "0", "1", "0"],
    })


def test_clean_batch_cleans_both_texts_and_names_the_second_text_s_problems():
    params = CleanConfig(min_chars=2, max_chars=40).model_dump()
    out = clean_batch(_raw(), text_col="premise", label_col="label", label_map={}, params=params,
                      pair_col="hypothesis")
    assert out["text_pair"].tolist()[:1] == ["Her brother watched."]
    # first text's problems come first, then the second text's, then the label's
    assert [None if pd.isna(r) else r for r in out["reject_reason"]] == [
            None, "null_text_pair", "empty_text_pair", "text_too_short", "text_pair_too_long", "null_text"]


def test_dedup_key_covers_both_texts():
    df = pd.DataFrame({"a": ["same text", "same text", "same text b"], "b": ["b one", "b two", ""],
                       "label": ["1", "1", "1"]})
    out = clean_batch(df, text_col="a", label_col="label", label_map={}, params=None, pair_col="b")
    keys = out["dedup_key"].tolist()
    assert keys[0] != keys[1]  # the same first text with another second text is not a duplicate
    assert keys[2] != dedup_key(["same text b"])[0]  # not the key of the first text alone
    # the join cannot be faked by moving a word from one text to the other
    moved = pd.DataFrame({"a": ["same text b"], "b": ["one"], "label": ["1"]})
    other = pd.DataFrame({"a": ["same text"], "b": ["b one"], "label": ["1"]})
    k1 = clean_batch(moved, text_col="a", label_col="label", label_map={}, params=None, pair_col="b")["dedup_key"]
    k2 = clean_batch(other, text_col="a", label_col="label", label_map={}, params=None, pair_col="b")["dedup_key"]
    assert k1.iloc[0] != k2.iloc[0]


def test_annotator_reads_both_sides_and_says_which():
    ann = annotator_for(["gender", "religion"])
    df = pd.DataFrame({"text": ["The woman arrived.", "A quiet day.", "The man prayed."],
                       "text_pair": ["Was she a muslim?", "Who came?", "Did the man pray?"]})
    out = ann(df, pair_col="text_pair")
    single = ann(df[["text"]])
    second = ann(df[["text_pair"]].rename(columns={"text_pair": "text"}))
    for i in range(len(df)):
        a, b = set(single["groups"].iloc[i]), set(second["groups"].iloc[i])
        assert set(out["groups"].iloc[i]) == a | b
        assert set(out["groups_text"].iloc[i]) == a and set(out["groups_pair"].iloc[i]) == b
    assert "muslim" in set(out["groups"].iloc[0]) and out["g_muslim"].iloc[0]
    assert list(out["groups"].iloc[1]) == []


def test_counterfactual_swaps_both_texts_with_one_mapping():
    table = swaps_for(["gender"])
    lex = lexicon_for(["gender"])
    df = pd.DataFrame({"id": ["a", "b", "c"],
                       "text": ["The woman fixed it.", "A quiet day.", "Nothing here."],
                       "text_pair": ["Did she do it?", "Was the man there?", "Nobody came."],
                       "groups": [["female"], ["male"], []]})
    out = counterfactual_batch(df, table=table, lexicon=lex, mode="append", pair_col="text_pair")
    gen = out[out["is_augmented"]].set_index("id")
    assert sorted(gen.index) == ["a~cf", "b~cf"]  # b changes in its second text only; c not at all
    assert gen.loc["a~cf", "text"] == "The man fixed it." and gen.loc["a~cf", "text_pair"] == "Did he do it?"
    assert gen.loc["b~cf", "text"] == "A quiet day." and gen.loc["b~cf", "text_pair"] == "Was the woman there?"
    assert "male" in list(gen.loc["a~cf", "groups"]) and "female" not in list(gen.loc["a~cf", "groups"])
    assert list(gen.loc["b~cf", "groups"]) == ["female"]
    # without pair_col the second text is copied unchanged
    plain = counterfactual_batch(df, table=table, lexicon=lex, mode="append")
    assert plain.loc[plain["id"] == "a~cf", "text_pair"].item() == "Did she do it?"


def test_encode_pairs_and_segment_ids(tiny_model_dir):
    from debias.training.model import collate, encode_pairs, load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    texts, pairs = ["the first text", "alone here", "another first"], ["second one", None, "and its partner text"]
    ids, first = encode_pairs(texts, pairs, tok, max_length=64)
    ref = tok(texts[0], pairs[0])  # the tokenizer's own pair encoding is the oracle
    assert ids[0] == ref["input_ids"] and first[0] == ref["token_type_ids"].index(1)
    assert ids[1] == tok(texts[1])["input_ids"] and first[1] == len(ids[1])
    batch = collate(ids, pad_id=0, token_type_ids=True, first_lengths=first)
    assert batch["token_type_ids"][0, : len(ids[0])].tolist() == ref["token_type_ids"]
    assert batch["token_type_ids"][1].sum().item() == 0
    assert batch["token_type_ids"][0, len(ids[0]):].sum().item() == 0  # padding stays segment 0
    short, cut = encode_pairs(texts, pairs, tok, max_length=8)
    assert all(len(x) <= 8 for x in short) and all(c <= len(x) for c, x in zip(cut, short, strict=True))
    with pytest.raises(ValueError, match="one entry per text"):
        encode_pairs(texts, pairs[:2], tok, max_length=8)


def test_predictor_scores_a_pair_as_the_model_reads_it(tiny_model_dir):
    from debias.evaluation.predict import Predictor
    from debias.training.model import load_classifier

    p = Predictor(tiny_model_dir, batch_size=2, max_length=32)
    texts, pairs = ["the woman arrived", "a man left early", "quiet"], ["who came?", "when?", None]
    got = p.predict_texts(texts, pairs)
    model, tok = load_classifier(tiny_model_dir)
    model.eval()
    with torch.inference_mode():
        for i, (t, q) in enumerate(zip(texts, pairs, strict=True)):
            enc = tok(t, q, return_tensors="pt") if q is not None else tok(t, return_tensors="pt")
            want = torch.softmax(model(**enc).logits, dim=-1)[0, 1].item()
            assert got[i] == pytest.approx(want, abs=1e-5)
    frame = p(pd.DataFrame({"text": texts, "text_pair": pairs}))
    assert np.allclose(frame["y_score"], got)
    assert not np.allclose(p.predict_texts(texts), got)  # the second text changes the input


def test_tokenize_adds_segments_for_pairs_and_partners(tiny_model_dir):
    from debias.training.data import Tokenize, add_partner_text, make_batch, partner_texts

    df = pd.DataFrame({"id": ["a", "a~cf"], "pair_id": ["a", "a"], "is_augmented": [False, True],
                       "text": ["the woman came", "the man came"], "text_pair": ["did she?", "did he?"],
                       "label": [1, 1]})
    with_cf = add_partner_text(df, partners=partner_texts(df),
                               pair_partners=partner_texts(df, text_col="text_pair"))
    assert with_cf["cf_text_pair"].tolist() == ["did he?", "did she?"]
    tok = Tokenize(str(tiny_model_dir), max_length=32)(with_cf)
    ref = tok_ref = Tokenize(str(tiny_model_dir), max_length=32).tokenizer("the woman came", "did she?")
    assert list(tok["input_ids"].iloc[0]) == ref["input_ids"]
    assert tok["n_first"].iloc[0] == tok_ref["token_type_ids"].index(1)
    assert tok["cf_n_first"].iloc[0] == tok["n_first"].iloc[1]
    batch = make_batch(tok, group_cols=[], pad_id=0, counterfactuals=True)
    assert batch.inputs["token_type_ids"][0, : len(ref["input_ids"])].tolist() == ref["token_type_ids"]
    assert batch.cf_inputs["token_type_ids"].sum().item() > 0
