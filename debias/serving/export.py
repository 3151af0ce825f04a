"""Optimised copies of a model directory for fast CPU inference, loadable like any model.

``export_optimized(src, out, method=...)`` writes a model directory that
:func:`debias.training.model.load_classifier` (and so
:class:`debias.evaluation.predict.Predictor`, the evaluate
job and the Serve app) loads like any other. The directory always keeps the source's fp32
safetensors, config and tokenizer (so ``_check_model_dir`` accepts it, integrated gradients
still have a differentiable model, and the export can be audited against its source), plus
``model_card.json`` with an ``optimized`` entry that tells the loader what to apply:

* ``int8``: torch dynamic int8 quantisation of every ``nn.Linear``
  (``torch.ao.quantization.quantize_dynamic``) applied at load time to the fp32 weights, so
  nothing pickled is ever written or read;
* ``onnx``: ``model.onnx`` exported with ``torch.onnx`` (opset 17, dynamic batch and length),
  run by an ONNX Runtime session with all its graph optimisations (``ORT_ENABLE_ALL``);
* ``onnx-int8``: that graph with ONNX Runtime's dynamic int8 weight quantisation
  (``onnxruntime.quantization.quantize_dynamic``, QInt8 weights, uint8 activations quantised
  per batch).

The card records provenance: the source directory, the SHA-256 of its weights, the method,
and the versions of torch / transformers / onnx / onnxruntime that made it. Which method wins
is a measurement (``bench/export.py``, docs/BENCHMARKS.md); a faster model is only shipped
with a fairness parity check against its source (:mod:`debias.evaluation.parity`, run by
``debias export``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch

Method = Literal["int8", "onnx", "onnx-int8"]
METHODS: tuple[str, ...] = ("int8", "onnx", "onnx-int8")
CARD_KEY = "optimized"
ONNX_FILE = "model.onnx"
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

__all__ = ["CARD_KEY", "METHODS", "OnnxClassifier", "export_optimized", "load_optimized", "require_onnx",
           "optimized_spec", "weights_sha256", "write_card"]


def weights_sha256(model_dir: str | os.PathLike) -> str:
    """SHA-256 (hex) over the directory's ``*.safetensors`` files, in name order."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ValueError(f"model dir {model_dir} has no *.safetensors to hash")
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def optimized_spec(card: dict[str, Any]) -> dict[str, Any] | None:
    """The card's ``optimized`` entry, checked; None for a plain model."""
    spec = card.get(CARD_KEY)
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("method") not in METHODS:
        raise ValueError(f"model card entry {CARD_KEY!r} must name a method in {list(METHODS)}; "
                         f"found {spec!r}")
    return spec


