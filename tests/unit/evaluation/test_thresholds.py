"""Per-group thresholds (Hardt et al. 2016) against Fairlearn's ThresholdOptimizer as the oracle."""

import numpy as np
import pytest
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator

from debias.evaluation.thresholds import (
    POOLED,
    GroupThresholds,
    cells_of,
    decide,
    fit_group_thresholds,
    roc_hull,
)
from debias.schema import NO_GROUP

FAIRLEARN_NAME = {"equal_opportunity": "true_positive_rate_parity",
                  "false_positive_rate_parity": "false_positive_rate_parity",
                  "equalized_odds": "equalized_odds"}


class _Scores(BaseEstimator):
    """A prefit 'estimator' whose prediction is the score column itself."""

    def fit(self, X, y):  # noqa: N803 - sklearn's names
        self.fitted_ = True
        return self

    def predict(self, X):  # noqa: N803
        return np.asarray(X)[:, 0]


def _validation(seed: int, n: int = 3000):
    """Three groups with different score separations and base rates, plus texts with no group."""
    rng = np.random.default_rng(seed)
    names = np.array(["female", "muslim", "gay", ""])
    g = rng.choice(4, size=n, p=[0.35, 0.25, 0.15, 0.25])
    base = np.array([0.3, 0.5, 0.4, 0.2])[g]
    y = (rng.random(n) < base).astype(int)
    shift = np.array([1.8, 0.9, 1.3, 2.2])[g]  # how well scores separate the labels in each group
    bias = np.array([0.0, 0.6, 0.3, 0.0])[g]  # group-level score offset (the bias to remove)
    s = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + shift * (y - 0.5) + bias)))
    groups = [[names[k]] if names[k] else [] for k in g]
    return y, s, groups


def _rates(p: np.ndarray, y: np.ndarray, cells: list[str]) -> dict[str, tuple[float, float]]:
    c = np.asarray(cells, dtype=object)
    return {k: (float(p[(c == k) & (y == 0)].mean()), float(p[(c == k) & (y == 1)].mean()))
            for k in sorted(set(cells))}


@pytest.mark.parametrize("constraint", ["equal_opportunity", "false_positive_rate_parity", "equalized_odds"])
@pytest.mark.parametrize("seed", [0, 1])
def test_thresholds_match_fairlearn_threshold_optimizer(constraint, seed):
    y, s, groups = _validation(seed)
    ours = fit_group_thresholds(y, s, groups, constraint=constraint)
    p_ours = ours.predict_proba(s, groups)
    cells = ours.cells(groups)
    assert POOLED not in set(cells)  # every cell is big enough: one cell per group, as Fairlearn sees it

    oracle = ThresholdOptimizer(estimator=_Scores().fit(None, None), constraints=FAIRLEARN_NAME[constraint],
                                objective="accuracy_score", prefit=True, predict_method="predict",
                                grid_size=1000)
    X = s.reshape(-1, 1)  # noqa: N806
    oracle.fit(X, y, sensitive_features=np.asarray(cells))
    p_oracle = oracle._pmf_predict(X, sensitive_features=np.asarray(cells))[:, 1]

    acc_ours = float(np.mean(np.where(y == 1, p_ours, 1 - p_ours)))
    acc_oracle = float(np.mean(np.where(y == 1, p_oracle, 1 - p_oracle)))
    assert acc_ours == pytest.approx(ours.validation_accuracy, abs=1e-9)
    assert acc_ours == pytest.approx(acc_oracle, abs=1e-3)  # the same optimum, up to each grid's step

    rates = _rates(p_ours, y, cells)
    fpr = [r[0] for r in rates.values()]
    tpr = [r[1] for r in rates.values()]
    if constraint in ("equal_opportunity", "equalized_odds"):
        assert max(tpr) - min(tpr) < 1e-9
    if constraint in ("false_positive_rate_parity", "equalized_odds"):
        assert max(fpr) - min(fpr) < 2e-3  # the grid's step along FPR
    oracle_rates = _rates(p_oracle, y, cells)
    axis = 0 if constraint == "false_positive_rate_parity" else 1
    common_ours = np.mean([r[axis] for r in rates.values()])
    common_oracle = np.mean([r[axis] for r in oracle_rates.values()])
    assert common_ours == pytest.approx(common_oracle, abs=0.02)  # the same operating point


def test_roc_hull_is_concave_and_spans_the_square():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.4).astype(int)
    s = np.round(rng.normal(size=500) + y, 1)  # ties on purpose
    fpr, tpr, thr = roc_hull(y, s)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)
    assert np.all((np.diff(fpr) > 0) | (np.diff(tpr) > 0))  # no repeated vertex
    # upper hull: every turn is clockwise (slopes only fall), so no ROC point lies above it
    cross = np.diff(fpr)[:-1] * np.diff(tpr)[1:] - np.diff(tpr)[:-1] * np.diff(fpr)[1:]
    assert np.all(cross < 0)
    grid_f = [np.mean(s[y == 0] >= t) for t in np.unique(s)]
    grid_t = [np.mean(s[y == 1] >= t) for t in np.unique(s)]
    start = 1 if fpr[1] == 0 else 0  # a vertical first edge: interpolate from its top
    assert np.all(np.asarray(grid_t) <= np.interp(grid_f, fpr[start:], tpr[start:]) + 1e-12)
    for f, t, h in zip(fpr[1:-1], tpr[1:-1], thr[1:-1], strict=True):  # each vertex is a real threshold
        assert f == pytest.approx(np.mean(s[y == 0] >= h)) and t == pytest.approx(np.mean(s[y == 1] >= h))


