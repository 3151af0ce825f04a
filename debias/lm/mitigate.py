"""Generation-time mitigations for a causal LM: a debiasing instruction, and self-debiasing.

Both wrap the audit's own :class:`~debias.lm.scorer.LMScorer` and
:class:`~debias.lm.scorer.LMGenerator` (``mitigation="none"`` leaves them exactly as they are),
so every suite of ``debias audit-lm`` measures the mitigated model the same way as the plain one.

*instruction*: the text ``instruction`` (``audit_lm.debias_instruction``) is the system turn of
a chat prompt (replacing the template's default system turn), or a preamble before a plain
prompt; scored texts (CrowS-Pairs sentences, BBQ options) are scored given it as a prefix.

*self_debias* (Schick, Udupa & Schuetze 2021, "Self-Diagnosis and Self-Debiasing: A Proposal for
Reducing Corpus-Based Bias in NLP", TACL 9, section 3.2): next to the input ``x`` the model also
reads ``d_i + x`` for each *debiasing prefix* ``d_i`` ("The following text discriminates
against ..."), and a token that becomes more likely under a prefix is pushed down::

    delta(w)  = p(w | x) - max_i p(w | d_i, x)
    alpha     = 1 where delta >= 0, else max(exp(lambda * delta), epsilon)
    p~(w | x) = alpha(w) p(w | x) / sum_v alpha(v) p(v | x)

with lambda = 50 (the paper's decay constant) and the floor epsilon = 0.01 of the authors' code
(github.com/timoschick/self-debiasing, ``SelfDebiasingLogitsProcessor``). Generation decodes from
``p~`` (greedy, or sampled with temperature/top-p); likelihood suites score texts under ``p~``,
as bias-bench does for CrowS-Pairs (Meade et al. 2022). With a chat template the prefix is the
system turn of the biased copy (a preamble before the template's first token would be
out of distribution); otherwise it is prepended to the text. The model reads 1 + K copies of
every input, so it costs about 1 + K times the compute: the scorer cuts its forward batches to
``batch_size // (1 + K)`` rows to keep the memory of one plain batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from debias.lm.scorer import LMGenerator, LMScorer, batch_seed

__all__ = ["Mitigation", "self_debias_logprobs", "instructed_prefix", "instruct_rows", "self_debias_processor",
           "MitigatedScorer", "MitigatedGenerator", "mitigation_kwargs"]

Mitigation = Literal["none", "instruction", "self_debias"]


def self_debias_logprobs(logits: Any, biased_logits: Any, *, decay: float = 50.0, epsilon: float = 0.01) -> Any:
    """Self-debiased next-token log-probabilities (Schick et al. 2021, eq. in section 3.2).

    Parameters
    ----------
    logits : tensor ``(..., V)``, the model's logits for the input ``x``.
    biased_logits : tensor ``(K, ..., V)``, its logits for ``d_k + x``, one per debiasing prefix.
    decay : lambda; 0 leaves the distribution unchanged.
    epsilon : the floor of the decay factor alpha.

    Returns
    -------
    tensor ``(..., V)``: ``log p~``, normalised over the vocabulary (float32 or wider).
    """
    import torch

    logits = torch.as_tensor(logits)
    biased_logits = torch.as_tensor(biased_logits)
    if biased_logits.shape[1:] != logits.shape:
        raise ValueError(f"biased_logits must be (K, *logits.shape) = (K, {tuple(logits.shape)}); "
                         f"found {tuple(biased_logits.shape)}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logp = torch.log_softmax(logits.to(dtype), dim=-1)
    p_biased = torch.softmax(biased_logits.to(dtype), dim=-1).amax(dim=0)
    delta = (p_biased - logp.exp()).clamp(min=0.0)  # how much more likely under the worst prefix
    log_alpha = torch.maximum(-decay * delta, torch.tensor(float(np.log(epsilon)), dtype=dtype))
    scaled = logp + log_alpha
    return scaled - torch.logsumexp(scaled, dim=-1, keepdim=True)


def instructed_prefix(prefix: str, instruction: str) -> str:
    """The instruction as a preamble of a scored text's prefix (or of a plain prompt)."""
    return f"{instruction.strip()}\n\n{prefix}" if prefix else f"{instruction.strip()}\n\n"


