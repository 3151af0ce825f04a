"""Closed-form intervals against independent oracles (Newcombe 1998 Table II, scipy, statsmodels,
a direct DeLong), and what every caller sees: in range, containing the estimate, never
zero-width at 0 or 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from metrics_data import random_predictions
from scipy import stats
from sklearn.metrics import roc_auc_score

from debias.metrics import (
    bias_auc,
    counterfactual_metrics,
    disparities,
    equalized_odds_difference,
    evaluate,
    fairness_summary,
)
from debias.metrics.intervals import (
    auc_interval,
    extremum_interval,
    mover_difference,
    mover_ratio,
    wilson_interval,
    z_value,
)


def _statsmodels_2indep():
    sm = pytest.importorskip("statsmodels.stats.proportion",
                             reason="statsmodels (the test extra) is the oracle for two-proportion intervals")
    return sm.confint_proportions_2indep


def test_wilson_matches_scipy():
    for n in (1, 7, 38, 250):
        k = np.arange(n + 1)
        lo, hi = wilson_interval(k, n)
        for kk in k:
            ci = stats.binomtest(int(kk), n).proportion_ci(confidence_level=0.95, method="wilson")
            assert lo[kk] == pytest.approx(ci.low, abs=1e-12) and hi[kk] == pytest.approx(ci.high, abs=1e-12)
    assert wilson_interval(0, 38)[1] == pytest.approx(0.0918, abs=1e-4)  # the FPR 0/38
    assert np.isnan(wilson_interval(0, 0)[0])


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score, no
# continuity correction): the published 95% limits, to the 4 decimals printed there
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize("counts,published", NEWCOMBE_TABLE_II)
def test_mover_difference_reproduces_newcombe_table_ii(counts, published):
    k1, n1, k2, n2 = counts
    (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)
    lo, hi = mover_difference(k1 / n1, l1, u1, k2 / n2, l2, u2)
    assert (round(float(lo), 4), round(float(hi), 4)) == published


def test_newcombe_difference_matches_statsmodels():
    confint_proportions_2indep = _statsmodels_2indep()

    for k1, n1, k2, n2 in ((5, 40, 12, 50), (0, 38, 3, 20), (10, 10, 0, 15), (1, 200, 2, 300)):
        (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)
        lo, hi = mover_difference(k1 / n1, l1, u1, k2 / n2, l2, u2)
        ref = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        assert (float(lo), float(hi)) == pytest.approx(ref, abs=1e-10)


def test_mover_ratio_is_symmetric_and_near_the_score_interval():
    confint_proportions_2indep = _statsmodels_2indep()

    for k1, n1, k2, n2 in ((5, 40, 12, 50), (30, 100, 45, 120), (3, 20, 9, 25)):
        (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)
        lo, hi = mover_ratio(k1 / n1, l1, u1, k2 / n2, l2, u2)
        ilo, ihi = mover_ratio(k2 / n2, l2, u2, k1 / n1, l1, u1)
        assert float(lo) == pytest.approx(1 / float(ihi)) and float(hi) == pytest.approx(1 / float(ilo))
        ref = confint_proportions_2indep(k1, n1, k2, n2, method="score", compare="ratio")
        assert np.log([lo, hi]).ravel() == pytest.approx(np.log(ref), abs=0.08)  # a different, score method
    # no event in the numerator: [0, u1 / l2], not a point
    (l1, u1), (l2, u2) = wilson_interval(0, 30), wilson_interval(10, 30)
    lo, hi = mover_ratio(0.0, l1, u1, 1 / 3, l2, u2)
    assert float(lo) == 0 and float(hi) > 0.2


def _delong_direct(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """AUC and DeLong's standard error from rows, pair by pair (O(P N))."""
    cmp = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc = cmp.mean()
    v10, v01 = cmp.mean(1), cmp.mean(0)
    return auc, float(np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)))


