"""LMScorer / LMGenerator on a tiny random Llama, against per-row unpadded computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from debias.lm.scorer import LMGenerator, LMScorer, batch_seed

TEXTS = ["The nurse said hello.", "A much longer sentence about a doctor who walked to the market today.",
         "Hi.", "Two words", "Another line of moderate length here."]


@pytest.fixture(scope="module")
def scorer(tiny_llama_dir):
    return LMScorer(str(tiny_llama_dir), batch_size=2)


def _oracle(scorer: LMScorer, prefix: str, text: str) -> float:
    """One unpadded forward pass per row, log-softmax by hand."""
    tok = scorer.tokenizer
    p = tok(prefix, add_special_tokens=False).input_ids if prefix else []
    t = tok(text, add_special_tokens=False).input_ids
    ids = torch.tensor([[scorer.start_id, *p, *t]])
    with torch.no_grad():
        logp = torch.log_softmax(scorer.model(input_ids=ids).logits[0].double(), dim=-1)
    start = 1 + len(p)
    return float(sum(logp[j - 1, ids[0, j]] for j in range(start, ids.shape[1])))


def test_batched_padded_scores_match_unpadded_oracle_in_input_order(scorer):
    prefixes = ["", "Question: who?", "", "Context here", ""]
    got = scorer.score_pairs(prefixes, TEXTS)
    want = [_oracle(scorer, p, t) for p, t in zip(prefixes, TEXTS, strict=True)]
    np.testing.assert_allclose(got["logprob_sum"], want, rtol=1e-4, atol=1e-4)
    n = [len(scorer.tokenizer(t, add_special_tokens=False).input_ids) for t in TEXTS]
    assert got["n_tokens"].tolist() == n
    np.testing.assert_allclose(got["logprob_mean"], np.asarray(want) / np.asarray(n), rtol=1e-4)


def test_chain_rule_prefix_plus_text(scorer):
    # log p(prefix + text) = log p(prefix) + log p(text | prefix) when both are encoded separately
    whole = scorer.score_pairs([""], ["the cat sat on the mat"])["logprob_sum"][0]
    a = scorer.score_pairs(["", "the cat"], ["the cat", "sat on the mat"])["logprob_sum"]
    assert whole == pytest.approx(a[0] + a[1], abs=1e-3)


def test_call_keeps_columns_and_order_and_checks_input(scorer):
    df = pd.DataFrame({"id": list("abcde"), "text": TEXTS})
    out = scorer(df)
    assert out["id"].tolist() == list("abcde")
    assert {"logprob_sum", "logprob_mean", "n_tokens"} <= set(out.columns)
    with pytest.raises(ValueError, match="missing column"):
        scorer(pd.DataFrame({"sentence": ["x"]}))


def test_greedy_generation_is_deterministic_and_independent_of_batching(tiny_llama_dir, scorer):
    pair = (scorer.model, scorer.tokenizer)
    prompts = pd.DataFrame({"id": [1, 2, 3], "prompt": ["Tell me about nurses", "Hello", "The doctor went to the"]})
    a = LMGenerator(pair, batch_size=3, max_new_tokens=6)(prompts)
    b = LMGenerator(pair, batch_size=1, max_new_tokens=6)(prompts)
    assert a["completion"].tolist() == b["completion"].tolist()
    assert (a["n_generated"] <= 6).all() and a["id"].tolist() == [1, 2, 3]


def test_sampled_generation_repeats_with_the_seed(scorer):
    pair = (scorer.model, scorer.tokenizer)
    prompts = pd.DataFrame({"id": [1, 2], "prompt": ["Tell me about nurses", "Hello"]})
    runs = [LMGenerator(pair, max_new_tokens=8, temperature=1.0, seed=s)(prompts)["completion"].tolist()
            for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]  # a random 30k-vocab model: two seeds agreeing on 16 tokens is ~impossible


def test_batch_seed_is_order_free_and_seed_dependent():
    assert batch_seed(0, ["a", "b"]) == batch_seed(0, ["b", "a"])
    assert batch_seed(0, ["a", "b"]) != batch_seed(1, ["a", "b"])
