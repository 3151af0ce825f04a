"""Counterfactual data augmentation (CDA) fine-tuning of a causal LM: the corpus, batches, loss, step.

The corpus is a list of texts (the demo corpus or a user's file). Each text that mentions a
swappable identity term gets a counterfactual copy with the project's swap lists
(:func:`debias.corpus.augment.counterfactual_batch`, append mode: "two-sided" CDA, the original
and its rewrite both trained on; Lu et al. 2019, Webster et al. 2020, as in bias-bench's CDA for
GPT-2, Meade et al. 2022), and the model is trained on both with its ordinary next-token loss.
A seeded share of the *source* texts is held out, with their counterfactuals, so the loss can
be measured on texts the run never saw as well as on ones it trained on.

Everything here is plain pandas / torch, one batch at a time; ``jobs/finetune_lm.py`` runs it
on Ray Train. Token sequences are ``[start] + text + [eos]`` where ``start`` is BOS (EOS where
the tokenizer has none), the convention of :class:`debias.lm.scorer.LMScorer`, so the loss of a
text here is the audit's log-likelihood of the same text (plus its end token).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["read_corpus", "prepare_texts", "augment_texts", "Tokenize", "collate", "lm_loss", "mean_loss",
           "lm_train_step"]

_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".json", ".parquet")


def _read_file(path: Path, text_col: str) -> pd.Series:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        return pd.Series([x for x in lines if x.strip()], dtype=object)
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as fh:
            df = pd.DataFrame([json.loads(line) for line in fh if line.strip()])
    else:
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    if text_col not in df.columns:
        raise ValueError(f"{path}: missing text column {text_col!r} (finetune_lm.text_col); "
                         f"columns present: {', '.join(map(str, df.columns))}")
    return df[text_col]


def read_corpus(spec: str, *, text_col: str = "text", seed: int = 0) -> pd.DataFrame:
    """``id, text`` rows from ``"demo:N"`` or a file / folder of files (see ``FinetuneLMConfig.corpus``).

    A folder is read file by file in name order (files of other types are skipped); ids are
    ``<file stem>/<row>``, so they do not depend on the order of reading.
    """
    if spec.startswith("demo:"):
        from debias.corpus.demo import generate_demo_corpus

        n = spec.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"corpus 'demo:N' needs a row count N >= 1; found {spec!r}")
        demo = generate_demo_corpus(int(n), seed=seed)
        return pd.DataFrame({"id": [f"demo/{i}" for i in range(len(demo))], "text": demo["text"].to_numpy()})
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
        if not files:
            raise ValueError(f"corpus folder {path} holds no {', '.join(_SUFFIXES)} files")
    elif path.is_file():
        if path.suffix.lower() not in _SUFFIXES:
            raise ValueError(f"corpus file must end in one of {', '.join(_SUFFIXES)}; found {path.name!r}")
        files = [path]
    else:
        raise ValueError(f"corpus must be 'demo:N' or an existing file or folder; found {spec!r}")
    parts = []
    for f in files:
        texts = _read_file(f, text_col)
        parts.append(pd.DataFrame({"id": [f"{f.stem}/{i}" for i in range(len(texts))], "text": texts.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def prepare_texts(df: pd.DataFrame, *, max_texts: int | None = None, heldout_fraction: float = 0.1,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Clean, drop empty and duplicate texts, sample, and hold out a share of them.

    Returns ``(train, heldout, counts)``; ``counts`` accounts for every row read:
    ``read = empty + duplicate + unsampled + train + heldout``.
    """
    from debias.corpus.clean import clean_texts, dedup_key

    for col in ("id", "text"):
        if col not in df.columns:
            raise ValueError(f"missing column {col!r}; columns present: {', '.join(map(str, df.columns))}")
    texts = clean_texts([t if isinstance(t, str) else "" for t in df["text"]])
    d = pd.DataFrame({"id": df["id"].astype(str).to_numpy(), "text": texts})
    empty = d["text"].str.strip().eq("")
    d = d[~empty]
    dup = pd.Series(dedup_key(d["text"].tolist()), index=d.index).duplicated()
    d = d[~dup.to_numpy()]
    kept = len(d)
    rng = np.random.default_rng(seed)
    if max_texts is not None and len(d) > max_texts:
        d = d.iloc[np.sort(rng.choice(len(d), size=max_texts, replace=False))]
    n_held = int(round(heldout_fraction * len(d)))
    if heldout_fraction > 0 and len(d) > 1:
        n_held = min(max(n_held, 1), len(d) - 1)
    held = np.zeros(len(d), dtype=bool)
    held[rng.choice(len(d), size=n_held, replace=False)] = True
    train, heldout = d[~held].reset_index(drop=True), d[held].reset_index(drop=True)
    counts = {"read": len(df), "empty": int(empty.sum()), "duplicate": int(dup.sum()),
              "unsampled": kept - len(d), "train": len(train), "heldout": len(heldout)}
    return train, heldout, counts