def test_auc_interval_is_delong_on_the_logit_scale():
    rng = np.random.default_rng(0)
    B = 64
    for n_pos, n_neg in ((12, 30), (80, 60)):
        pos = rng.integers(20, 64, n_pos)  # scores on the bin grid: the histogram AUC is exact
        neg = rng.integers(0, 44, n_neg)
        auc, se = _delong_direct(pos.astype(float), neg.astype(float))
        assert auc == pytest.approx(roc_auc_score(np.r_[np.ones(n_pos), np.zeros(n_neg)], np.r_[pos, neg]))
        lo, hi = auc_interval(np.bincount(pos, minlength=B), np.bincount(neg, minlength=B))
        logit, h = np.log(auc / (1 - auc)), z_value(0.95) * se / (auc * (1 - auc))
        assert float(lo) == pytest.approx(1 / (1 + np.exp(-(logit - h))), abs=1e-10)
        assert float(hi) == pytest.approx(1 / (1 + np.exp(-(logit + h))), abs=1e-10)


def test_auc_interval_at_perfect_separation_is_in_range_and_not_a_point():
    pos, neg = np.zeros(16), np.zeros(16)
    pos[12:], neg[:4] = 5, 7  # 20 positives above 28 negatives
    lo, hi = auc_interval(pos, neg)
    assert float(hi) == 1.0 and float(lo) == pytest.approx(0.025 ** (1 / 20))


def test_extremum_interval_contains_the_estimate_and_is_the_groups_own_when_separated():
    est = np.array([0.2, 0.5, 0.9])

    def lim(c):
        w = z_value(c) * 0.02
        return est - w, est + w

    e, lo, hi = extremum_interval(est, lim, kind="max")
    assert (e, lo, hi) == pytest.approx((0.9, 0.9 - 0.02 * z_value(0.95), 0.9 + 0.02 * z_value(0.95)))
    tied = np.array([0.5, 0.5, 0.5])
    e, lo, hi = extremum_interval(tied, lambda c: (tied - z_value(c) * 0.02, tied + z_value(c) * 0.02), kind="min")
    # three candidates: the upper side is Bonferroni-adjusted, the lower one the groups' own bound
    assert lo == pytest.approx(0.5 - 0.02 * z_value(0.95)) and hi == pytest.approx(0.5 + 0.02 * z_value(1 - 0.05 / 3))


def _small_group_frame():
    """Group "a": 38 negatives, none flagged, positives perfectly separated (AUC 1)."""
    rng = np.random.default_rng(1)
    a = pd.DataFrame({"y_true": [0] * 38 + [1] * 12, "y_score": np.r_[rng.uniform(0, 0.4, 38), rng.uniform(0.6, 1, 12)]})
    b = pd.DataFrame({"y_true": rng.integers(0, 2, 400)})
    b["y_score"] = np.clip(rng.normal(0.35 + 0.3 * b["y_true"], 0.2), 0, 1)
    df = pd.concat([a.assign(groups=[["a"]] * len(a)), b.assign(groups=[["b"]] * len(b))], ignore_index=True)
    df["y_pred"] = (df["y_score"] >= 0.5).astype(int)
    return df