def instruct_rows(score_rows: pd.DataFrame, prompt_rows: pd.DataFrame, instruction: str
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The instruction as a preamble of every scored prefix and prompt (endpoint mode, where the
    client sends one user turn and no system turn)."""
    s, p = score_rows.copy(), prompt_rows.copy()
    s["prefix"] = [instructed_prefix(x or "", instruction) for x in s["prefix"].fillna("")]
    p["prompt"] = [instructed_prefix(x, instruction) for x in p["prompt"]]
    return s, p


def _top_p_mask(logp: Any, top_p: float) -> Any:
    """Log-probs with everything outside the smallest set of mass >= top_p set to -inf."""
    import torch

    if top_p >= 1.0:
        return logp
    sorted_lp, order = logp.sort(dim=-1, descending=True)
    mass_before = sorted_lp.exp().cumsum(dim=-1) - sorted_lp.exp()
    drop = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
    return logp.masked_fill(drop, float("-inf"))


@functools.cache
def _processor_base() -> type:
    from transformers import LogitsProcessor

    class SelfDebiasProcessor(LogitsProcessor):
        """Picks the next token of every input from ``p~`` and forces it on all its copies.

        The batch holds ``1 + K`` blocks of ``B`` rows: the inputs, then each prefix's copies in
        the same order. Every copy gets the same token (scores 0 for it, -inf elsewhere), so the
        biased copies go on reading the continuation the debiased distribution chose.
        """

        def __init__(self, n_prefixes: int, *, decay: float, epsilon: float, temperature: float = 0.0,
                     top_p: float = 1.0, generator: Any = None) -> None:
            self.k, self.decay, self.epsilon = int(n_prefixes), float(decay), float(epsilon)
            self.temperature, self.top_p, self.generator = float(temperature), float(top_p), generator

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            import torch

            n, v = scores.shape
            b = n // (1 + self.k)
            lp = self_debias_logprobs(scores[:b], scores[b:].reshape(self.k, b, v),
                                      decay=self.decay, epsilon=self.epsilon)
            if self.temperature > 0:
                lp = _top_p_mask(torch.log_softmax(lp / self.temperature, dim=-1), self.top_p)
                pick = torch.multinomial(lp.exp(), 1, generator=self.generator).squeeze(-1)
            else:
                pick = lp.argmax(dim=-1)
            out = torch.full_like(scores, float("-inf"))
            out[torch.arange(n, device=scores.device), pick.repeat(1 + self.k)] = 0.0
            return out

    return SelfDebiasProcessor


def self_debias_processor(n_prefixes: int, **kwargs: Any) -> Any:
    """A ``transformers`` logits processor for self-debiased decoding (see ``_processor_base``)."""
    return _processor_base()(n_prefixes, **kwargs)


def _check(mitigation: str, prefixes: Sequence[str]) -> None:
    if mitigation not in ("none", "instruction", "self_debias"):
        raise ValueError(f"mitigation must be one of none, instruction, self_debias; found {mitigation!r}")
    if mitigation == "self_debias" and not prefixes:
        raise ValueError("self_debias needs at least one debiasing prefix; found none")


class MitigatedScorer(LMScorer):
    """:class:`LMScorer` under a mitigation: log-likelihoods given the instruction, or under ``p~``.

    Parameters (besides LMScorer's)
    ----------
    mitigation : ``"none"`` (LMScorer as it is), ``"instruction"`` or ``"self_debias"``.
    instruction : the preamble of ``"instruction"``.
    prefixes, decay, epsilon : the debiasing prefixes, lambda and the floor of ``"self_debias"``.
    """

    def __init__(self, model: Any = None, *, mitigation: Mitigation = "none", instruction: str = "",
                 prefixes: Sequence[str] = (), decay: float = 50.0, epsilon: float = 0.01, **kwargs: Any) -> None:
        _check(mitigation, prefixes)
        super().__init__(model, **kwargs)
        self.mitigation, self.instruction = mitigation, instruction
        self.prefixes, self.decay, self.epsilon = list(prefixes), float(decay), float(epsilon)
        self._prefix_ids = [self.tokenizer(d, add_special_tokens=False).input_ids for d in self.prefixes]

    def score_pairs(self, prefixes: Sequence[str], texts: Sequence[str]) -> pd.DataFrame:
        if self.mitigation == "instruction":
            return super().score_pairs([instructed_prefix(p or "", self.instruction) for p in prefixes], texts)
        if self.mitigation == "none":
            return super().score_pairs(prefixes, texts)
        return self._self_debiased(prefixes, texts)

    def _self_debiased(self, prefixes: Sequence[str], texts: Sequence[str]) -> pd.DataFrame:
        import torch

        if len(prefixes) != len(texts):
            raise ValueError(f"prefixes and texts must have the same length; found {len(prefixes)} and {len(texts)}")
        plain = [self.encode(p or "", t if isinstance(t, str) else "") for p, t in zip(prefixes, texts, strict=True)]
        copies = 1 + len(self._prefix_ids)
        # [start] + d_k + prefix + text: the plain sequence with the prefix's ids after its start
        # token; cut from the left like the plain one (the text's k tokens always stay).
        biased = [[([ids[0], *d, *ids[1:]])[-self.max_length:] for d in self._prefix_ids] for ids, _ in plain]
        n = len(plain)
        lp_sum, n_tok = np.zeros(n), np.zeros(n, dtype=np.int64)
        order = np.argsort([len(b[-1]) for b in biased], kind="stable")
        rows_per_pass = max(1, self.batch_size // copies)
        for start in range(0, n, rows_per_pass):
            idx = order[start:start + rows_per_pass]
            seqs = [plain[i][0] for i in idx] + [biased[i][j] for j in range(copies - 1) for i in idx]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, :len(s)], mask[r, :len(s)] = torch.tensor(s), 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            for r, i in enumerate(idx):
                seq, k = plain[i]
                n_tok[i] = k
                if not k:
                    continue
                # the logits at position j predict token j + 1: the text's k tokens end each sequence
                rows = [r + j * len(idx) for j in range(copies)]
                ends = [len(seqs[q]) for q in rows]
                window = [logits[q, e - 1 - k:e - 1] for q, e in zip(rows, ends, strict=True)]
                lp = self_debias_logprobs(window[0], torch.stack(window[1:]), decay=self.decay, epsilon=self.epsilon)
                target = torch.tensor(seq[-k:]).unsqueeze(-1)
                lp_sum[i] = float(lp.gather(-1, target).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_tok > 0, lp_sum / np.maximum(n_tok, 1), np.nan)
        return pd.DataFrame({"logprob_sum": lp_sum, "logprob_mean": mean, "n_tokens": n_tok})


class MitigatedGenerator(LMGenerator):
    """:class:`LMGenerator` under a mitigation: the instruction as system turn, or self-debiased decoding.

    Takes LMGenerator's parameters plus those of :class:`MitigatedScorer`.
    """

    def __init__(self, model: Any = None, *, mitigation: Mitigation = "none", instruction: str = "",
                 prefixes: Sequence[str] = (), decay: float = 50.0, epsilon: float = 0.01, **kwargs: Any) -> None:
        _check(mitigation, prefixes)
        super().__init__(model, **kwargs)
        self.mitigation, self.instruction = mitigation, instruction
        self.prefixes, self.decay, self.epsilon = list(prefixes), float(decay), float(epsilon)

    def render(self, prompt: str, system: str | None = None) -> str:
        if system is None and self.mitigation == "instruction":
            system = self.instruction
        if system is None:
            return super().render(prompt)
        if self.chat:
            return self.tokenizer.apply_chat_template([{"role": "system", "content": system.strip()},
                                                       {"role": "user", "content": prompt}],
                                                      tokenize=False, add_generation_prompt=True)
        return instructed_prefix(prompt, system) if self.mitigation == "instruction" else system + prompt

    def generate(self, prompts: Sequence[str], *, keys: Sequence[Any] | None = None) -> pd.DataFrame:
        if self.mitigation != "self_debias":
            return super().generate(prompts, keys=keys)
        import torch

        tok = self.tokenizer
        keys = list(keys) if keys is not None else list(range(len(prompts)))
        variants = [[self.render(p)] + [self.render(p, system=d) for d in self.prefixes] for p in prompts]
        order = np.argsort([len(tok(v[-1], add_special_tokens=False).input_ids) for v in variants], kind="stable")
        completions, n_gen = [""] * len(prompts), np.zeros(len(prompts), dtype=np.int64)
        copies = 1 + len(self.prefixes)
        side, tok.padding_side = tok.padding_side, "left"  # decoder-only generation continues on the right
        try:
            for start in range(0, len(prompts), self.batch_size):
                idx = order[start:start + self.batch_size]
                texts = [variants[i][j] for j in range(copies) for i in idx]
                enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_prompt_tokens,
                          add_special_tokens=False, return_token_type_ids=False)
                gen = torch.Generator().manual_seed(batch_seed(self.seed, [keys[i] for i in idx]))
                proc = self_debias_processor(len(self.prefixes), decay=self.decay, epsilon=self.epsilon,
                                             temperature=self.temperature, top_p=self.top_p, generator=gen)
                with torch.inference_mode():
                    out = self.model.generate(**enc, do_sample=False, temperature=None, top_p=None, top_k=None,
                                              max_new_tokens=self.max_new_tokens, pad_token_id=tok.pad_token_id,
                                              logits_processor=[proc])
                new = out[:len(idx), enc["input_ids"].shape[1]:]
                for r, i in enumerate(idx):
                    row = new[r]
                    stop = (row == tok.eos_token_id) | (row == tok.pad_token_id)
                    k = int(stop.nonzero()[0, 0]) if bool(stop.any()) else len(row)
                    completions[i] = tok.decode(row[:k], skip_special_tokens=True).strip()
                    n_gen[i] = k
        finally:
            tok.padding_side = side
        return pd.DataFrame({"completion": completions, "n_generated": n_gen})


def mitigation_kwargs(acfg: Any) -> dict[str, Any]:
    """MitigatedScorer / MitigatedGenerator arguments from an :class:`~debias.lm.config.AuditLMConfig`."""
    return {"mitigation": acfg.mitigation, "instruction": acfg.debias_instruction,
            "prefixes": list(acfg.self_debias_prefixes), "decay": acfg.self_debias_decay,
            "epsilon": acfg.self_debias_epsilon}