def _versions() -> dict[str, str | None]:
    import transformers

    out: dict[str, str | None] = {"torch": torch.__version__, "transformers": transformers.__version__}
    for name in ("onnx", "onnxruntime"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def require_onnx() -> None:
    missing = [n for n in ("onnx", "onnxruntime") if importlib.util.find_spec(n) is None]
    if missing:
        raise ImportError(f"--optimize onnx / onnx-int8 needs {' and '.join(missing)}: "
                          "pip install 'debias[onnx]' (onnx, onnxruntime)")


def _quantize_torch(model: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it moves to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _export_onnx(model: torch.nn.Module, path: Path, *, token_type_ids: bool, opset: int) -> None:
    names = list(_ONNX_INPUTS if token_type_ids else _ONNX_INPUTS[:2])
    # Two rows of different lengths: the traced graph must handle padding, not a constant mask.
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    args = (ids, mask, torch.zeros_like(ids))[: len(names)]
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # dynamo=False: the TorchScript exporter needs no onnxscript and handles HF encoders.
        torch.onnx.export(model, args, str(path), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)


def _quantize_onnx(path: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".fp32.onnx")
    path.rename(tmp)
    try:
        # The fused ops (com.microsoft domain) defeat shape inference: name the float default.
        quantize_dynamic(str(tmp), str(path), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        tmp.unlink(missing_ok=True)


def export_optimized(src: str | os.PathLike, out: str | os.PathLike, *, method: Method,
                     opset: int = 17, overwrite: bool = False) -> Path:
    """Write an optimised copy of the model directory ``src`` to ``out``.

    Parameters
    ----------
    src : a local model directory (``load_classifier`` format); not itself an optimised export.
    out : the new directory; must not exist unless ``overwrite``.
    method : ``"int8"``, ``"onnx"`` or ``"onnx-int8"`` (see the module docstring).
    opset : ONNX opset for the ONNX methods.

    Returns
    -------
    ``out`` as a Path. Its ``model_card.json`` holds the source's card plus ``optimized``
    (method, runtime, file, source_dir, source_sha256, versions, created_at) and a ``version``
    that names the source weights and the method.
    """
    from debias.training.model import (
        check_model_dir,
        export_model,
        load_classifier,
        read_model_card,
        wants_token_type_ids,
    )

    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; found {method!r}")
    src_path = check_model_dir(src)
    src_card = read_model_card(src_path)
    if optimized_spec(src_card) is not None:
        raise ValueError(f"{src_path} is already an optimised export ({src_card[CARD_KEY]['method']}); "
                         f"export from its source, {src_card[CARD_KEY].get('source_dir')}")
    out_path = Path(out)
    if out_path.exists() and any(out_path.iterdir()):
        if not overwrite:
            raise ValueError(f"output dir {out_path} exists and is not empty; pick a new folder")
        shutil.rmtree(out_path)
    if method.startswith("onnx"):
        require_onnx()
    t0 = time.perf_counter()
    model, tok = load_classifier(src_path, optimized=False)
    model.eval()
    sha = weights_sha256(src_path)
    spec: dict[str, Any] = {
        "method": method,
        "runtime": "torch" if method == "int8" else "onnxruntime",
        "file": None if method == "int8" else ONNX_FILE,
        "source_dir": str(src_path.resolve()),
        "source_sha256": sha,
        "source_version": src_card.get("version"),
        "versions": _versions(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    card = {**src_card, "version": f"sha256:{sha[:12]}+{method}", CARD_KEY: spec}
    export_model(model, tok, out_path, card=card)  # fp32 safetensors + tokenizer + card
    if method.startswith("onnx"):
        onnx_path = out_path / ONNX_FILE
        _export_onnx(model, onnx_path, token_type_ids=wants_token_type_ids(tok), opset=opset)
        # No onnxruntime.transformers fusion: on this MiniLM export it fused no attention and
        # moved scores by up to 0.02 (the raw graph matches torch to 1e-7); the session's
        # ORT_ENABLE_ALL graph optimisations run at load time instead.
        if method == "onnx-int8":
            _quantize_onnx(onnx_path)
        spec["onnx_sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    spec["export_seconds"] = round(time.perf_counter() - t0, 2)
    write_card(out_path, card)
    return out_path


def write_card(model_dir: str | os.PathLike, card: dict[str, Any]) -> None:
    from debias.runs import json_default
    from debias.training.model import MODEL_CARD

    (Path(model_dir) / MODEL_CARD).write_text(json.dumps(card, indent=2, default=json_default),
                                              encoding="utf-8")


class OnnxClassifier:
    """An ONNX Runtime session behind the call signature Predictor uses for a HF model.

    ``model(input_ids=..., attention_mask=..., token_type_ids=...)`` returns an object with
    ``.logits`` (a float32 CPU tensor), so code written for a transformers model runs unchanged.
    Intra-op threads follow ``torch.get_num_threads()`` at load time (Predictor and the Serve
    replica set it first), one inter-op thread, sequential execution.
    """

    def __init__(self, path: str | os.PathLike, *, config: Any = None, device: str = "cpu",
                 num_threads: int | None = None) -> None:
        require_onnx()
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(num_threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("device 'cuda' for an ONNX export needs onnxruntime-gpu; found "
                                 f"providers {ort.get_available_providers()}")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.training = False

    def eval(self) -> OnnxClassifier:
        return self

    def to(self, device: Any) -> OnnxClassifier:  # the session's providers are fixed at load
        return self

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        feed = {}
        for name in self.input_names:
            if name not in batch:
                raise ValueError(f"ONNX model needs input {name!r}; found {sorted(batch)}")
            feed[name] = batch[name].detach().cpu().numpy().astype(np.int64, copy=False)
        (logits,) = self.session.run(["logits"], feed)
        return SimpleNamespace(logits=torch.from_numpy(logits))


def load_optimized(model_dir: str | os.PathLike, spec: dict[str, Any], *, num_labels: int | None = None,
                   device: str = "cpu") -> Any:
    """The model an ``optimized`` card entry describes (the tokenizer is loaded by the caller)."""
    from debias.training.model import load_classifier

    method = spec["method"]
    if method == "int8":
        if torch.device(device).type != "cpu":
            raise ValueError(f"an int8 export runs on the CPU only; found device {device!r} "
                             "(load its fp32 source for GPU inference)")
        model, _ = load_classifier(model_dir, num_labels=num_labels, optimized=False)
        return _quantize_torch(model.eval())
    from transformers import AutoConfig

    path = Path(model_dir) / (spec.get("file") or ONNX_FILE)
    if not path.is_file():
        raise ValueError(f"model card says {method} but {path} is missing")
    return OnnxClassifier(path, config=AutoConfig.from_pretrained(str(model_dir), local_files_only=True),
                          device=device)
