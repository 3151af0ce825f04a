"""debias.training.model: safetensors-only loading, freezing, export round trip, collation."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from debias.training.model import (
    collate,
    default_model_dir,
    encode,
    export_model,
    freeze,
    load_classifier,
    load_tokenizer,
    read_model_card,
)


def test_default_model_dir_is_a_local_hf_dir():
    from pathlib import Path

    d = Path(default_model_dir())
    assert (d / "config.json").is_file() and (d / "model.safetensors").is_file()


def test_load_classifier_has_two_label_head(tiny_model_dir):
    model, tok = load_classifier(tiny_model_dir)
    batch = collate(encode(["hello world", "a"], tok, max_length=16), pad_id=tok.pad_token_id)
    out = model(**batch).logits
    assert out.shape == (2, 2)


def test_pickled_only_dir_is_refused(tiny_model_dir, tmp_path):
    d = tmp_path / "bin-only"
    shutil.copytree(tiny_model_dir, d)
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match="safetensors"):
        load_classifier(d)


def test_missing_dir_and_config_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="existing local folder"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(ValueError, match="config.json"):
        load_classifier(tmp_path)


def test_freeze_embeddings_and_lower_layers(tiny_model_dir):
    model, _ = load_classifier(tiny_model_dir)
    counts = freeze(model, embeddings=True, layers=1)
    assert not any(p.requires_grad for p in model.bert.embeddings.parameters())
    assert not any(p.requires_grad for p in model.bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in model.bert.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    assert counts["trainable"] + counts["frozen"] == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="has 2"):
        freeze(model, embeddings=False, layers=3)


def test_export_round_trip_same_logits_and_card(tiny_model_dir, tmp_path):
    model, tok = load_classifier(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        model.classifier.weight.normal_()  # make the head differ from a fresh init
    out = export_model(model, tok, tmp_path / "exported", card={"losses": ["cross_entropy"], "x": 1.5})
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "model_card.json"} <= names
    assert not any(n.endswith(".bin") for n in names)
    assert read_model_card(out) == {"losses": ["cross_entropy"], "x": 1.5}
    assert read_model_card(tiny_model_dir) == {}
    again, tok2 = load_classifier(out)
    batch = collate(encode(["some words here"], tok2, max_length=16), pad_id=tok2.pad_token_id)
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, again(**batch).logits)
    json.loads((out / "config.json").read_text())


def test_collate_pads_to_longest_and_masks():
    b = collate([[5, 6, 7], [8]], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["token_type_ids"].sum() == 0
    assert collate([[1]], pad_id=0, pad_to=4)["input_ids"].shape == (1, 4)
    with pytest.raises(ValueError, match="empty batch"):
        collate([], pad_id=0)


def test_encode_truncates_and_rejects_non_strings(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    ids = encode(["word " * 50, "hi"], tok, max_length=8)
    assert len(ids[0]) == 8 and len(ids[1]) < 8
    with pytest.raises(TypeError, match="position 1"):
        encode(["ok", None], tok, max_length=8)
