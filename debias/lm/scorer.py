"""Log-likelihoods and seeded generations from a causal LM, as small callable classes.

:class:`LMScorer` maps a batch with ``prefix`` and ``text`` columns to the log-probability of
``text`` given ``prefix`` (sum over its tokens, mean, token count). A sentence's likelihood is
the ``prefix=""`` case: every token is scored, the first one given the model's BOS token (or
EOS where there is no BOS: GPT-2's convention, as in bias-bench). Prefix and text are encoded
separately and concatenated, so the text's tokens do not depend on the prefix (lm-eval-harness
does the same for multiple-choice log-likelihoods).

:class:`LMGenerator` maps a batch of ``prompt`` to ``completion`` (and its token count).

Both sort the batch by length before cutting it into forward passes, so padding stays small;
the output keeps the input's row order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LMScorer", "LMGenerator", "token_logprobs", "batch_seed"]


def _require(batch: pd.DataFrame, cols: Sequence[str], who: str) -> None:
    missing = [c for c in cols if c not in batch.columns]
    if missing:
        raise ValueError(f"{who}: missing column(s) {missing}; columns present: {list(batch.columns)}")


def batch_seed(seed: int, keys: Sequence[Any]) -> int:
    """A seed for one batch from the run seed and the batch's row keys (order-free)."""
    h = hashlib.blake2b(str(seed).encode(), digest_size=8)
    for k in sorted(map(str, keys)):
        h.update(b"\0" + k.encode())
    return int.from_bytes(h.digest(), "little") % (2**31 - 1)


def token_logprobs(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """``log p(token_t | tokens_<t)`` for t >= 1, shape ``(B, T-1)`` (float32)."""
    import torch

    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
        target = input_ids[:, 1:]
        picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return picked - torch.logsumexp(logits, dim=-1)


class LMScorer:
    """Callable: ``batch[prefix, text] -> batch + [logprob_sum, logprob_mean, n_tokens]``.

    Parameters
    ----------
    model : a local causal-LM folder, ``"smollm2"`` (default) or a ``(model, tokenizer)`` pair.
    batch_size : rows per forward pass (after sorting by length).
    max_length : longest prefix+text in tokens; longer rows keep their last tokens.
    torch_threads : ``torch.set_num_threads`` when given.
    """

    def __init__(self, model: Any = None, *, batch_size: int = 16, max_length: int = 256,
                 torch_threads: int | None = None, dtype: str = "float32") -> None:
        import torch

        from debias.lm.model import load_causal_lm

        if torch_threads:
            torch.set_num_threads(torch_threads)
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
        else:
            self.model, self.tokenizer = load_causal_lm(model, dtype=dtype)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; found {batch_size}")
        self.batch_size = batch_size
        self.max_length = max_length
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if start is None:
            raise ValueError("the tokenizer has neither a BOS nor an EOS token to start a sentence with")
        self.start_id = int(start)
        self.pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else start)

    def encode(self, prefix: str, text: str) -> tuple[list[int], int]:
        """``(ids, n_text)``: ``[start] + prefix ids + text ids`` and how many are the text's."""
        enc = self.tokenizer
        p = enc(prefix, add_special_tokens=False).input_ids if prefix else []
        t = enc(text, add_special_tokens=False).input_ids
        ids = [self.start_id, *p, *t]
        if len(ids) > self.max_length:
            ids = ids[-self.max_length:]
        return ids, min(len(t), len(ids) - 1)

    def score_pairs(self, prefixes: Sequence[str], texts: Sequence[str]) -> pd.DataFrame:
        """Log-likelihood of each text given its prefix; a frame in input order."""
        import torch

        if len(prefixes) != len(texts):
            raise ValueError(f"prefixes and texts must have the same length; found {len(prefixes)} and {len(texts)}")
        encoded = [self.encode(p or "", t if isinstance(t, str) else "") for p, t in zip(prefixes, texts, strict=True)]
        n = len(encoded)
        lp_sum = np.zeros(n)
        n_tok = np.zeros(n, dtype=np.int64)
        order = np.argsort([len(e[0]) for e in encoded], kind="stable")
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            width = max(len(encoded[i][0]) for i in idx)
            ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                seq = encoded[i][0]
                ids[r, :len(seq)] = torch.tensor(seq)
                mask[r, :len(seq)] = 1
            lp = token_logprobs(self.model, ids, mask).numpy()
            for r, i in enumerate(idx):
                seq, k = encoded[i]
                # token j of the sequence is predicted at position j-1 of lp
                lp_sum[i] = float(lp[r, len(seq) - 1 - k:len(seq) - 1].sum()) if k else 0.0
                n_tok[i] = k
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_tok > 0, lp_sum / np.maximum(n_tok, 1), np.nan)
        return pd.DataFrame({"logprob_sum": lp_sum, "logprob_mean": mean, "n_tokens": n_tok})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        _require(batch, ["text"], "LMScorer")
        prefixes = batch["prefix"].fillna("").tolist() if "prefix" in batch.columns else [""] * len(batch)
        scores = self.score_pairs(prefixes, batch["text"].tolist())
        out = batch.reset_index(drop=True).copy()
        for c in scores.columns:
            out[c] = scores[c].to_numpy()
        return out


