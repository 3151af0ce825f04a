"""The unintended-bias AUC family against a direct implementation of Borkan et al. (2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from metrics_data import random_predictions
from sklearn.metrics import roc_auc_score

from debias.metrics import GroupStats, auc_exact, auc_from_histograms, bias_auc, final_bias_metric, power_mean

NAMES = ("asian", "black", "muslim", "women")


def _pairwise_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(tie), over all pairs."""
    d = pos[:, None] - neg[None, :]
    return float(((d > 0) + 0.5 * (d == 0)).mean())


def _paper(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Borkan et al. 2019, section 4, written from the definitions."""
    known = df["groups"].notna()
    rows = []
    for g in NAMES:
        in_g = known & df["groups"].map(lambda x, g=g: x is not None and g in x)
        bg = known & ~in_g
        pos, neg = df["y_true"] == 1, df["y_true"] == 0
        s = df["y_score"]
        rows.append({"group": g,
                     "subgroup_auc": _pairwise_auc(s[in_g & pos].to_numpy(), s[in_g & neg].to_numpy()),
                     "bpsn_auc": _pairwise_auc(s[bg & pos].to_numpy(), s[in_g & neg].to_numpy()),
                     "bnsp_auc": _pairwise_auc(s[in_g & pos].to_numpy(), s[bg & neg].to_numpy())})
    t = pd.DataFrame(rows)
    overall = _pairwise_auc(df.y_score[df.y_true == 1].to_numpy(), df.y_score[df.y_true == 0].to_numpy())
    pm = [np.mean(t[m].to_numpy() ** -5.0) ** (-1 / 5) for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
    return t, 0.25 * overall + 0.75 * float(np.mean(pm))


@pytest.mark.parametrize("seed", [0, 1])
def test_bias_auc_equals_paper_definitions(seed):
    df = random_predictions(500, seed=seed)
    df["y_score"] = df["y_score"].round(2)  # ties on purpose
    ours = bias_auc(df).set_index("group")
    paper, final = _paper(df)
    for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        np.testing.assert_allclose(ours.loc[list(NAMES), m], paper[m], rtol=0, atol=1e-12)
    assert abs(final_bias_metric(df) - final) < 1e-12


def test_histogram_auc_within_stated_bound_and_exact_on_grid():
    df = random_predictions(800, seed=2)
    exact = bias_auc(df).set_index("group")
    hist = bias_auc(GroupStats.from_batch(df, score_bins=64)).set_index("group")
    for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        g = list(NAMES)
        assert ((hist.loc[g, m] - exact.loc[g, m]).abs() <= hist.loc[g, f"{m}_error_bound"] + 1e-12).all()
        assert (hist.loc[g, f"{m}_error_bound"] > 0).all()
    # scores on the bin grid (k / 64 + half a bin): no pair shares a bin unless tied -> exact
    grid = df.assign(y_score=(np.floor(df.y_score * 64).clip(0, 63) + 0.5) / 64)
    e, h = bias_auc(grid).set_index("group"), bias_auc(GroupStats.from_batch(grid, score_bins=64)).set_index("group")
    np.testing.assert_allclose(h.loc[list(NAMES), "bpsn_auc"], e.loc[list(NAMES), "bpsn_auc"], atol=1e-12)
    assert abs(final_bias_metric(GroupStats.from_batch(grid, score_bins=64)) - final_bias_metric(grid)) < 1e-12


def test_auc_exact_matches_sklearn_weighted():
    rng = np.random.default_rng(3)
    y, s, w = rng.integers(0, 2, 300), rng.random(300).round(1), rng.uniform(0.1, 2, 300)
    got = auc_exact(s[y == 1], s[y == 0], w[y == 1], w[y == 0])
    assert abs(got - roc_auc_score(y, s, sample_weight=w)) < 1e-12


def test_hist_auc_hand_example():
    pos = np.array([0, 1, 2.0])  # bins 0..2
    neg = np.array([2, 1, 0.0])
    auc, bound = auc_from_histograms(pos, neg)
    # pairs: pos bin1 vs neg bin0 (1 pair) win; pos bin2 vs neg bins 0,1 (2*2+2*1=... ) see below
    wins = 1 * 2 + 2 * (2 + 1)  # pos in bin1 beats 2 negs in bin0; pos in bin2 beats 3 negs
    ties = 1 * 1 + 2 * 0  # pos bin1 with neg bin1
    assert auc == pytest.approx((wins + 0.5 * ties) / 9)
    assert bound == pytest.approx(0.5 * ties / 9)


def test_power_mean():
    assert power_mean([0.8, 0.8]) == pytest.approx(0.8)
    assert power_mean([0.5, 1.0], p=-5) == pytest.approx(((0.5**-5 + 1) / 2) ** (-1 / 5))
    assert power_mean([0.9, np.nan]) == pytest.approx(0.9)
    assert power_mean([0.5, 1.0], p=-5) < np.mean([0.5, 1.0])  # p < 0 weighs the worst group


def test_bias_auc_needs_scores():
    df = pd.DataFrame({"y_true": [0, 1], "y_pred": [0, 1], "groups": [["a"], ["a"]]})
    with pytest.raises(ValueError, match="y_score"):
        bias_auc(df)


def _row_bootstrap(df: pd.DataFrame, g: str, n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """The oracle: resample rows (within the group and within its background, as the histogram
    method does) and recompute each AUC exactly with scikit-learn."""
    rng = np.random.default_rng(seed)
    in_g = df["groups"].map(lambda x: g in x).to_numpy()
    sub, bg = df[in_g], df[~in_g]
    reps = {"subgroup_auc": [], "bpsn_auc": [], "bnsp_auc": []}
    for _ in range(n_boot):
        s = sub.iloc[rng.integers(0, len(sub), len(sub))]
        b = bg.iloc[rng.integers(0, len(bg), len(bg))]
        sp, sn, bp, bn = s[s["y_true"] == 1], s[s["y_true"] == 0], b[b["y_true"] == 1], b[b["y_true"] == 0]
        for name, pos, neg in (("subgroup_auc", sp, sn), ("bpsn_auc", bp, sn), ("bnsp_auc", sp, bn)):
            y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            reps[name].append(roc_auc_score(y, np.r_[pos["y_score"], neg["y_score"]]))
    return {k: tuple(np.percentile(v, [2.5, 97.5])) for k, v in reps.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_bias_auc_intervals_agree_with_an_exact_row_bootstrap(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    g = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.15, 0.25, 0.6])
    y = (rng.random(n) < np.where(g == "a", 0.45, 0.3)).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y + np.where(g == "a", 0.1, 0.0), 0.2), 0, 1)
    df = pd.DataFrame({"y_true": y, "y_score": s, "groups": [[x] for x in g]})
    t = bias_auc(df, n_boot=400, seed=seed).set_index("group")
    for grp in ("a", "b"):
        oracle = _row_bootstrap(df, grp, 300, seed + 10)
        for name, (lo, hi) in oracle.items():
            assert t.loc[grp, f"{name}_lo"] <= t.loc[grp, name] <= t.loc[grp, f"{name}_hi"]
            # two Monte Carlo interval estimates of the same quantity: close, not equal
            assert t.loc[grp, f"{name}_lo"] == pytest.approx(lo, abs=0.015), (grp, name)
            assert t.loc[grp, f"{name}_hi"] == pytest.approx(hi, abs=0.015), (grp, name)
    assert np.isnan(t.loc["overall"].get("bpsn_auc_lo", np.nan))


def test_bias_auc_intervals_from_stats_equal_from_rows():
    df = random_predictions(800, seed=5)
    a = bias_auc(df, n_boot=50, seed=1)
    b = bias_auc(GroupStats.from_batch(df), n_boot=50, seed=1)
    cols = [c for c in a.columns if c.endswith(("_lo", "_hi"))]
    assert cols and len(cols) == 6
    # same histograms (same DeLong variance); they differ only by the point values they are
    # centred on (exact vs 4096 bins), which differ by at most the histogram's error bound
    a, b = a[a["group"] != "overall"], b[b["group"] != "overall"]
    for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        for t in (a, b):
            assert ((t[f"{m}_lo"] <= t[m]) & (t[m] <= t[f"{m}_hi"])).all(), m
        np.testing.assert_allclose(a[f"{m}_lo"], b[f"{m}_lo"], atol=2e-4)
        np.testing.assert_allclose(a[f"{m}_hi"], b[f"{m}_hi"], atol=2e-4)
