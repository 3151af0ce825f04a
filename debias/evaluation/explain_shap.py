"""SHAP word attributions for the worst cases, and how well two methods agree on them.

* :func:`shap_attributions`: Shapley values of the model's score over the text's tokens
  (Lundberg & Lee 2017), estimated by the ``shap`` package's partition explainer with its text
  masker over the model's own tokenizer (a masked token is the tokenizer's mask or pad token),
  then summed back to whitespace words like the other methods. Shapley values add up to
  ``score - baseline_score`` (efficiency); ``delta`` is the words' sum minus that, the share of
  the tokenizer's special tokens ([CLS], [SEP]) and any estimation error, reported as
  integrated gradients reports its own approximation error.
* :func:`method_agreement`: on the same cases, how often two methods name the same most
  influential word, and the overlap of their top words. Methods that disagree on a case are a
  reason to read its explanation with care, which the report says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from debias.evaluation.explain import words

__all__ = ["method_agreement", "shap_attributions", "top_words"]


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for w in words(text):
        i = text.index(w, pos)
        spans.append((i, i + len(w)))
        pos = i + len(w)
    return spans


def _to_words(text: str, pieces: Sequence[str], values: np.ndarray) -> list[list[Any]]:
    """Sum each token's value into the whitespace word its characters fall in."""
    spans = _word_spans(text)
    out = [[text[a:b], 0.0] for a, b in spans]
    low, pos = text.casefold(), 0
    for piece, v in zip(pieces, values, strict=True):
        core = str(piece).strip()
        if not core:
            continue
        i = low.find(core.casefold(), pos)
        if i < 0:  # the tokenizer normalised it (accents, unknown token): keep the position
            i = pos
        else:
            pos = i + len(core)
        k = next((j for j, (a, b) in enumerate(spans) if a <= i < b), None)
        if k is None:  # between words: the nearest word before it
            k = max((j for j, (a, _) in enumerate(spans) if a <= i), default=0)
        if out:
            out[k][1] += float(v)
    return out


def shap_attributions(text: str, *, predict_fn: Callable[[list[str]], np.ndarray], tokenizer: Any,
                      max_evals: int = 200, seed: int = 0) -> dict[str, Any]:
    """``{"method": "shap", "score", "baseline_score", "delta", "tokens": [[word, value], ...]}``;
    a positive value pushed the score up. ``max_evals``: model calls the estimate may use."""
    import shap

    def f(xs: Any) -> np.ndarray:
        return np.asarray(predict_fn([str(x) for x in xs]), dtype=np.float64)

    masker = shap.maskers.Text(tokenizer)
    explainer = shap.Explainer(f, masker, algorithm="partition", seed=seed)
    sv = explainer([text], max_evals=int(max_evals), silent=True)
    values = np.asarray(sv.values[0], dtype=np.float64)
    base = float(np.asarray(sv.base_values).ravel()[0])
    score = float(f([text])[0])
    tokens = _to_words(text, list(sv.data[0]), values)
    # what the words do not carry: the special tokens' share ([CLS], [SEP]) and the estimate's error
    return {"method": "shap", "score": score, "baseline_score": base,
            "delta": float(sum(v for _, v in tokens) - (score - base)), "tokens": tokens}


def top_words(attribution: dict[str, Any] | None, k: int) -> list[str]:
    """The ``k`` words of largest absolute attribution (casefolded, ties by position)."""
    toks = (attribution or {}).get("tokens") or []
    order = sorted(range(len(toks)), key=lambda i: (-abs(float(toks[i][1])), i))
    return [str(toks[i][0]).casefold() for i in order[:k]]


def method_agreement(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *, names: tuple[str, str],
                     k: int = 3) -> dict[str, Any]:
    """How two methods' attributions of the same cases agree (case lists in the same order).

    Returns ``{"methods", "n_cases", "top1_agreement"`` (share of cases whose most influential
    word is the same), ``"top_k", "top_k_overlap"`` (mean Jaccard overlap of the two top-k word
    sets), ``"disagree_ids"`` (the cases whose top word differs)}``; partner texts of
    counterfactual cases count as cases of their own.
    """
    if len(a) != len(b):
        raise ValueError(f"the two methods explained different numbers of cases: {len(a)} and {len(b)}")
    pairs = []
    for ca, cb in zip(a, b, strict=True):
        pairs.append((ca.get("id"), ca.get("attribution"), cb.get("attribution")))
        if "partner_attribution" in ca and "partner_attribution" in cb:
            pairs.append((ca.get("partner_id"), ca["partner_attribution"], cb["partner_attribution"]))
    pairs = [(i, x, y) for i, x, y in pairs if top_words(x, 1) and top_words(y, 1)]
    same = [top_words(x, 1) == top_words(y, 1) for _, x, y in pairs]
    jac = []
    for _, x, y in pairs:
        sx, sy = set(top_words(x, k)), set(top_words(y, k))
        jac.append(len(sx & sy) / len(sx | sy))
    n = len(pairs)
    return {"methods": list(names), "n_cases": n,
            "top1_agreement": float(np.mean(same)) if n else None, "top_k": int(k),
            "top_k_overlap": float(np.mean(jac)) if n else None,
            "disagree_ids": [i for (i, _, _), s in zip(pairs, same, strict=True) if not s]}
