"""Token attributions for the worst cases: which words drove a score.

Two methods, both reporting one number per whitespace word (word pieces summed back):

* occlusion (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"):
  the score of the text minus the score with that word removed. Model-agnostic: it needs
  only a ``predict_fn(list[str]) -> scores``; costs one forward pass per word.
* integrated gradients (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks",
  eq. 3): the path integral of the gradient of P(toxic) along the straight line from a
  baseline embedding (all [PAD] tokens, keeping [CLS]/[SEP]) to the input embedding, by a
  Riemann sum of ``steps`` points; attributions sum approximately to
  ``score(input) - score(baseline)`` (completeness), which :func:`integrated_gradients`
  reports as ``delta`` so a reader can judge the approximation.

:func:`worst_cases` picks the examples to explain from the predictions, with no re-inference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

PredictFn = Callable[[list[str]], np.ndarray]


def words(text: str) -> list[str]:
    """The units attributions are reported on: whitespace-separated words."""
    return text.split()


def occlusion(text: str, *, predict_fn: PredictFn) -> dict[str, Any]:
    """Leave-one-word-out attributions.

    Returns
    -------
    ``{"method": "occlusion", "score": p(text), "tokens": [[word, p(text) - p(text without word)], ...]}``;
    a positive attribution means the word pushed the score towards toxic.
    """
    ws = words(text)
    variants = [text] + [" ".join(ws[:i] + ws[i + 1:]) for i in range(len(ws))]
    scores = np.asarray(predict_fn(variants), dtype=np.float64)
    if scores.shape != (len(variants),):
        raise ValueError(f"predict_fn must return one score per text; got shape {scores.shape} "
                         f"for {len(variants)} texts")
    full = float(scores[0])
    return {"method": "occlusion", "score": full,
            "tokens": [[w, full - float(s)] for w, s in zip(ws, scores[1:], strict=True)]}


def _word_index(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Word number (whitespace split) of each token from its character offsets; -1 for specials."""
    starts, pos = [], 0
    for w in words(text):
        i = text.index(w, pos)
        starts.append((i, i + len(w)))
        pos = i + len(w)
    out = []
    for a, b in offsets:
        if a == b:  # [CLS], [SEP], padding
            out.append(-1)
            continue
        k = next((j for j, (s, e) in enumerate(starts) if s <= a < e), -1)
        out.append(k)
    return out


