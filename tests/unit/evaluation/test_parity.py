"""debias.evaluation.parity against an independent computation (scikit-learn, plain numpy) on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from debias.evaluation.parity import (
    headline_metrics,
    paired_bootstrap,
    parity_gate,
    score_drift,
    suite_parity,
)

GROUPS = ["female", "male", "muslim", "gay"]


def _frame(n: int = 600, seed: int = 0, pairs: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = [[g for g in GROUPS if rng.random() < 0.3] for _ in range(n)]
    a = np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1)
    b = np.clip(a + rng.normal(0, 0.01, n), 0, 1)
    df = pd.DataFrame({"y_true": y, "groups": groups, "score_a": a, "score_b": b})
    if pairs:
        df["pair_id"] = [f"p{i // 2}" for i in range(n)]
    return df


def _oracle(df: pd.DataFrame, col: str, *, threshold: float, min_group_size: int) -> dict[str, float]:
    y, s = df["y_true"].to_numpy(), df[col].to_numpy()
    out = {"auc": roc_auc_score(y, s)}
    counts = {g: sum(g in gs for gs in df["groups"]) for g in GROUPS}
    sub, bpsn, bnsp, fprs = [], [], [], []
    for g in [g for g in GROUPS if counts[g] >= min_group_size]:
        m = np.array([g in gs for gs in df["groups"]])
        sub.append(roc_auc_score(y[m], s[m]))
        k = (m & (y == 0)) | (~m & (y == 1))
        bpsn.append(roc_auc_score(y[k], s[k]))
        k = (m & (y == 1)) | (~m & (y == 0))
        bnsp.append(roc_auc_score(y[k], s[k]))
        neg = m & (y == 0)
        if neg.sum() >= min_group_size:
            fprs.append(np.mean(s[neg] >= threshold))
    out.update(worst_subgroup_auc=min(sub), worst_bpsn_auc=min(bpsn), worst_bnsp_auc=min(bnsp),
               fpr_gap=max(fprs) - min(fprs))
    return out


def test_headline_metrics_match_sklearn():
    df = _frame()
    got = headline_metrics(df, score_col="score_a", threshold=0.5, min_group_size=30)
    want = _oracle(df, "score_a", threshold=0.5, min_group_size=30)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


def test_counterfactual_flip_rate_by_hand():
    df = pd.DataFrame({"pair_id": ["a", "a", "b", "b", "c", "c"],
                       "y_score": [0.4, 0.6, 0.1, 0.2, 0.9, 0.3]})
    m = headline_metrics(df, threshold=0.5)
    assert m["cf_flip_rate"] == pytest.approx(2 / 3)
    assert m["cf_gap_mean"] == pytest.approx((0.2 + 0.1 + 0.6) / 3)


def test_score_drift_by_hand():
    d = score_drift([0.1, 0.49, 0.8, 0.3], [0.1, 0.51, 0.7, 0.3], threshold=0.5)
    assert d["max_abs_diff"] == pytest.approx(0.1)
    assert d["mean_abs_diff"] == pytest.approx(0.12 / 4)
    assert d["decision_change_rate"] == 0.25
    with pytest.raises(ValueError, match="equal length"):
        score_drift([0.1], [0.1, 0.2])


def test_paired_bootstrap_matches_an_independent_resampling():
    df = _frame(n=300, seed=1)
    n_boot, seed = 40, 7
    t = paired_bootstrap(df, score_a="score_a", score_b="score_b", n_boot=n_boot, seed=seed,
                         min_group_size=30).set_index("metric")
    rng = np.random.default_rng(seed)
    diffs, a_reps = [], []
    for _ in range(n_boot):  # rows are the resampling unit: the same draws, metrics by sklearn
        idx = rng.integers(0, len(df), len(df))
        r = df.iloc[idx]
        a_reps.append(roc_auc_score(r["y_true"], r["score_a"]))
        diffs.append(roc_auc_score(r["y_true"], r["score_b"]) - a_reps[-1])
    assert t.loc["auc", "diff"] == pytest.approx(roc_auc_score(df["y_true"], df["score_b"])
                                                 - roc_auc_score(df["y_true"], df["score_a"]))
    assert t.loc["auc", "diff_lo"] == pytest.approx(np.percentile(diffs, 2.5))
    assert t.loc["auc", "diff_hi"] == pytest.approx(np.percentile(diffs, 97.5))
    assert t.loc["auc", "a_lo"] == pytest.approx(np.percentile(a_reps, 2.5))
    d = np.asarray(diffs)
    assert t.loc["auc", "p_value"] == pytest.approx(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))
    # the paired interval of the difference is narrower than model A's own interval
    assert t.loc["auc", "diff_hi"] - t.loc["auc", "diff_lo"] < t.loc["auc", "a_hi"] - t.loc["auc", "a_lo"]


def test_identical_models_pass_with_zero_difference():
    df = _frame(pairs=True)
    df["score_b"] = df["score_a"]
    out = suite_parity(df, score_a="score_a", score_b="score_a", n_boot=30)
    assert out["passed"] and out["drift"]["max_abs_diff"] == 0
    assert all(r["diff"] == 0 and r["diff_lo"] == 0 for r in out["metrics"])
    assert {"cf_flip_rate", "worst_bpsn_auc", "fpr_gap"} <= {r["metric"] for r in out["metrics"]}


def test_gate_fails_on_a_model_degraded_for_one_group():
    df = _frame(n=800, seed=3)
    m = np.array(["muslim" in gs for gs in df["groups"]])
    bad = df["score_a"].to_numpy().copy()
    bad[m & (df["y_true"].to_numpy() == 0)] += 0.35  # innocent mentions of one group look toxic
    df["score_bad"] = np.clip(bad, 0, 1)
    out = suite_parity(df, score_a="score_a", score_b="score_bad", n_boot=60)
    assert not out["passed"]
    assert {"worst_bpsn_auc", "fpr_gap"} <= set(out["failed"])
    good = suite_parity(df, score_a="score_a", score_b="score_b", n_boot=60)
    assert good["passed"], good["failed"]
    paired = parity_gate(paired_bootstrap(df, score_a="score_a", score_b="score_bad", n_boot=60), rule="paired")
    assert not paired.set_index("metric").loc["worst_bpsn_auc", "passed"]


def test_pairs_are_resampled_whole():
    df = _frame(n=200, pairs=True)
    t = paired_bootstrap(df, score_a="score_a", score_b="score_b", n_boot=20)
    assert np.isfinite(t.set_index("metric").loc["cf_flip_rate", ["a_lo", "a_hi"]].astype(float)).all()


def test_bad_input_messages():
    df = _frame(n=50)
    with pytest.raises(ValueError, match="missing score column 'nope'"):
        paired_bootstrap(df, score_a="score_a", score_b="nope")
    with pytest.raises(ValueError, match="rule must be"):
        parity_gate(paired_bootstrap(df, score_a="score_a", score_b="score_b", n_boot=2), rule="x")


def test_gate_flags_every_worse_metric_but_fails_only_gated_ones():
    # Hand-made table: the rule reads a, its interval and b; nothing else.
    table = pd.DataFrame([
        {"metric": "auc", "higher_is_better": True, "a": 0.90, "a_lo": 0.88, "a_hi": 0.92, "b": 0.87},
        {"metric": "worst_bpsn_auc", "higher_is_better": True, "a": 0.80, "a_lo": 0.75, "a_hi": 0.85, "b": 0.74},
        {"metric": "worst_bnsp_auc", "higher_is_better": True, "a": 0.80, "a_lo": 0.75, "a_hi": 0.85, "b": 0.76},
        {"metric": "fpr_gap", "higher_is_better": False, "a": 0.10, "a_lo": 0.05, "a_hi": 0.15, "b": 0.14},
        {"metric": "cf_gap_mean", "higher_is_better": False, "a": 0.01, "a_lo": 0.005, "a_hi": 0.012, "b": 0.02},
    ])
    out = parity_gate(table).set_index("metric")
    assert out["worse"].to_dict() == {"auc": True, "worst_bpsn_auc": True, "worst_bnsp_auc": False,
                                      "fpr_gap": False, "cf_gap_mean": True}
    assert out["passed"].to_dict() == {"auc": True, "worst_bpsn_auc": False, "worst_bnsp_auc": True,
                                       "fpr_gap": True, "cf_gap_mean": True}
