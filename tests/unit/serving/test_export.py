"""debias.serving.export round trip on a tiny random BERT: exported dirs load through Predictor."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from debias.evaluation.predict import Predictor
from debias.serving.export import export_optimized, weights_sha256

TEXTS = ["you are great", "go away you idiot", "the weather is nice today in the city", "x",
         "women and men are welcome here", "what a terrible, terrible idea that was"]
ONNX = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
NO_ONNX = "onnx/onnxruntime not installed (the optional extra: pip install 'debias[onnx]')"


@pytest.mark.parametrize("method", [
    "int8",
    pytest.param("onnx", marks=pytest.mark.skipif(not ONNX, reason=NO_ONNX)),
    pytest.param("onnx-int8", marks=pytest.mark.skipif(not ONNX, reason=NO_ONNX)),
])
def test_export_round_trip(tiny_model_dir, tmp_path, method):
    out = export_optimized(tiny_model_dir, tmp_path / method, method=method)
    card = json.loads((out / "model_card.json").read_text())
    spec = card["optimized"]
    assert spec["method"] == method and spec["source_sha256"] == weights_sha256(tiny_model_dir)
    assert spec["versions"]["torch"] and card["version"].endswith("+" + method)
    src = Predictor(tiny_model_dir, batch_size=4).predict_texts(TEXTS)
    p = Predictor(out, batch_size=4)
    got = p.predict_texts(TEXTS)
    assert type(p.model).__name__ == ("OnnxClassifier" if method.startswith("onnx") else
                                      "BertForSequenceClassification")
    tol = 1e-5 if method == "onnx" else 0.05
    np.testing.assert_allclose(got, src, atol=tol)
    if method == "int8":
        assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in p.model.modules())


def test_export_refuses_bad_input(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        export_optimized(tiny_model_dir, tmp_path / "a", method="fp8")
    out = export_optimized(tiny_model_dir, tmp_path / "b", method="int8")
    with pytest.raises(ValueError, match="already an optimised export"):
        export_optimized(out, tmp_path / "c", method="int8")
    with pytest.raises(ValueError, match="exists and is not empty"):
        export_optimized(tiny_model_dir, out, method="int8")


def test_fp32_weights_still_load_for_gradients(tiny_model_dir, tmp_path):
    from debias.training.model import load_classifier

    out = export_optimized(tiny_model_dir, tmp_path / "q", method="int8")
    model, _ = load_classifier(out, optimized=False)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())


@pytest.mark.skipif(ONNX, reason="onnx and onnxruntime are installed: the missing-extra error cannot occur")
def test_onnx_without_the_extra_names_it(tiny_model_dir, tmp_path):
    with pytest.raises(ImportError, match=r"debias\[onnx\]"):
        export_optimized(tiny_model_dir, tmp_path / "o", method="onnx")
    assert not (tmp_path / "o").exists()  # refused before anything is written