def augment_texts(df: pd.DataFrame, *, table: Any, mode: Literal["append", "none"] = "append",
                  seed: int = 0) -> pd.DataFrame:
    """``df`` plus one ``<id>~cf`` row per text the swap table changes (``is_augmented`` True)."""
    from debias.corpus.augment import counterfactual_batch

    if mode not in ("append", "none"):
        raise ValueError(f"augment must be 'append' or 'none'; found {mode!r}")
    out = counterfactual_batch(df, table=table, lexicon=None, mode=mode, seed=seed, reannotate=False)
    return out[["id", "text", "is_augmented", "pair_id"]].reset_index(drop=True)


class Tokenize:
    """Callable: ``batch[text] -> batch + [input_ids, n_tokens]`` (``[start] + text + [eos]``, cut to
    ``max_length`` keeping the start). Holds the tokenizer; a Ray Data ``map_batches`` class."""

    def __init__(self, model_dir: str, *, max_length: int = 128) -> None:
        from transformers import AutoTokenizer

        if max_length < 3:
            raise ValueError(f"max_length must be >= 3; found {max_length}")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if start is None or tok.eos_token_id is None:
            raise ValueError(f"the tokenizer of {model_dir} needs an EOS token (and a BOS, or EOS as start)")
        self.start_id, self.eos_id, self.max_length = int(start), int(tok.eos_token_id), max_length

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        ids = self.tokenizer(list(texts), add_special_tokens=False).input_ids
        return [[self.start_id, *t[:self.max_length - 2], self.eos_id] for t in ids]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if "text" not in batch.columns:
            raise ValueError(f"Tokenize: missing column 'text'; columns present: {list(batch.columns)}")
        out = batch.reset_index(drop=True).copy()
        ids = self.encode(out["text"].fillna("").tolist())
        out["input_ids"] = ids
        out["n_tokens"] = [len(x) for x in ids]
        return out


def collate(sequences: Sequence[Sequence[int]], *, pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding: no loss)."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for r, s in enumerate(sequences):
        ids[r, :len(s)], mask[r, :len(s)] = torch.as_tensor(list(s), dtype=torch.long), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def lm_loss(model: Any, batch: dict[str, Any], *, reduction: Literal["mean", "sum"] = "mean") -> Any:
    """Next-token cross-entropy over the batch's non-padding targets (token 0 is never a target)."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    target = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                             target.reshape(-1), ignore_index=-100, reduction=reduction)


def mean_loss(model: Any, sequences: Sequence[Sequence[int]], *, pad_id: int, batch_size: int = 16,
              device: Any = "cpu") -> float:
    """Token-weighted mean next-token loss of ``sequences`` (eval mode, no gradients)."""
    import torch

    if not sequences:
        return float("nan")
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(sequences), batch_size):
            b = {k: v.to(device) for k, v in collate(sequences[i:i + batch_size], pad_id=pad_id).items()}
            total += float(lm_loss(model, b, reduction="sum"))
            n += int((b["labels"][:, 1:] != -100).sum())
    model.train(was_training)
    return total / max(n, 1)


def lm_train_step(model: Any, batch: dict[str, Any], optimizer: Any, scheduler: Any = None, *,
                  device: Any = "cpu", grad_clip: float | None = 1.0) -> float:
    """One optimisation step on the causal-LM loss; returns the batch's mean token loss.

    On CUDA the forward pass runs under bf16 autocast (the loss in fp32), as in
    :func:`debias.training.step.train_step`.
    """
    import torch

    device = torch.device(device)
    model.train()
    b = {k: v.to(device) for k, v in batch.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss = lm_loss(model, b)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return float(loss.detach())