class LMGenerator:
    """Callable: ``batch[prompt] -> batch + [completion, n_generated]``, seeded.

    Greedy by default (``temperature=0``), which is deterministic. With sampling the seed of a
    forward batch comes from ``seed`` and the batch's ``key_col`` values (:func:`batch_seed`),
    so a rerun over the same rows gives the same completions.

    Parameters
    ----------
    chat : wrap each prompt as one user turn with the tokenizer's chat template (instruction
        models); plain continuation otherwise or where the tokenizer has no template.
    """

    def __init__(self, model: Any = None, *, batch_size: int = 8, max_new_tokens: int = 32,
                 temperature: float = 0.0, top_p: float = 1.0, seed: int = 0, chat: bool = True,
                 key_col: str = "id", max_prompt_tokens: int = 512, torch_threads: int | None = None,
                 dtype: str = "float32") -> None:
        import torch

        from debias.lm.model import load_causal_lm

        if torch_threads:
            torch.set_num_threads(torch_threads)
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
        else:
            self.model, self.tokenizer = load_causal_lm(model, dtype=dtype)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.chat = chat and getattr(self.tokenizer, "chat_template", None) is not None
        self.key_col = key_col
        self.max_prompt_tokens = max_prompt_tokens

    def render(self, prompt: str) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                      tokenize=False, add_generation_prompt=True)
        return prompt

    def generate(self, prompts: Sequence[str], *, keys: Sequence[Any] | None = None) -> pd.DataFrame:
        import torch

        tok = self.tokenizer
        keys = list(keys) if keys is not None else list(range(len(prompts)))
        rendered = [self.render(p) for p in prompts]
        lengths = [len(tok(r, add_special_tokens=False).input_ids) for r in rendered]
        order = np.argsort(lengths, kind="stable")
        completions: list[str] = [""] * len(prompts)
        n_gen = np.zeros(len(prompts), dtype=np.int64)
        side = tok.padding_side
        tok.padding_side = "left"  # decoder-only generation continues from the right edge
        try:
            for start in range(0, len(prompts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = tok([rendered[i] for i in idx], return_tensors="pt", padding=True,
                          truncation=True, max_length=self.max_prompt_tokens, add_special_tokens=False,
                          return_token_type_ids=False)
                sample = self.temperature > 0
                kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": self.max_new_tokens,
                                          "pad_token_id": tok.pad_token_id}
                if sample:
                    kwargs.update(temperature=self.temperature, top_p=self.top_p)
                    torch.manual_seed(batch_seed(self.seed, [keys[i] for i in idx]))
                else:
                    kwargs.update(temperature=None, top_p=None, top_k=None)
                with torch.inference_mode():
                    out = self.model.generate(**enc, **kwargs)
                new = out[:, enc["input_ids"].shape[1]:]
                for r, i in enumerate(idx):
                    row = new[r]
                    stop = (row == tok.eos_token_id) | (row == tok.pad_token_id)
                    k = int(stop.nonzero()[0, 0]) if bool(stop.any()) else len(row)
                    completions[i] = tok.decode(row[:k], skip_special_tokens=True).strip()
                    n_gen[i] = k
        finally:
            tok.padding_side = side
        return pd.DataFrame({"completion": completions, "n_generated": n_gen})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        _require(batch, ["prompt"], "LMGenerator")
        keys = batch[self.key_col].tolist() if self.key_col in batch.columns else None
        res = self.generate(batch["prompt"].tolist(), keys=keys)
        out = batch.reset_index(drop=True).copy()
        out["completion"] = res["completion"].to_numpy()
        out["n_generated"] = res["n_generated"].to_numpy()
        return out
