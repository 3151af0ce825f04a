"""Counterfactual variants of a text pair: one identity swap applied to both texts at once.

A pair (premise / hypothesis, question / passage) is one input: swapping "woman" for "man" in
the premise but not in the hypothesis would ask a different question, not the same question
about another group. So each variant rewrites both texts with the same mapping, as the
preprocess augmentation does for pair corpora. Pure functions over the identity tools.
"""

from __future__ import annotations

from typing import Any

from debias.identity.swaps import counterfactual_variants, rewrite

__all__ = ["pair_variants"]


def pair_variants(text: str, pair: str, *, lexicon: Any, table: Any) -> list[dict[str, str]]:
    """Every one-group rewrite of a pair, applied to both texts.

    A group counts as mentioned if either text mentions it (as in
    :func:`debias.identity.swaps.counterfactual_variants`); a variant is kept when it changes at
    least one of the two texts.

    Returns
    -------
    list of dict
        ``{"axis", "source_group", "target_group", "text", "text_pair"}`` in the order of
        ``counterfactual_variants``: axis (table order), source group, target group (axis order).
    """
    for name, v in (("text", text), ("pair", pair)):
        if not isinstance(v, str):
            raise TypeError(f"pair_variants expects a str {name}; found {type(v).__name__}")
    swaps = {(v["axis"], v["source_group"], v["target_group"])
             for t in (text, pair) for v in counterfactual_variants(t, lexicon=lexicon, table=table)}
    out = []
    for axis, groups in table.groups.items():
        sources = sorted({s for a, s, _ in swaps if a == axis})
        for source in sources:
            for target in groups:
                if (axis, source, target) not in swaps:
                    continue
                out.append({"axis": axis, "source_group": source, "target_group": target,
                            "text": rewrite(text, table, {source: target}),
                            "text_pair": rewrite(pair, table, {source: target})})
    return out
