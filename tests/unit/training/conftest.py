"""Shared by the training tests: a small frame in the preprocess schema (two counterfactual pairs,
one lonely pair id) and that frame tokenised with the tiny random BERT's tokenizer."""

from __future__ import annotations

import pandas as pd
import pytest

from debias.training.data import Tokenize, add_partner_text, partner_texts


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "a~cf", "b", "c", "d", "e", "f", "f~cf"],
        "text": ["she is a nurse", "he is a nurse", "i hate everyone here today so much",
                 "what a lovely day", "muslims pray", "ok", "the women went home", "the men went home"],
        "label": [0, 0, 1, 0, 0, 1, 1, 1],
        "g_female": [True, False, False, False, False, False, True, False],
        "g_male": [False, True, False, False, False, False, False, True],
        "g_muslim": [False, False, False, False, True, False, False, False],
        "sample_weight": [1.0, 1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 0.5],
        "pair_id": ["a", "a", None, None, None, "e", "f", "f"],
        "is_augmented": [False, True, False, False, False, False, False, True],
    })


@pytest.fixture
def train_frame() -> pd.DataFrame:
    return frame()


@pytest.fixture(scope="module")
def tokenised(tiny_model_dir) -> pd.DataFrame:
    df = frame()
    df = add_partner_text(df, partners=partner_texts(df))
    return Tokenize(str(tiny_model_dir), max_length=16)(df)
