"""Sliding-window fairness monitor: hand-worked counts, tests against scipy, merge invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency, fisher_exact

from debias.serving.monitor import (
    ClassCounts,
    FairnessMonitor,
    MonitorCounts,
    group_vs_rest,
    two_proportion_test,
)

# (groups, decision) events worked by hand below.
EVENTS = [(["female"], 1), (["female"], 1), (["female"], 0), (["male"], 0), ([], 0),
          (["female", "male"], 1)]


def _feed(m: FairnessMonitor, events) -> FairnessMonitor:
    m.observe([g for g, _ in events], [d for _, d in events])
    return m


def test_counts_hand_worked():
    m = _feed(FairnessMonitor(window=100, bound=0.1, alpha=0.01), EVENTS)
    c = m.counts()
    # 6 texts, 3 positive; female in texts 1,2,3,6 (positives 1,2,6); male in 4,6 (positive 6).
    assert (c.n, c.positives) == (6, 3)
    assert c.by_group == {"female": (4, 3), "male": (2, 1)}
    assert len(m) == 6 and m.seen_ == 6


def test_window_evicts_oldest_and_drops_absent_groups():
    m = _feed(FairnessMonitor(window=3, bound=0.1, alpha=0.01), EVENTS)
    # Kept: (male, 0), ([], 0), (female+male, 1).
    assert m.counts() == MonitorCounts(3, 1, {"female": (1, 1), "male": (2, 1)})
    m.observe([[], [], []], [0, 0, 0])
    assert m.counts() == MonitorCounts(3, 0, {})
    assert m.seen_ == 9


def test_duplicate_group_mentions_count_once():
    m = FairnessMonitor(window=10, bound=0.1, alpha=0.01)
    m.observe([["female", "female"]], [1])
    assert m.counts().by_group == {"female": (1, 1)}


def test_report_rest_is_the_complement():
    m = _feed(FairnessMonitor(window=100, bound=0.1, alpha=0.01, min_count=1), EVENTS)
    r = m.report().set_index("group")
    # female 3/4 vs rest (texts 4, 5) 0/2; male 1/2 vs rest (1,2,3,5) 2/4.
    assert r.loc["female", ["rest_n", "rest_positives"]].tolist() == [2, 0]
    assert r.loc["female", "positive_rate"] == pytest.approx(0.75)
    assert r.loc["female", "difference"] == pytest.approx(0.75)
    assert r.loc["male", ["rest_n", "rest_positives"]].tolist() == [4, 2]
    assert r.loc["male", "difference"] == pytest.approx(0.0)
    assert not r["alert"].any()  # far too few texts for significance


def test_z_test_hand_worked_and_matches_chi_squared():
    # 30/100 vs 20/100: pooled 0.25, se = sqrt(.25 * .75 * .02) = 0.0612372, z = 1.632993.
    test, z, p = two_proportion_test(30, 100, 20, 100)
    assert test == "z"
    assert z == pytest.approx(1.632993, abs=1e-6)
    assert p == pytest.approx(0.102470, abs=1e-5)
    chi2, p_chi, _, _ = chi2_contingency([[30, 70], [20, 80]], correction=False)
    assert z**2 == pytest.approx(chi2) and p == pytest.approx(p_chi)


def test_z_test_against_scipy_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n1, n2 = rng.integers(40, 500, size=2)
        x1 = int(rng.integers(10, n1 - 10))
        x2 = int(rng.integers(10, n2 - 10))
        test, z, p = two_proportion_test(x1, int(n1), x2, int(n2), min_expected=0)
        _, p_chi, _, _ = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
        assert test == "z" and p == pytest.approx(p_chi, rel=1e-9)
        assert math.copysign(1, z) == math.copysign(1, x1 / n1 - x2 / n2)


def test_small_counts_use_fisher_exact():
    # 3/3 vs 0/3: one table as extreme on each side, each with probability 1/C(6,3) = 1/20.
    test, _, p = two_proportion_test(3, 3, 0, 3)
    assert test == "fisher" and p == pytest.approx(0.1)
    assert p == pytest.approx(fisher_exact([[3, 0], [0, 3]]).pvalue)


def test_no_evidence_without_variation_or_data():
    assert two_proportion_test(0, 10, 0, 20)[2] == 1.0
    assert two_proportion_test(10, 10, 20, 20)[2] == 1.0
    assert two_proportion_test(0, 0, 3, 10)[2] == 1.0


def test_alert_needs_both_size_of_gap_and_significance():
    c = MonitorCounts(200, 80, {"muslim": (100, 60)})  # 60/100 vs rest 20/100
    r = group_vs_rest(c, bound=0.1, alpha=0.01).iloc[0]
    assert r["difference"] == pytest.approx(0.4) and r["p_value"] < 1e-8 and r["alert"]
    # Same data, a gap bound above 0.4: significant but within bound, no alert.
    assert not group_vs_rest(c, bound=0.45, alpha=0.01).iloc[0]["alert"]
    # A small gap that is still significant on a large window does not alert either.
    big = MonitorCounts(20000, 6000, {"gay": (10000, 3100)})  # 0.31 vs 0.29
    r = group_vs_rest(big, bound=0.1, alpha=0.01).iloc[0]
    assert r["p_value"] < 0.01 and not r["alert"]
    # A large gap on few texts is not significant: no alert.
    tiny = MonitorCounts(6, 3, {"blind": (3, 3)})
    assert not group_vs_rest(tiny, bound=0.1, alpha=0.01).iloc[0]["alert"]


def test_min_count_suppresses_alerts():
    c = MonitorCounts(200, 80, {"muslim": (100, 60)})
    assert group_vs_rest(c, bound=0.1, alpha=0.01, min_count=100).iloc[0]["alert"]
    assert not group_vs_rest(c, bound=0.1, alpha=0.01, min_count=101).iloc[0]["alert"]


def _random_events(rng, k):
    names = ["female", "male", "muslim", "black"]
    groups = [[n for n in names if rng.random() < 0.3] for _ in range(k)]
    return groups, rng.integers(0, 2, size=k).tolist()


def test_merged_counts_equal_one_monitor_over_both_streams():
    rng = np.random.default_rng(1)
    g1, d1 = _random_events(rng, 300)
    g2, d2 = _random_events(rng, 200)
    a = FairnessMonitor(window=1000, bound=0.1, alpha=0.01)
    b = FairnessMonitor(window=1000, bound=0.1, alpha=0.01)
    both = FairnessMonitor(window=1000, bound=0.1, alpha=0.01)
    a.observe(g1, d1)
    b.observe(g2, d2)
    both.observe(g1 + g2, d1 + d2)
    assert a.counts() + b.counts() == both.counts()
    assert sum([a.counts(), b.counts()]) == both.counts()
    assert MonitorCounts.from_dict((a.counts() + b.counts()).to_dict()) == both.counts()


def test_window_equals_fresh_monitor_on_last_events():
    rng = np.random.default_rng(2)
    groups, decisions = _random_events(rng, 500)
    sliding = FairnessMonitor(window=64, bound=0.1, alpha=0.01)
    for i in range(0, 500, 37):  # uneven chunks cross the window edge at different points
        sliding.observe(groups[i:i + 37], decisions[i:i + 37])
    fresh = FairnessMonitor(window=64, bound=0.1, alpha=0.01)
    fresh.observe(groups[-64:], decisions[-64:])
    assert sliding.counts() == fresh.counts()
    assert sliding.report().equals(fresh.report())


def test_bad_input_is_named():
    m = FairnessMonitor(window=10, bound=0.1, alpha=0.01)
    with pytest.raises(ValueError, match="same length"):
        m.observe([["female"]], [1, 0])
    with pytest.raises(TypeError, match="list of group names"):
        m.observe(["female"], [1])
    with pytest.raises(ValueError, match="0 or 1"):
        m.observe([["female"]], [2])
    assert m.counts() == MonitorCounts()  # a rejected batch leaves no partial state
    with pytest.raises(ValueError, match="window"):
        FairnessMonitor(window=0, bound=0.1, alpha=0.01)
    with pytest.raises(ValueError, match="alpha"):
        FairnessMonitor(window=10, bound=0.1, alpha=1.5)
    with pytest.raises(ValueError, match="cannot exceed"):
        two_proportion_test(5, 3, 0, 3)


# -- decisions per (group, class) -------------------------------------------------------------

def _oracle_class_counts(groups, decisions, n_classes: int) -> tuple[list[int], dict[str, list[int]]]:
    """Direct count with pandas: the window's events exploded to one row per (text, group)."""
    import pandas as pd

    ev = pd.DataFrame({"groups": [sorted(set(g)) for g in groups], "cls": decisions})
    overall = ev["cls"].value_counts().reindex(range(n_classes), fill_value=0).tolist()
    long = ev.explode("groups").dropna(subset=["groups"])
    if long.empty:
        return overall, {}
    tab = pd.crosstab(long["groups"], long["cls"]).reindex(columns=range(n_classes), fill_value=0)
    return overall, {g: row.tolist() for g, row in tab.iterrows()}