def test_group_intervals_are_wilson_of_the_counts_and_in_range():
    df = _small_group_frame()
    t = evaluate(df, ci=True, n_boot=200, seed=0, min_group_size=0).frame.set_index("group")
    assert t.loc["a", "fpr"] == 0 and t.loc["a", "fpr_hi"] == pytest.approx(0.0918, abs=1e-4)
    # oracle: counts from pandas, interval from scipy
    ex = df.explode("groups")
    for g in ("a", "b"):
        d = ex[ex["groups"] == g]
        for m, mask, num in (("fpr", d["y_true"] == 0, d["y_pred"] == 1), ("tpr", d["y_true"] == 1, d["y_pred"] == 1),
                             ("selection_rate", d["y_true"] >= 0, d["y_pred"] == 1)):
            ci = stats.binomtest(int((mask & num).sum()), int(mask.sum())).proportion_ci(method="wilson")
            assert (t.loc[g, f"{m}_lo"], t.loc[g, f"{m}_hi"]) == pytest.approx((ci.low, ci.high), abs=1e-12), (g, m)
    assert t.loc["a", "roc_auc"] == 1.0 and t.loc["a", "roc_auc_hi"] == 1.0 and t.loc["a", "roc_auc_lo"] < 1
    ok = t["roc_auc"].notna()
    assert ((t.loc[ok, "roc_auc_lo"] >= 0) & (t.loc[ok, "roc_auc_hi"] <= 1)).all()
    ba = bias_auc(df, n_boot=50).set_index("group")
    for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        sel = ba[f"{m}_lo"].notna()
        assert ((ba.loc[sel, f"{m}_lo"] <= ba.loc[sel, m]) & (ba.loc[sel, m] <= ba.loc[sel, f"{m}_hi"])).all(), m
        assert ((ba.loc[sel, f"{m}_lo"] >= 0) & (ba.loc[sel, f"{m}_hi"] <= 1)).all(), m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_interval_contains_its_estimate_and_lies_in_range(seed):
    df = random_predictions(500, seed=seed)
    ev = evaluate(df, ci=True, n_boot=200, seed=seed, min_group_size=0)
    t = ev.frame
    for m in ("selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy", "f1", "roc_auc", "brier", "ece"):
        ok = t[m].notna()
        assert (t.loc[ok, f"{m}_lo"] <= t.loc[ok, m] + 1e-12).all() and (t.loc[ok, m] <= t.loc[ok, f"{m}_hi"] + 1e-12).all(), m
        assert (t.loc[ok, f"{m}_lo"] >= 0).all() and (t.loc[ok, f"{m}_hi"] <= 1).all(), m
    d = disparities(ev).set_index("metric")
    for k in ("min_value", "max_value", "difference", "ratio", "difference_to_overall", "ratio_to_overall"):
        sel = d[k].notna()
        assert (d.loc[sel, f"{k}_lo"] <= d.loc[sel, k] + 1e-12).all(), k
        assert (d.loc[sel, k] <= d.loc[sel, f"{k}_hi"] + 1e-12).all(), k
    for k in ("difference", "ratio", "ratio_to_overall", "difference_to_overall"):
        assert (d[f"{k}_lo"].dropna() >= 0).all()
    for k in ("ratio", "ratio_to_overall"):
        assert (d[f"{k}_hi"].dropna() <= 1).all()
    c = equalized_odds_difference(ev, min_group_size=0)
    assert c.ci_low <= c.value <= c.ci_high


def test_summary_keys_are_stable():
    s = fairness_summary(random_predictions(400, seed=3), n_boot=50, seed=0, min_group_size=0)
    g = s["by_group"][0]
    assert {"selection_rate_lo", "selection_rate_hi", "fpr_lo", "roc_auc_hi", "f1_lo"} <= set(g)
    assert {"difference_lo", "difference_hi", "ratio_lo", "ratio_hi"} <= set(s["disparities"][0])
    assert {"subgroup_auc_lo", "bnsp_auc_hi"} <= set(s["bias_auc"][0])
    for c in s["criteria"].values():
        assert c["ci_low"] is None or c["ci_low"] <= c["value"] <= c["ci_high"]


def test_flip_rate_interval_is_wilson_even_with_no_flips():
    df = pd.DataFrame({"pair_id": np.repeat(np.arange(40), 2), "y_score": np.tile([0.1, 0.2], 40)})
    r = counterfactual_metrics(df, ci=True, n_boot=50, seed=0)
    assert r.flip_rate == 0 and r.flip_rate_ci == pytest.approx([float(x) for x in wilson_interval(0, 40)])
    assert r.flip_rate_ci[1] > 0.05


def test_worst_bias_auc_contains_its_estimate_and_is_the_worst_groups_own_when_it_stands_apart():
    from debias.metrics import worst_bias_auc

    rng = np.random.default_rng(5)
    parts = []
    for g, n, shift in (("weak", 120, 0.05), ("b", 600, 0.45), ("c", 600, 0.45)):
        y = rng.integers(0, 2, n)
        parts.append(pd.DataFrame({"y_true": y, "y_score": np.clip(rng.normal(0.3 + shift * y, 0.15), 0, 1),
                                   "groups": [[g]] * n}))
    df = pd.concat(parts, ignore_index=True)
    w = worst_bias_auc(df, min_group_size=50)
    ba = bias_auc(df, n_boot=1).set_index("group")
    assert w["subgroup_auc"]["group"] == "weak"
    assert w["subgroup_auc"]["value"] == pytest.approx(ba.loc[["weak", "b", "c"], "subgroup_auc"].min())
    assert (w["subgroup_auc"]["lo"], w["subgroup_auc"]["hi"]) == pytest.approx(
        (ba.loc["weak", "subgroup_auc_lo"], ba.loc["weak", "subgroup_auc_hi"]))
    for m, r in w.items():
        assert r["lo"] <= r["value"] <= r["hi"], m
