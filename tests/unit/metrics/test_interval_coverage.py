"""Simulated coverage: 95% intervals cover the true rate / AUC 93-97% of the time, small groups included.

Each case draws thousands of data sets from known rates or AUCs (vectorised; see
debias.metrics.coverage). Monte Carlo sd of a coverage share is about 0.0035 at 4000 data sets
and 0.007 at 1000, so the 93-97% band fails a method that is off by a couple of points.
"""

from __future__ import annotations

import pytest

from debias.metrics.coverage import (
    auc_coverage,
    bootstrap_coverage,
    extremum_coverage,
    proportion_coverage,
    two_group_coverage,
    worst_auc_coverage,
)

BAND = (0.93, 0.97)


def _in_band(cov: dict[str, float], band=BAND):
    for k, c in cov.items():
        assert band[0] <= c <= band[1], (k, c)


@pytest.mark.parametrize("n,p", [(10, 0.1), (10, 0.5), (20, 0.3), (38, 0.05), (100, 0.02), (100, 0.3), (2000, 0.01)])
def test_wilson_proportion_coverage(n, p):
    _in_band(proportion_coverage(n=n, p=p, sims=4000, seed=n))


@pytest.mark.parametrize("n,p", [((20, 20), (0.1, 0.3)), ((30, 90), (0.2, 0.2)), ((15, 40), (0.5, 0.3)),
                                 ((100, 300), (0.05, 0.1))])
def test_difference_and_ratio_coverage(n, p):
    _in_band(two_group_coverage(n=n, p=p, sims=4000, seed=n[0]))


@pytest.mark.parametrize("n_pos,n_neg,auc", [(10, 10, 0.8), (15, 45, 0.9), (50, 50, 0.7), (200, 200, 0.85)])
def test_auc_coverage(n_pos, n_neg, auc):
    _in_band(auc_coverage(n_pos=n_pos, n_neg=n_neg, auc=auc, sims=2000, seed=n_pos))


def test_worst_group_rate_gap_and_ratio_coverage_when_groups_differ():
    # min, max, max - min, min / max and both "to overall" statistics, groups of 20-80 rows
    _in_band(extremum_coverage(n=(20, 40, 80), p=(0.05, 0.2, 0.4), sims=1000, seed=1))


def test_extremum_intervals_are_conservative_not_short_near_ties():
    # near-ties are where a percentile bootstrap of a max fails; ours must still cover (>= 93%)
    for n, p in (((30, 30, 100, 100), (0.2, 0.2, 0.2, 0.2)), ((20, 50, 100, 400), (0.1, 0.15, 0.3, 0.3))):
        _in_band(extremum_coverage(n=n, p=p, sims=600, seed=2), band=(0.93, 1.0))


def test_worst_group_auc_coverage():
    # the case of the issue: worst-group AUC (a percentile bootstrap excluded its own estimate)
    _in_band(worst_auc_coverage(n=(100, 150, 300), auc=(0.6, 0.8, 0.92), sims=1500, seed=3))
    _in_band(worst_auc_coverage(n=(50, 50, 50, 50), auc=(0.8,) * 4, sims=500, seed=4), band=(0.93, 1.0))


@pytest.mark.parametrize("n", [30, 100])
def test_bootstrap_brier_and_f1_coverage(n):
    _in_band(bootstrap_coverage(n=n, sims=400, n_boot=400, seed=n), band=(0.92, 0.97))
