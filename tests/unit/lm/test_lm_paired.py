"""Paired before/after comparisons: per-item outcomes by hand, point values equal to the audit's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.lm.bbq import bbq_scores
from debias.lm.paired import bbq_outcomes, cf_outcomes, crows_outcomes, paired_difference


def _crows(wins: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"c/{i}" for i in range(len(wins))], "stereo_preferred": wins})


def test_crows_outcomes_by_hand():
    scored = pd.DataFrame({"suite": "crows_pairs", "item_id": ["a", "a", "b", "b", "c", "c"],
                           "option": ["stereo", "anti"] * 3, "logprob_sum": [-1.0, -2.0, -3.0, -2.0, -4.0, -4.0]})
    assert crows_outcomes(scored)["stereo_preferred"].tolist() == [1.0, 0.0, 0.5]


def test_paired_difference_by_hand_and_identity():
    before, after = _crows([1, 0, 1, 0]), _crows([1, 1, 1, 0])
    d = paired_difference(before, after, "stereotype_score", n_boot=500)
    assert (d["before"], d["after"], d["diff"], d["n"]) == (50.0, 75.0, 25.0, 4)
    # the per-item differences are [0, 1, 0, 0]: no replicate can go below 0
    assert 0.0 <= d["ci_low"] <= 25.0 <= d["ci_high"] <= 100.0
    same = paired_difference(before, before, "stereotype_score", n_boot=200)
    assert same["diff"] == same["ci_low"] == same["ci_high"] == 0.0
    # only items in both runs count
    assert paired_difference(before, after.iloc[:2], "stereotype_score", n_boot=0)["n"] == 2
    with pytest.raises(ValueError, match="unknown statistic"):
        paired_difference(before, after, "ss")


def _bbq_items(n: int, rng) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"q{i}" for i in range(n)], "category": "Age",
                         "context_condition": rng.choice(["ambig", "disambig"], n),
                         "question_polarity": rng.choice(["neg", "nonneg"], n), "label": rng.integers(0, 3, n),
                         "target_loc": rng.integers(0, 3, n), "unknown_loc": rng.integers(0, 3, n),
                         "ans0": "the old man", "ans1": "the boy", "ans2": "unknown"})


def test_bbq_point_values_equal_the_audits_scores():
    rng = np.random.default_rng(0)
    items = _bbq_items(200, rng)
    before = items.assign(pred=rng.integers(-1, 3, 200))
    after = items.assign(pred=rng.integers(0, 3, 200))
    ref = bbq_scores(before, n_boot=0)[0]
    for stat in ("acc_ambig", "acc_disambig", "s_amb", "s_dis", "unparsed_rate"):
        d = paired_difference(before, after, stat, n_boot=100)
        assert d["before"] == pytest.approx(ref[stat]), stat
        assert d["diff"] == pytest.approx(d["after"] - d["before"]) and d["ci_low"] <= d["diff"] <= d["ci_high"]


def test_bbq_outcomes_from_scored_options_and_generations():
    items = _bbq_items(2, np.random.default_rng(1))
    scored = pd.DataFrame({"suite": "bbq", "item_id": ["q0"] * 3 + ["q1"] * 3, "option": ["0", "1", "2"] * 2,
                           "logprob_sum": [-3.0, -1.0, -2.0, -1.0, -5.0, -4.0]})
    generated = pd.DataFrame({"suite": "bbq", "id": ["q0", "q1"], "completion": ["C.", "no idea"]})
    out = bbq_outcomes(items, scored, generated)
    assert out["bbq_mc"]["pred"].tolist() == [1, 0] and out["bbq_generate"]["pred"].tolist() == [2, -1]


def test_cf_outcomes_gap_and_flip_per_set():
    gen = pd.DataFrame({"suite": "counterfactual", "id": ["s/1/religion/0/christian", "s/1/religion/0/muslim",
                                                          "s/2/gender/2/male", "s/2/gender/2/female", "s/3/x/0/only"],
                        "classifier_score": [0.1, 0.7, 0.2, 0.3, 0.9]})
    out = cf_outcomes(gen)
    assert out["item_id"].tolist() == ["s/1/religion/0", "s/2/gender/2"]  # a set of one has no gap
    np.testing.assert_allclose(out["gap"], [0.6, 0.1])
    assert out["flip"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="classifier_score"):
        cf_outcomes(gen.drop(columns="classifier_score"))