def test_cells_rule_and_pooled_fallback():
    rarity = {"female": 100, "muslim": 10}
    assert cells_of([[], ["female"], ["female", "muslim"], [None, ""]], rarity=rarity) == [
        NO_GROUP, "female", "muslim", NO_GROUP]
    y, s, groups = _validation(0)
    groups = [*groups, ["deaf"], ["deaf"]]  # a group of two rows: too small for its own cell
    y, s = np.r_[y, 1, 0], np.r_[s, 0.9, 0.1]
    fitted = fit_group_thresholds(y, s, groups, constraint="equal_opportunity")
    assert "deaf" not in fitted.rules and POOLED in fitted.rules
    assert fitted.cells([["deaf"], ["never_seen"], ["female"]]) == [POOLED, POOLED, "female"]


def test_save_load_round_trip_and_seeded_decisions(tmp_path):
    y, s, groups = _validation(1)
    fitted = fit_group_thresholds(y, s, groups, constraint="equalized_odds")
    fitted.save(tmp_path)
    back = GroupThresholds.load(tmp_path)
    assert back is not None and back.constraint == "equalized_odds"
    np.testing.assert_allclose(back.predict_proba(s, groups), fitted.predict_proba(s, groups))
    d1, d2 = back.predict(s, groups, seed=7), fitted.predict(s, groups, seed=7)
    np.testing.assert_array_equal(d1, d2)
    assert GroupThresholds.load(tmp_path / "missing") is None


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="constraint"):
        fit_group_thresholds([0, 1], [0.1, 0.9], [[], []], constraint="demographic_parity")
    with pytest.raises(ValueError, match="one length"):
        fit_group_thresholds([0, 1], [0.1], [[], []])
    with pytest.raises(ValueError, match="both labels"):
        fit_group_thresholds([1, 1], [0.1, 0.9], [[], []])


def test_global_only_rule_and_decide_on_a_suite_frame(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"y_score": [0.2, 0.6, 0.8], "groups": [[], ["female"], ["muslim"]]})
    assert decide(frame, rule=None, threshold=0.7).tolist() == [0, 0, 1]
    rule = GroupThresholds.global_only(0.5, source="F1-best on val")
    rule.save(tmp_path)
    back = GroupThresholds.load(tmp_path)
    assert back.constraint == "none" and back.threshold == 0.5 and back.source == "F1-best on val"
    assert decide(frame, rule=back, threshold=0.9).tolist() == [0, 1, 1]  # the stored rule wins
    y, s, groups = _validation(2)
    fitted = fit_group_thresholds(y, s, groups, constraint="equal_opportunity")
    suite = pd.DataFrame({"y_score": s, "groups": groups})
    d = decide(suite, rule=fitted, threshold=0.5, seed=3)
    assert d.dtype == np.int8 and set(np.unique(d)) <= {0, 1}
    np.testing.assert_array_equal(d, decide(suite, rule=fitted, threshold=0.5, seed=3))
    # the seeded decisions realise the expected rule: per-cell TPRs near equal on 3,000 rows
    cells = np.asarray(fitted.cells(groups))
    tprs = [d[(cells == c) & (y == 1)].mean() for c in fitted.rules if c != POOLED]
    assert max(tprs) - min(tprs) < 0.03  # observed 0.018 for this seed; 0.057 under one threshold
    plain = decide(suite, rule=None, threshold=0.5)
    plain_tprs = [plain[(cells == c) & (y == 1)].mean() for c in fitted.rules if c != POOLED]
    assert max(plain_tprs) - min(plain_tprs) > 0.05


def test_keyed_decisions_follow_the_text_not_the_position():
    from debias.evaluation.thresholds import keyed_uniforms

    u = keyed_uniforms([f"text {i}" for i in range(20_000)], seed=1)
    assert 0.0 <= u.min() and u.max() < 1.0
    # uniform: every decile holds about a tenth (binomial sd ~42 of 2,000)
    counts = np.bincount((u * 10).astype(int), minlength=10)
    assert np.abs(counts - 2000).max() < 200
    assert not np.array_equal(u, keyed_uniforms([f"text {i}" for i in range(20_000)], seed=2))
    y, s, groups = _validation(4)
    fitted = fit_group_thresholds(y, s, groups, constraint="equalized_odds")
    assert fitted.randomised  # equalized odds mixes rules here, so the draw matters
    texts = [f"row {i}" for i in range(len(s))]
    d = fitted.predict(s, groups, seed=0, keys=texts)
    perm = np.random.default_rng(0).permutation(len(s))
    d_perm = fitted.predict(s[perm], [groups[i] for i in perm], seed=0, keys=[texts[i] for i in perm])
    np.testing.assert_array_equal(d[perm], d_perm)  # same text, same decision, in any order
    # and the keyed draws still realise the rule's expected decision rate
    assert abs(d.mean() - fitted.predict_proba(s, groups).mean()) < 0.02
    desc = fitted.describe()
    assert desc["constraint"] == "equalized_odds" and POOLED in desc["cells"]
    with pytest.raises(ValueError, match="keys has 1 rows"):
        fitted.predict(s, groups, keys=["one"])
