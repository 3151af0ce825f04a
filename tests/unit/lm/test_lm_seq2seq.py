"""The seq2seq translator on a tiny random T5 built from a config (no downloads)."""

from __future__ import annotations

import pandas as pd
import pytest

from debias.lm.seq2seq import Seq2SeqTranslator, resolve_seq2seq_dir

TEXTS = ["The nurse thanked the doctor because he was kind.", "Hi.", "The developer argued with the designer."]


def test_translations_match_generate_in_input_order(tiny_t5_dir):
    import torch

    tr = Seq2SeqTranslator(str(tiny_t5_dir), prefix="translate English to German: ", batch_size=2, max_new_tokens=6)
    out = tr(pd.DataFrame({"id": ["a", "b", "c"], "text": TEXTS}))
    assert out["id"].tolist() == ["a", "b", "c"] and (out["n_generated"] <= 6).all()
    # oracle: each sentence alone through model.generate, unbatched and unsorted
    tok, model = tr.tokenizer, tr.model
    for text, got in zip(TEXTS, out["completion"], strict=True):
        enc = tok(["translate English to German: " + text], return_tensors="pt", return_token_type_ids=False)
        with torch.inference_mode():
            ids = model.generate(**enc, max_new_tokens=6, do_sample=False)[0].tolist()[1:]
        stop = next((j for j, t in enumerate(ids) if t in (tok.pad_token_id, tok.eos_token_id)), len(ids))
        assert got == tok.decode(ids[:stop], skip_special_tokens=True).strip()
    assert tr(pd.DataFrame({"text": TEXTS})).equals(tr(pd.DataFrame({"text": TEXTS})))  # greedy: deterministic


def test_inputs_are_checked(tiny_t5_dir, tiny_llama_dir, tmp_path):
    with pytest.raises(ValueError, match="missing column 'text'"):
        Seq2SeqTranslator(str(tiny_t5_dir))(pd.DataFrame({"prompt": ["x"]}))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pair = (AutoModelForCausalLM.from_pretrained(tiny_llama_dir), AutoTokenizer.from_pretrained(tiny_llama_dir))
    with pytest.raises(ValueError, match="encoder-decoder"):
        Seq2SeqTranslator(pair)
    assert resolve_seq2seq_dir(str(tiny_t5_dir.parent / "{lang}"), lang="model") == tiny_t5_dir
    with pytest.raises(FileNotFoundError, match="for 'de'"):
        resolve_seq2seq_dir(str(tmp_path / "opus-mt-en-{lang}"), lang="de")