class IntegratedGradients:
    """Integrated gradients on the input embeddings of a BERT-like sequence classifier.

    Parameters
    ----------
    model, tokenizer : from :func:`debias.training.model.load_classifier` (a fast tokenizer, for offsets).
    steps : Riemann-sum points along the path (more: closer to completeness, slower).
    max_length : truncation in tokens.
    focus : the class whose probability is attributed (default 1, the positive class; a K-class
        model's ``evaluate.focus_class``).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, steps: int = 32,
                 max_length: int = 128, focus: int = 1) -> None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1; found {steps}")
        self.focus = int(focus)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.steps = int(steps)
        self.max_length = int(max_length)
        self._emb = model.get_input_embeddings()
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def _prob(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(inputs_embeds=embeds, attention_mask=mask).logits.float()
        if logits.shape[-1] == 1:
            return torch.sigmoid(logits[:, 0])
        if not 0 <= self.focus < logits.shape[-1]:
            raise ValueError(f"focus class {self.focus} is not a class of this {logits.shape[-1]}-class model")
        return torch.softmax(logits, dim=-1)[:, self.focus]

    def __call__(self, text: str) -> dict[str, Any]:
        """``{"method": "integrated_gradients", "score", "baseline_score", "delta", "tokens"}``."""
        enc = self.tokenizer(text, truncation=True, max_length=self.max_length,
                             return_offsets_mapping=True, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        special = torch.tensor(self.tokenizer.get_special_tokens_mask(
            ids[0].tolist(), already_has_special_tokens=True), dtype=torch.bool)
        base_ids = torch.where(special, ids[0], torch.full_like(ids[0], self._pad))[None]
        with torch.no_grad():
            x = self._emb(ids)            # (1, T, H)
            x0 = self._emb(base_ids)      # (1, T, H)
        alphas = (torch.arange(self.steps, dtype=x.dtype) + 0.5) / self.steps  # midpoint rule
        path = (x0 + alphas[:, None, None] * (x - x0)).requires_grad_(True)   # (S, T, H)
        probs = self._prob(path, mask.expand(self.steps, -1))
        (grad,) = torch.autograd.grad(probs.sum(), path)
        attr = ((x - x0)[0] * grad.mean(dim=0)).sum(dim=-1)                     # (T,)
        with torch.no_grad():
            p = float(self._prob(x, mask)[0])
            p0 = float(self._prob(x0, mask)[0])
        idx = _word_index(text, enc["offset_mapping"][0].tolist())
        ws = words(text)
        per_word = np.zeros(len(ws))
        for k, a in zip(idx, attr.detach().numpy(), strict=True):
            if k >= 0:
                per_word[k] += float(a)
        # Words cut off by truncation get no attribution rather than a misleading zero.
        seen = sorted({k for k in idx if k >= 0})
        tokens = [[ws[k], float(per_word[k])] for k in seen]
        return {"method": "integrated_gradients", "score": p, "baseline_score": p0,
                "delta": float(attr.sum()) - (p - p0), "tokens": tokens}


def worst_cases(predictions: Mapping[str, pd.DataFrame], *, k: int = 5) -> list[dict[str, Any]]:
    """The examples worth explaining, chosen from predictions alone.

    * counterfactual suites (rows with ``is_augmented``): the ``k`` pairs with the largest
      absolute score gap between the original and its swapped version;
    * labelled suites: the ``k`` rows that mention an identity group with the largest error
      ``|y_score - y_true|`` (confident false positives on non-toxic sentences about a group
      and missed toxic ones).

    Returns
    -------
    Records ``{"suite", "kind", "id", "text", "y_true", "y_score", "groups", "error"}`` with
    ``partner_text``/``partner_score`` for pairs; sorted by suite then decreasing severity.
    """
    out: list[dict[str, Any]] = []
    if k <= 0:
        return out
    for suite, df in predictions.items():
        if len(df) == 0:
            continue
        if "is_augmented" in df.columns and df["pair_id"].notna().any():
            out.extend(_worst_pairs(suite, df, k))
        elif df["y_true"].notna().all():
            has_group = df["groups"].map(lambda g: g is not None and len(g) > 0).to_numpy()
            d = df[has_group]
            err = (d["y_score"].astype(float) - d["y_true"].astype(float)).abs()
            for i in err.sort_values(ascending=False, kind="stable").index[:k]:
                r = d.loc[i]
                kind = "false_positive" if int(r["y_true"]) == 0 else "false_negative"
                out.append({"suite": suite, "kind": kind, "id": r["id"], "text": r["text"],
                            "y_true": int(r["y_true"]), "y_score": float(r["y_score"]),
                            "groups": list(r["groups"]), "error": float(err[i])})
    return out


def _worst_pairs(suite: str, df: pd.DataFrame, k: int) -> list[dict[str, Any]]:
    orig = df[~df["is_augmented"].astype(bool)].drop_duplicates("pair_id").set_index("pair_id")
    cf = df[df["is_augmented"].astype(bool) & df["pair_id"].isin(orig.index)].copy()
    if cf.empty:
        return []
    cf["error"] = (cf["y_score"].to_numpy() - orig.loc[cf["pair_id"], "y_score"].to_numpy())
    cf["abs"] = cf["error"].abs()
    top = cf.sort_values("abs", ascending=False, kind="stable").head(k)
    out = []
    for _, r in top.iterrows():
        o = orig.loc[r["pair_id"]]
        y = o["y_true"]
        out.append({"suite": suite, "kind": "counterfactual_gap", "id": o["id"], "text": o["text"],
                    "y_true": None if pd.isna(y) else int(y), "y_score": float(o["y_score"]),
                    "groups": list(o["groups"]), "error": float(r["abs"]),
                    "partner_id": r["id"], "partner_text": r["text"],
                    "partner_score": float(r["y_score"]), "partner_groups": list(r["groups"])})
    return out


def explain_cases(cases: list[dict[str, Any]], *, predict_fn: PredictFn | None = None,
                  ig: IntegratedGradients | None = None,
                  method: Literal["occlusion", "integrated_gradients", "shap"] = "occlusion",
                  on_case: Callable[[], None] | None = None,
                  attribute: Callable[[str], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Add ``attribution`` (and ``partner_attribution`` for pairs) to each case from
    :func:`worst_cases`; ``on_case()`` is called after each case (progress). ``attribute``
    (text -> attribution) serves any other method, e.g. SHAP
    (:func:`debias.evaluation.explain_shap.shap_attributions`)."""
    if attribute is None and method == "occlusion" and predict_fn is None:
        raise ValueError("occlusion needs predict_fn")
    if attribute is None and method == "integrated_gradients" and ig is None:
        raise ValueError("integrated_gradients needs ig=IntegratedGradients(model, tokenizer)")
    if attribute is None and method not in ("occlusion", "integrated_gradients"):
        raise ValueError(f"method {method!r} needs attribute=(text -> attribution)")

    def one(text: str) -> dict[str, Any]:
        if attribute is not None:
            return attribute(text)
        return occlusion(text, predict_fn=predict_fn) if method == "occlusion" else ig(text)

    out = []
    for c in cases:
        c = dict(c)
        c["attribution"] = one(c["text"])
        if "partner_text" in c:
            c["partner_attribution"] = one(c["partner_text"])
        out.append(c)
        if on_case is not None:
            on_case()
    return out