def test_class_counts_hand_worked_and_binary_numbers_unchanged():
    m = _feed(FairnessMonitor(window=100, bound=0.1, alpha=0.01), EVENTS)
    c = m.class_counts()
    # female in texts 1,2,3,6 (classes 1,1,0,1); male in 4,6 (0,1); every text: 3 of each class.
    assert c.overall == (3, 3) and c.by_group == {"female": (1, 3), "male": (1, 1)}
    assert m.counts() == MonitorCounts(6, 3, {"female": (4, 3), "male": (2, 1)})  # as before classes


def _random_class_events(rng, k, n_classes):
    names = ["female", "male", "muslim", "black", "gay"]
    groups = [[n for n in names if rng.random() < 0.3] * int(rng.integers(1, 3)) for _ in range(k)]  # repeats too
    return groups, rng.integers(0, n_classes, size=k).tolist()


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_sliding_class_counts_match_a_crosstab_of_the_last_window(n_classes):
    rng = np.random.default_rng(10 + n_classes)
    groups, decisions = _random_class_events(rng, 700, n_classes)
    window = 97
    m = FairnessMonitor(window=window, bound=0.1, alpha=0.01, n_classes=n_classes, positive=n_classes - 1)
    for i in range(0, 700, 41):  # uneven chunks cross the window edge at different points
        m.observe(groups[i:i + 41], decisions[i:i + 41])
        seen = i + len(groups[i:i + 41])
        lo = max(0, seen - window)
        overall, by_group = _oracle_class_counts(groups[lo:seen], decisions[lo:seen], n_classes)
        c = m.class_counts()
        assert list(c.overall) == overall
        assert {g: list(v) for g, v in c.by_group.items()} == by_group
        # the alert statistic reads the positive class out of the same table
        pc = m.counts()
        assert pc.n == sum(overall) and pc.positives == overall[n_classes - 1]
        assert pc.by_group == {g: (sum(v), v[n_classes - 1]) for g, v in by_group.items()}


