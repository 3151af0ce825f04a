"""Counterfactual variants of text pairs: one swap on both texts, in the single-text order."""

from __future__ import annotations

import pytest

from debias.identity.lexicon import AXES, load_lexicon
from debias.identity.swaps import available_swap_axes, counterfactual_variants, load_swaps
from debias.serving.counterfactual import pair_variants


@pytest.fixture(scope="module")
def tools():
    return {"lexicon": load_lexicon(list(AXES)), "table": load_swaps([a for a in AXES if a in available_swap_axes()])}


def test_a_pair_whose_second_text_names_nobody_varies_like_the_first_text(tools):
    text = "My sister and her husband are Muslim."
    single = counterfactual_variants(text, **tools)
    paired = pair_variants(text, "they fixed a car", **tools)
    assert len(single) > 1
    assert [{k: v[k] for k in ("axis", "source_group", "target_group", "text")} for v in paired] == single
    assert {v["text_pair"] for v in paired} == {"they fixed a car"}


def test_both_texts_get_the_same_swap(tools):
    paired = pair_variants("the woman fixed the car", "a man fixed a car", **tools)
    by_target = {(v["source_group"], v["target_group"]): v for v in paired}
    # female -> male rewrites the premise and leaves the hypothesis's "man" alone, and back
    assert by_target[("female", "male")]["text"] == "the man fixed the car"
    assert by_target[("female", "male")]["text_pair"] == "a man fixed a car"
    assert by_target[("male", "female")]["text_pair"] == "a woman fixed a car"
    assert by_target[("male", "female")]["text"] == "the woman fixed the car"
    # a mention in either text only: each variant changes at least one side
    assert all(v["text"] != "the woman fixed the car" or v["text_pair"] != "a man fixed a car" for v in paired)


def test_identical_texts_vary_together(tools):
    t = "The Christian girl met the old man."
    assert [(v["text"], v["text_pair"]) for v in pair_variants(t, t, **tools)] == \
        [(v["text"], v["text"]) for v in counterfactual_variants(t, **tools)]
    with pytest.raises(TypeError, match="str pair"):
        pair_variants(t, None, **tools)
