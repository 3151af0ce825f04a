"""A local Hugging Face sequence-to-sequence translator (Marian, T5, NLLB-style folders) as a callable.

:class:`Seq2SeqTranslator` maps a batch with a ``text`` column to ``completion`` (the
translation) and ``n_generated``, like :class:`debias.lm.scorer.LMGenerator` does for prompts,
so ``ds.map_batches`` runs it the same way. Marian models are one per language pair (point
``audit_lm.translation.seq2seq_model`` at ``.../opus-mt-en-{lang}``); T5-style models take a
task prefix (``"translate English to {language}: "``). Greedy by default, so deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Seq2SeqTranslator", "resolve_seq2seq_dir"]


def resolve_seq2seq_dir(template: str, *, lang: str) -> Path:
    """The model folder for one language: ``template`` with ``{lang}`` replaced; must hold config.json."""
    p = Path(template.replace("{lang}", lang)).expanduser()
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"seq2seq model for {lang!r} must be a folder with config.json (a Hugging Face "
                                f"encoder-decoder); found {str(p)!r}")
    return p


class Seq2SeqTranslator:
    """Callable: ``batch[text] -> batch + [completion, n_generated]``.

    Parameters
    ----------
    model : a local seq2seq folder, or a ``(model, tokenizer)`` pair.
    prefix : put before every source text (T5's task prefix); empty for Marian.
    batch_size : sentences per ``generate`` call (after sorting by length).
    max_new_tokens, num_beams : generation length and beam width (1: greedy).
    """

    def __init__(self, model: Any, *, prefix: str = "", batch_size: int = 8, max_new_tokens: int = 64,
                 num_beams: int = 1, max_source_tokens: int = 256, torch_threads: int | None = None,
                 dtype: str = "float32") -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if torch_threads:
            torch.set_num_threads(torch_threads)
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(model, dtype=getattr(torch, dtype))
        if not getattr(self.model.config, "is_encoder_decoder", False):
            raise ValueError(f"the seq2seq translator needs an encoder-decoder model; "
                             f"{type(self.model).__name__} is not one (a causal LM translates by prompt instead)")
        self.model.eval()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; found {batch_size}")
        self.prefix, self.batch_size = prefix, batch_size
        self.max_new_tokens, self.num_beams, self.max_source_tokens = max_new_tokens, num_beams, max_source_tokens

    def translate(self, texts: Sequence[str]) -> pd.DataFrame:
        """``completion, n_generated`` per text, in input order."""
        import torch

        tok = self.tokenizer
        sources = [self.prefix + (t if isinstance(t, str) else "") for t in texts]
        order = np.argsort([len(s) for s in sources], kind="stable")
        out: list[str] = [""] * len(sources)
        n_gen = np.zeros(len(sources), dtype=np.int64)
        special = {i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None}
        for start in range(0, len(sources), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = tok([sources[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                      max_length=self.max_source_tokens, return_token_type_ids=False)
            with torch.inference_mode():
                gen = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                          do_sample=False)
            for r, i in enumerate(idx):
                ids = gen[r].tolist()[1:]  # [0] is the decoder start token
                k = next((j for j, t in enumerate(ids) if t in special), len(ids))
                out[i] = tok.decode(ids[:k], skip_special_tokens=True).strip()
                n_gen[i] = k
        return pd.DataFrame({"completion": out, "n_generated": n_gen})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if "text" not in batch.columns:
            raise ValueError(f"Seq2SeqTranslator: missing column 'text'; columns present: {list(batch.columns)}")
        res = self.translate(batch["text"].tolist())
        out = batch.reset_index(drop=True).copy()
        out["completion"] = res["completion"].to_numpy()
        out["n_generated"] = res["n_generated"].to_numpy()
        return out
