"""Token attributions and the choice of worst cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.evaluation.explain import IntegratedGradients, _word_index, explain_cases, occlusion, worst_cases


def _fake_predict(texts):
    # 0.1 base, +0.6 for "idiot", +0.2 for "women": occlusion must recover exactly these.
    return np.array([0.1 + 0.6 * ("idiot" in t.split()) + 0.2 * ("women" in t.split()) for t in texts])


def test_occlusion_recovers_additive_word_effects():
    a = occlusion("those women are idiot people", predict_fn=_fake_predict)
    assert a["score"] == pytest.approx(0.9)
    got = dict((w, v) for w, v in a["tokens"])
    assert got == pytest.approx({"those": 0.0, "women": 0.2, "are": 0.0, "idiot": 0.6, "people": 0.0})


def test_occlusion_checks_predict_fn_shape():
    with pytest.raises(ValueError, match="one score per text"):
        occlusion("a b", predict_fn=lambda t: np.zeros(1))


def test_word_index_maps_pieces_to_words():
    text = "unbelievable  stuff!"
    # [CLS] un ##believable stuff ! [SEP]
    offsets = [(0, 0), (0, 2), (2, 12), (14, 19), (19, 20), (0, 0)]
    assert _word_index(text, offsets) == [-1, 0, 0, 1, 1, -1]


def test_integrated_gradients_completeness(tiny_model_dir):
    from debias.training.model import load_classifier

    model, tok = load_classifier(tiny_model_dir)
    ig = IntegratedGradients(model, tok, steps=64)
    text = "those people are unbelievably rude"
    a = ig(text)
    assert [w for w, _ in a["tokens"]] == text.split()
    total = sum(v for _, v in a["tokens"])
    # Sundararajan et al. 2017, completeness: attributions sum to F(x) - F(baseline).
    assert total == pytest.approx(a["score"] - a["baseline_score"], abs=2e-3)
    assert abs(a["delta"]) < 2e-3
    # the score matches an ordinary forward pass
    from debias.evaluation.predict import Predictor
    assert a["score"] == pytest.approx(float(Predictor(tiny_model_dir).predict_texts([text])[0]), abs=1e-5)


def test_worst_cases_pairs_and_group_errors():
    cf = pd.DataFrame({
        "id": ["a", "a~cf", "b", "b~cf"], "text": ["he x", "she x", "he y", "she y"],
        "y_true": [0, 0, 1, 1], "groups": [["male"], ["female"], ["male"], ["female"]],
        "pair_id": ["a", "a", "b", "b"], "is_augmented": [False, True, False, True],
        "y_score": [0.2, 0.7, 0.5, 0.45]})
    test = pd.DataFrame({
        "id": ["p", "q", "r", "s"], "text": ["t1", "t2", "t3", "t4"], "y_true": [0, 1, 0, 1],
        "groups": [["muslim"], ["gay"], [], ["gay"]], "pair_id": None,
        "y_score": [0.8, 0.1, 0.99, 0.9]})
    cases = worst_cases({"cf": cf, "test": test}, k=1)
    assert [c["kind"] for c in cases] == ["counterfactual_gap", "false_negative"]
    assert cases[0]["id"] == "a" and cases[0]["partner_text"] == "she x"
    assert cases[0]["error"] == pytest.approx(0.5)
    # 'r' has the largest error but mentions no group: not a group error
    assert cases[1]["id"] == "q" and cases[1]["error"] == pytest.approx(0.9)
    assert worst_cases({"cf": cf}, k=0) == []

    done = explain_cases(cases, predict_fn=_fake_predict)
    assert "partner_attribution" in done[0] and "partner_attribution" not in done[1]
    assert [w for w, _ in done[0]["attribution"]["tokens"]] == ["he", "x"]


def test_integrated_gradients_explain_the_focus_class(tiny_model_dir):
    from debias.evaluation.predict import Predictor
    from debias.training.model import load_classifier

    model, tok = load_classifier(tiny_model_dir)
    text = "those people are unbelievably rude"
    a = IntegratedGradients(model, tok, steps=64, focus=0)(text)
    assert a["score"] == pytest.approx(float(Predictor(tiny_model_dir, focus=0).predict_texts([text])[0]), abs=1e-5)
    assert sum(v for _, v in a["tokens"]) == pytest.approx(a["score"] - a["baseline_score"], abs=2e-3)
    with pytest.raises(ValueError, match="focus class 5"):
        IntegratedGradients(model, tok, focus=5)(text)
