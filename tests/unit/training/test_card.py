"""The exported model is a complete Hugging Face model: class names in id2label, the training
length in the tokenizer, a README.md model card, and transformers' own pipeline reads it."""

from __future__ import annotations

import json

import pytest
import yaml

from debias.training.card import evaluation_rows, model_card_markdown
from debias.training.model import export_model, load_classifier

CARD = {"run_name": "demo-run", "base_model": "all-MiniLM-L6-v2", "class_names": ["ok", "abusive"],
        "max_length": 48, "data": {"train": "preprocess/train", "val": "preprocess/val", "train_rows": 100,
                                   "val_rows": 20, "groups": ["female", "muslim"]},
        "losses": [{"name": "cross_entropy", "weight": 1.0}], "epoch": 1, "seed": 0,
        "selection_metric": "val_auc", "validation": {"val_auc": 0.81234},
        "validation_by_group": [{"group": "female", "n": 12, "auc": 0.7}]}


def test_export_is_a_complete_hf_model(tiny_model_dir, tmp_path):
    from transformers import pipeline

    model, tok = load_classifier(tiny_model_dir)
    out = export_model(model, tok, tmp_path / "m", card=CARD)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["id2label"] == {"0": "ok", "1": "abusive"} and cfg["label2id"] == {"ok": 0, "abusive": 1}
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 48
    readme = (out / "README.md").read_text()
    front = yaml.safe_load(readme.split("---")[1])
    assert front["pipeline_tag"] == "text-classification" and front["library_name"] == "transformers"
    assert "## Intended use" in readme and "## Limitations" in readme and "| val_auc | 0.8123 |" in readme
    assert str(tmp_path) not in readme and str(tiny_model_dir) not in readme
    clf = pipeline("text-classification", model=str(out), tokenizer=str(out), device="cpu")
    got = clf(["she is a nurse", "you idiot"])
    assert {g["label"] for g in got} <= {"ok", "abusive"} and all(0 <= g["score"] <= 1 for g in got)


def test_evaluation_rows_and_the_card_section():
    suites = {"test": {"summary": {
        "by_group": [{"kind": "overall", "roc_auc": 0.9, "roc_auc_lo": 0.85, "roc_auc_hi": 0.94},
                     {"kind": "group", "group": "female", "roc_auc": 0.8}],
        "criteria": {"demographic_parity_difference": {"value": 0.12, "ci_low": 0.05, "ci_high": 0.2}},
        "counterfactual": {"flip_rate": 0.03, "flip_rate_ci": [0.01, 0.07]}}},
        "pairs": {"pair_gaps": [{"mean_gap": 0.1}]}}
    rows = evaluation_rows(suites)
    assert rows == [
        {"suite": "test", "metric": "AUC", "value": 0.9, "lo": 0.85, "hi": 0.94},
        {"suite": "test", "metric": "demographic parity difference", "value": 0.12, "lo": 0.05, "hi": 0.2},
        {"suite": "test", "metric": "counterfactual flip rate", "value": 0.03, "lo": 0.01, "hi": 0.07}]
    md = model_card_markdown({**CARD, "evaluation": rows,
                              "decision_rule": {"constraint": "equal_opportunity", "cells": {"female": [0.4]}}})
    assert "| test | AUC | 0.9000 | [0.8500, 0.9400] |" in md
    assert "Per-group thresholds (equal_opportunity)" in md


@pytest.mark.parametrize("names", [["only-one"], ["same", "same"], ["", "x"]])
def test_class_names_must_be_two_distinct_names(names):
    from debias.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="class_names"):
        load_config(base={"data": {"path": "x", "class_names": names}})


def test_a_hand_written_card_may_describe_its_data_in_words():
    """export_model(card=...) with a card a user wrote: `data` as a sentence, no run figures."""
    from debias.training.card import model_card_markdown

    md = model_card_markdown({"base_model": "m", "data": "davidson tweets, a seeded 80%"})
    assert "## Training data\n\ndavidson tweets, a seeded 80%\n" in md
    assert "training and" not in md  # no invented row counts
