"""SHAP word attributions (the shap package over the model's tokenizer) and method agreement."""

from __future__ import annotations

import numpy as np
import pytest

from debias.evaluation.explain_shap import _to_words, method_agreement, shap_attributions, top_words

pytest.importorskip("shap", reason="shap is the optional 'explain' extra (make install puts it in)")


def test_shap_values_add_up_and_follow_a_known_additive_model(tiny_model_dir):
    from debias.training.model import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    weights = {"awful": 0.5, "rude": 0.3, "lovely": -0.4}

    def predict(texts):  # an additive model of word presence: Shapley values are the weights
        # (substrings: the masker writes "[MASK]rude" for a masked word before "rude")
        return np.array([0.2 + sum(w for word, w in weights.items() if word in t) for t in texts])

    a = shap_attributions("you are awful and rude not lovely", predict_fn=predict, tokenizer=tok, max_evals=500)
    got = dict(a["tokens"])
    assert a["method"] == "shap" and a["score"] == pytest.approx(predict(["you are awful and rude not lovely"])[0])
    for word, w in weights.items():
        assert got[word] == pytest.approx(w, abs=1e-6)
    for word in ("you", "are", "and", "not"):
        assert got[word] == pytest.approx(0.0, abs=1e-6)
    assert abs(a["delta"]) < 1e-6  # efficiency: the values sum to score - baseline
    assert top_words(a, 2) == ["awful", "lovely"]


def test_shap_on_a_real_model_is_efficient(tiny_model_dir):
    from debias.evaluation.predict import Predictor

    p = Predictor(tiny_model_dir)
    a = shap_attributions("those people are unbelievably rude", predict_fn=p.predict_texts,
                          tokenizer=p.tokenizer, max_evals=100)
    assert [w for w, _ in a["tokens"]] == ["those", "people", "are", "unbelievably", "rude"]
    total = sum(v for _, v in a["tokens"])
    assert total - (a["score"] - a["baseline_score"]) == pytest.approx(a["delta"], abs=1e-12)


def test_word_pieces_are_summed_into_their_word():
    out = _to_words("unbelievably rude, ok", ["", "un", "bel", "ie", "va", "bly ", "rude", ", ", "ok", ""],
                    np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0], dtype=float))
    assert out == [["unbelievably", 15.0], ["rude,", 13.0], ["ok", 8.0]]


def test_method_agreement_counts_top_words():
    def case(i, *vals):
        return {"id": i, "attribution": {"tokens": [[w, v] for w, v in zip("abc", vals, strict=True)]}}

    a = [case("x", 0.9, 0.1, 0.0), case("y", 0.1, 0.8, -0.5)]
    b = [case("x", 0.5, -0.2, 0.1), case("y", 0.1, 0.2, -0.9)]
    out = method_agreement(a, b, names=("shap", "integrated_gradients"), k=2)
    assert out["n_cases"] == 2 and out["top1_agreement"] == 0.5 and out["disagree_ids"] == ["y"]
    # x: {a, b} vs {a, b} -> 1; y: {b, c} vs {c, b} -> 1
    assert out["top_k_overlap"] == 1.0
    with pytest.raises(ValueError, match="different numbers of cases"):
        method_agreement(a, b[:1], names=("a", "b"))
