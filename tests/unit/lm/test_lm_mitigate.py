"""Generation-time mitigations: self-debiasing arithmetic by hand, then on a tiny random Llama
against unpadded per-row numpy computations; the instruction as prefix and system turn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from debias.lm.mitigate import (
    MitigatedGenerator,
    MitigatedScorer,
    _top_p_mask,
    instruct_rows,
    instructed_prefix,
    self_debias_logprobs,
)
from debias.lm.scorer import LMGenerator, LMScorer

PREFIXES = ["The following text is biased:\n", "The following text discriminates against women:\n"]
# Random weights give near-uniform next-token distributions over ~30k tokens (p ~ 3e-5), so the
# paper's lambda = 50 would leave them unchanged; a large lambda makes the decay bite.
DECAY = 2e5


def _np_self_debias(logits: np.ndarray, biased: np.ndarray, decay: float, eps: float) -> np.ndarray:
    """Schick et al. 2021, section 3.2, written out in numpy (float64)."""
    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    p = softmax(logits)
    delta = p - softmax(biased).max(axis=0)
    alpha = np.where(delta >= 0, 1.0, np.maximum(np.exp(decay * delta), eps))
    q = alpha * p
    return np.log(q / q.sum(axis=-1, keepdims=True))


def test_self_debias_hand_worked_example():
    # p = [.5, .3, .2]; the prefixes give [.2, .6, .2] and [.4, .3, .3]: max [.4, .6, .3]
    # delta = p - max = [.1, -.3, -.1]; lambda = 10: alpha = [1, e^-3, e^-1] = [1, .049787, .367879]
    # alpha * p = [.5, .0149361, .0735759], sum .5885120 -> p~ = [.849600, .025379, .125020]
    logits = np.log([0.5, 0.3, 0.2])
    biased = np.log([[0.2, 0.6, 0.2], [0.4, 0.3, 0.3]])
    got = self_debias_logprobs(torch.tensor(logits), torch.tensor(biased), decay=10.0, epsilon=0.01)
    np.testing.assert_allclose(got.exp().numpy(), [0.849600, 0.025379, 0.125020], atol=1e-6)
    # lambda = 50: e^-15 and e^-5 are below the floor 0.01: p~ = [.5, .003, .002] / .505
    got = self_debias_logprobs(torch.tensor(logits), torch.tensor(biased), decay=50.0, epsilon=0.01)
    np.testing.assert_allclose(got.exp().numpy(), np.array([0.5, 0.003, 0.002]) / 0.505, atol=1e-9)


def test_self_debias_invariants_on_random_logits():
    rng = np.random.default_rng(0)
    logits, biased = rng.normal(size=(4, 7, 50)), rng.normal(size=(3, 4, 7, 50))
    got = self_debias_logprobs(torch.tensor(logits), torch.tensor(biased), decay=30.0, epsilon=0.05).numpy()
    np.testing.assert_allclose(got, _np_self_debias(logits, biased, 30.0, 0.05), atol=1e-10)
    np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, atol=1e-10)
    plain = torch.log_softmax(torch.tensor(logits), -1).numpy()
    # lambda = 0, or a prefix identical to the input: nothing changes
    np.testing.assert_allclose(self_debias_logprobs(torch.tensor(logits), torch.tensor(biased), decay=0.0).numpy(),
                               plain, atol=1e-12)
    same = torch.tensor(logits)[None]
    np.testing.assert_allclose(self_debias_logprobs(torch.tensor(logits), same).numpy(), plain, atol=1e-12)
    # a token no prefix makes more likely never loses probability (the normaliser is <= 1)
    p = np.exp(plain)
    untouched = p >= np.exp(torch.log_softmax(torch.tensor(biased), -1).numpy()).max(axis=0)
    assert untouched.any() and (got[untouched] >= plain[untouched] - 1e-12).all()
    with pytest.raises(ValueError, match="biased_logits must be"):
        self_debias_logprobs(torch.tensor(logits), torch.tensor(logits))


def test_top_p_mask_keeps_the_smallest_set_reaching_the_mass():
    lp = torch.log(torch.tensor([[0.1, 0.5, 0.15, 0.25]]))
    kept = torch.isfinite(_top_p_mask(lp, 0.7))[0].tolist()
    assert kept == [False, True, False, True]  # .5 + .25 >= .7
    assert torch.isfinite(_top_p_mask(lp, 1.0)).all()


@pytest.fixture(scope="module")
def pair(tiny_llama_dir):
    s = LMScorer(str(tiny_llama_dir))
    return s.model, s.tokenizer


def _logits(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].double().numpy()


def _oracle_score(scorer: LMScorer, prefix: str, text: str, decay: float, eps: float) -> float:
    """One unpadded forward pass per sequence (plain and each prefixed copy), numpy arithmetic."""
    tok = scorer.tokenizer
    p = tok(prefix, add_special_tokens=False).input_ids if prefix else []
    t = tok(text, add_special_tokens=False).input_ids
    plain = [scorer.start_id, *p, *t]
    k = len(t)
    reg = _logits(scorer.model, plain)[len(plain) - 1 - k:len(plain) - 1]
    biased = []
    for d in PREFIXES:
        seq = [scorer.start_id, *tok(d, add_special_tokens=False).input_ids, *p, *t]
        biased.append(_logits(scorer.model, seq)[len(seq) - 1 - k:len(seq) - 1])
    lp = _np_self_debias(reg, np.stack(biased), decay, eps)
    return float(lp[np.arange(k), t].sum())


def test_self_debiased_scores_match_unpadded_numpy_oracle(pair):
    prefixes = ["", "Question: who?", "", "Some context"]
    texts = ["The nurse said hello.", " The doctor", "A longer sentence about a teacher at the school.", " yes"]
    sdb = MitigatedScorer(pair, mitigation="self_debias", prefixes=PREFIXES, decay=DECAY, epsilon=0.01,
                          batch_size=4)  # 4 // 3 copies: one row per forward pass
    got = sdb.score_pairs(prefixes, texts)
    want = [_oracle_score(sdb, p, t, DECAY, 0.01) for p, t in zip(prefixes, texts, strict=True)]
    np.testing.assert_allclose(got["logprob_sum"], want, rtol=1e-4, atol=1e-4)
    wide = MitigatedScorer(pair, mitigation="self_debias", prefixes=PREFIXES, decay=DECAY, batch_size=12)
    np.testing.assert_allclose(wide.score_pairs(prefixes, texts)["logprob_sum"], want, rtol=1e-4, atol=1e-4)
    plain = LMScorer(pair).score_pairs(prefixes, texts)
    assert got["n_tokens"].tolist() == plain["n_tokens"].tolist()
    assert np.abs(got["logprob_sum"] - plain["logprob_sum"]).max() > 1e-2  # the decay changed something
    off = MitigatedScorer(pair, mitigation="self_debias", prefixes=PREFIXES, decay=0.0)
    np.testing.assert_allclose(off.score_pairs(prefixes, texts)["logprob_sum"], plain["logprob_sum"], atol=1e-4)


def test_instruction_scores_are_scores_given_the_preamble(pair):
    instr = "Do not rely on stereotypes."
    got = MitigatedScorer(pair, mitigation="instruction", instruction=instr).score_pairs(["", "Q:"], ["A b.", " c"])
    want = LMScorer(pair).score_pairs([instr + "\n\n", instr + "\n\nQ:"], ["A b.", " c"])
    np.testing.assert_allclose(got["logprob_sum"], want["logprob_sum"], atol=1e-5)
    none = MitigatedScorer(pair).score_pairs(["", "Q:"], ["A b.", " c"])
    np.testing.assert_allclose(none["logprob_sum"], LMScorer(pair).score_pairs(["", "Q:"], ["A b.", " c"])
                               ["logprob_sum"], atol=1e-6)


def _oracle_greedy(model, tok, prompt: str, n: int) -> list[int]:
    """Self-debiased greedy decoding, one full forward pass per copy and step, numpy arithmetic."""
    seqs = [tok(x, add_special_tokens=False).input_ids for x in [prompt, *[d + prompt for d in PREFIXES]]]
    out = []
    for _ in range(n):
        last = [_logits(model, s)[-1] for s in seqs]
        nxt = int(np.argmax(_np_self_debias(last[0], np.stack(last[1:]), DECAY, 0.01)))
        out.append(nxt)
        if nxt in (tok.eos_token_id, tok.pad_token_id):
            break
        seqs = [s + [nxt] for s in seqs]
    return out


def test_self_debiased_greedy_generation_matches_numpy_oracle(pair):
    model, tok = pair
    prompts = ["The nurse walked in and", "He said that the engineer", "Hello"]
    gen = MitigatedGenerator(pair, mitigation="self_debias", prefixes=PREFIXES, decay=DECAY, max_new_tokens=5,
                             batch_size=2, chat=False)
    got = gen.generate(prompts)
    for prompt, text, n in zip(prompts, got["completion"], got["n_generated"], strict=True):
        ids = _oracle_greedy(model, tok, prompt, 5)
        ids = [i for i in ids if i not in (tok.eos_token_id, tok.pad_token_id)]
        assert n == len(ids)
        assert text == tok.decode(ids, skip_special_tokens=True).strip()
    plain = LMGenerator(pair, max_new_tokens=5, batch_size=2, chat=False).generate(prompts)
    assert got["completion"].tolist() != plain["completion"].tolist()
    off = MitigatedGenerator(pair, mitigation="self_debias", prefixes=PREFIXES, decay=0.0, max_new_tokens=5,
                             batch_size=2, chat=False).generate(prompts)
    assert off["completion"].tolist() == plain["completion"].tolist()


def test_self_debiased_sampling_is_seeded(pair):
    kw = {"mitigation": "self_debias", "prefixes": PREFIXES, "decay": DECAY, "max_new_tokens": 6, "chat": False,
          "temperature": 1.0, "top_p": 0.9}
    prompts = ["The nurse walked in and", "Hello there"]
    a = MitigatedGenerator(pair, seed=1, **kw).generate(prompts, keys=["a", "b"])
    b = MitigatedGenerator(pair, seed=1, **kw).generate(prompts, keys=["a", "b"])
    c = MitigatedGenerator(pair, seed=2, **kw).generate(prompts, keys=["a", "b"])
    assert a.equals(b) and not a.equals(c)


def test_instruction_is_the_system_turn_or_a_preamble(pair):
    model, tok = pair
    gen = MitigatedGenerator(pair, mitigation="instruction", instruction="Be fair.", chat=False)
    assert gen.render("Who?") == "Be fair.\n\nWho?"
    tok_chat = type(tok).from_pretrained(tok.name_or_path)
    tok_chat.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
                              "{% if add_generation_prompt %}<assistant>{% endif %}")
    chat = MitigatedGenerator((model, tok_chat), mitigation="instruction", instruction="Be fair. ")
    assert chat.render("Who?") == "<system>Be fair.<user>Who?<assistant>"
    assert MitigatedGenerator((model, tok_chat)).render("Who?") == "<user>Who?<assistant>"
    sdb = MitigatedGenerator((model, tok_chat), mitigation="self_debias", prefixes=PREFIXES)
    assert sdb.render("Who?", system=PREFIXES[0]) == "<system>The following text is biased:<user>Who?<assistant>"


def test_instruct_rows_and_bad_arguments(pair):
    import pandas as pd

    s, p = instruct_rows(pd.DataFrame({"prefix": ["", "ctx"], "text": ["a", "b"]}),
                         pd.DataFrame({"prompt": ["Q?"]}), "Be fair.")
    assert s["prefix"].tolist() == ["Be fair.\n\n", "Be fair.\n\nctx"] and p["prompt"].tolist() == ["Be fair.\n\nQ?"]
    assert instructed_prefix("", " x ") == "x\n\n"
    with pytest.raises(ValueError, match="mitigation must be one of"):
        MitigatedScorer(pair, mitigation="prompting")
    with pytest.raises(ValueError, match="at least one debiasing prefix"):
        MitigatedGenerator(pair, mitigation="self_debias", prefixes=[])


def test_config_refuses_self_debias_on_an_endpoint():
    from debias.lm.config import AuditLMConfig

    with pytest.raises(ValueError, match="self_debias needs the model's logits"):
        AuditLMConfig(mitigation="self_debias", endpoint={"base_url": "http://x/v1", "model": "m"})
    assert AuditLMConfig(mitigation="instruction", endpoint={"base_url": "http://x/v1", "model": "m"})