def test_class_counts_merge_and_round_trip():
    rng = np.random.default_rng(4)
    g1, d1 = _random_class_events(rng, 300, 3)
    g2, d2 = _random_class_events(rng, 200, 3)
    a, b, both = (FairnessMonitor(window=1000, bound=0.1, alpha=0.01, n_classes=3) for _ in range(3))
    a.observe(g1, d1)
    b.observe(g2, d2)
    both.observe(g1 + g2, d1 + d2)
    assert a.class_counts() + b.class_counts() == both.class_counts()
    assert sum([a.class_counts(), b.class_counts()]) == both.class_counts()
    assert ClassCounts.from_dict(both.class_counts().to_dict()) == both.class_counts()
    with pytest.raises(ValueError, match="2 and 3 classes"):
        ClassCounts(2) + a.class_counts()


def test_bad_class_input_is_named():
    m = FairnessMonitor(window=10, bound=0.1, alpha=0.01, n_classes=3)
    with pytest.raises(ValueError, match=r"class ids 0\.\.2; found 3"):
        m.observe([["female"], []], [0, 3])
    assert m.class_counts() == ClassCounts(3) and m.counts() == MonitorCounts()
    with pytest.raises(ValueError, match="positive must be a class id"):
        FairnessMonitor(window=10, bound=0.1, alpha=0.01, n_classes=3, positive=3)
    with pytest.raises(ValueError, match="n_classes"):
        FairnessMonitor(window=10, bound=0.1, alpha=0.01, n_classes=1)
    with pytest.raises(ValueError, match="expected 3 class counts"):
        ClassCounts(3, (1, 2))
