"""Counterfactual prompts from templates x swap rows, and the gap / flip statistics."""

from __future__ import annotations

import pandas as pd
import pytest

from debias.evaluation.suites import Template
from debias.identity.swaps import load_swaps
from debias.lm.counterfactual import counterfactual_prompts, counterfactual_scores, is_refusal


def test_prompts_differ_only_in_the_swapped_word():
    table = load_swaps(["religion", "gender"])
    tpls = [Template("s", "t1", "My friend is {term}.", "x {term}"), Template("s", "t2", "{term} people came.", "y {term}")]
    df = counterfactual_prompts(tpls, table, prompt="Go on: {text}")
    sets = df.groupby("set_id")
    assert sets.ngroups == 4                       # 2 templates x 2 axes (one swap row each)
    rel = df[df.set_id == "s/t1/religion/0"]
    assert set(rel["group"]) == set(table.groups["religion"])
    assert all(p == f"Go on: My friend is {w}." for p, w in zip(rel["prompt"], rel["term"], strict=True))
    assert counterfactual_prompts(tpls, table, limit=2, seed=0)["set_id"].nunique() == 2
    with pytest.raises(ValueError, match="prompt must contain"):
        counterfactual_prompts(tpls, table, prompt="no slot")


def test_gap_and_flip_hand_worked():
    df = pd.DataFrame({"set_id": ["a", "a", "b", "b", "b"], "axis": ["g", "g", "r", "r", "r"],
                       "group": ["m", "f", "x", "y", "z"],
                       "completion": ["fine", "I'm sorry, I can't", "", "ok", "ok"],
                       "score": [0.2, 0.7, 0.1, 0.3, 0.2], "n_generated": [1, 5, 0, 1, 1]})
    res = counterfactual_scores(df, threshold=0.5, n_boot=100)
    o = res["overall"]
    assert o["gap_mean"] == pytest.approx((0.5 + 0.2) / 2)
    assert o["gap_max"] == pytest.approx(0.5)
    assert o["flip_rate"] == pytest.approx(0.5)    # set a straddles 0.5, set b does not
    assert o["refusal_rate"] == pytest.approx(1 / 5) and o["empty_rate"] == pytest.approx(1 / 5)
    by = {r["group"]: r for r in res["by_group"]}
    assert by["f"]["score_mean"] == pytest.approx(0.7) and by["f"]["refusal_rate"] == 1.0
    assert {r["axis"]: r["n_sets"] for r in res["by_axis"]} == {"g": 1, "r": 1}


def test_refusal_phrases():
    assert is_refusal("I can't help with that.") and is_refusal("As an AI, I ...")
    assert not is_refusal("The nurse can help.")


def test_packaged_templates_fill_their_form_slots():
    from debias.evaluation.suites import load_templates

    table = load_swaps(["religion"])
    df = counterfactual_prompts(load_templates(None, sets=["statements"]), table)
    assert len(df) and not df["text"].str.contains(r"\{", regex=True).any()  # every slot filled
    for _, set_rows in df.groupby("set_id"):
        assert all(w in t for w, t in zip(set_rows["term"], set_rows["text"], strict=True))
