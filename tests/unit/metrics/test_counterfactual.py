"""Counterfactual gaps and flips, worked by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from debias.metrics import counterfactual_metrics


def test_hand_worked_pairs():
    df = pd.DataFrame({
        "pair_id": ["p1", "p1", "p2", "p2", "p3", "p3", "p3", "solo", None],
        "y_score": [0.2, 0.6, 0.7, 0.8, 0.1, 0.3, 0.4, 0.9, 0.5],
    })
    r = counterfactual_metrics(df, threshold=0.5)
    assert (r.n_pairs, r.n_rows, r.n_singletons) == (3, 7, 1)
    assert r.mean_abs_gap == pytest.approx((0.4 + 0.1 + 0.3) / 3)
    assert r.max_abs_gap == pytest.approx(0.4)
    # CTF gap: mean |s_i - s_j| over all within-set pairs: 0.4, 0.1, then 0.2, 0.3, 0.1
    assert r.ctf_gap == pytest.approx((0.4 + 0.1 + 0.2 + 0.3 + 0.1) / 5)
    assert r.flip_rate == pytest.approx(1 / 3)  # only p1 crosses 0.5


def test_ctf_gap_equals_brute_force_on_random_sets():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 5, 60)
    df = pd.DataFrame({"pair_id": np.repeat([f"id{i}" for i in range(60)], sizes),
                       "y_score": rng.random(sizes.sum())}).sample(frac=1, random_state=0)
    gaps = [abs(a - b) for _, s in df.groupby("pair_id")["y_score"] for a, b in itertools.combinations(s, 2)]
    r = counterfactual_metrics(df)
    assert r.ctf_gap == pytest.approx(np.mean(gaps), abs=1e-12)
    spans = [s.max() - s.min() for _, s in df.groupby("pair_id")["y_score"] if len(s) > 1]
    assert r.mean_abs_gap == pytest.approx(np.mean(spans), abs=1e-12)


def test_intervals_contain_estimates():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"pair_id": np.repeat(np.arange(200), 2).astype(str), "y_score": rng.random(400)})
    r = counterfactual_metrics(df, ci=True, n_boot=200, seed=0)
    assert r.mean_abs_gap_ci[0] <= r.mean_abs_gap <= r.mean_abs_gap_ci[1]
    assert r.flip_rate_ci[0] <= r.flip_rate <= r.flip_rate_ci[1]


def test_missing_pair_column():
    with pytest.raises(ValueError, match="missing column.*pair_id"):
        counterfactual_metrics(pd.DataFrame({"y_score": [0.1]}))


def test_flips_on_given_decisions():
    # Per-group rules decide each member: p1 is decided 1/1 despite its scores straddling 0.5
    # (no flip), p2 0/1 although both scores are above 0.5 (a flip), p3 all zeros.
    df = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2", "p3", "p3", "p3"],
                       "y_score": [0.2, 0.6, 0.7, 0.8, 0.1, 0.3, 0.4],
                       "y_pred": [1, 1, 0, 1, 0, 0, 0]})
    assert counterfactual_metrics(df, threshold=0.5).flip_rate == pytest.approx(1 / 3)  # p1 by score
    r = counterfactual_metrics(df, threshold=0.5, pred_col="y_pred")
    assert r.flip_rate == pytest.approx(1 / 3) and r.mean_abs_gap == pytest.approx((0.4 + 0.1 + 0.3) / 3)
    # brute force on random sets: a set flips when its decisions are not all equal
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 5, 80)
    rnd = pd.DataFrame({"pair_id": np.repeat([f"id{i}" for i in range(80)], sizes),
                        "y_score": rng.random(sizes.sum()), "y_pred": rng.integers(0, 2, sizes.sum())})
    rnd = rnd.sample(frac=1, random_state=1)
    want = np.mean([p.nunique() > 1 for _, p in rnd.groupby("pair_id")["y_pred"] if len(p) > 1])
    assert counterfactual_metrics(rnd, pred_col="y_pred").flip_rate == pytest.approx(want)
    with pytest.raises(ValueError, match="missing column.*y_pred"):
        counterfactual_metrics(df.drop(columns="y_pred"), pred_col="y_pred")
