"""Fairness metrics for binary text classifiers, from rows or from mergeable statistics.

Everything is computed from :class:`GroupStats` -- per-pattern confusion cells and
per-group score histograms -- so a 10-row unit test and a Ray Data aggregation over
billions of predictions run the same code. Groups may overlap, may be unknown (reported,
never compared), may be crossed into intersections; small groups are flagged.

Entry points: :func:`group_metrics`, :func:`disparities`, the named criteria,
:func:`bias_auc` / :func:`final_bias_metric`, :func:`counterfactual_metrics`,
:func:`group_vs_rest_tests`, :func:`two_proportion_test` and :func:`fairness_summary`.
"""

from debias.metrics.auc import (
    auc_exact,
    auc_from_histograms,
    bias_auc,
    bias_auc_intervals,
    final_bias_metric,
    power_mean,
)
from debias.metrics.bootstrap import bootstrap_metrics, percentile_interval
from debias.metrics.counterfactual import CounterfactualResult, counterfactual_metrics
from debias.metrics.group import (
    METRICS,
    Criterion,
    Evaluation,
    demographic_parity_difference,
    demographic_parity_ratio,
    disparate_impact_ratio,
    disparities,
    equal_opportunity_difference,
    equality_differences,
    equalized_odds_difference,
    equalized_odds_ratio,
    error_rate_balance,
    evaluate,
    group_metrics,
)
from debias.metrics.group_intervals import INTERVAL_METHODS, worst_bias_auc
from debias.metrics.intervals import (
    auc_interval,
    extremum_interval,
    mover_difference,
    mover_ratio,
    wilson_interval,
)
from debias.metrics.significance import (
    TwoProportionTest,
    adjust_p_values,
    group_vs_rest_tests,
    minimum_detectable_difference,
    rate_alerts,
    two_proportion_test,
)
from debias.metrics.stats import GroupStats
from debias.metrics.summary import fairness_summary, to_json_safe
from debias.metrics.threshold import (
    best_f1_threshold,
    flip_rate_sweep,
    recall_matched_threshold,
    threshold_sweep,
)

__all__ = [
    "METRICS", "Criterion", "CounterfactualResult", "Evaluation", "GroupStats", "TwoProportionTest",
    "adjust_p_values", "auc_exact",
    "best_f1_threshold", "flip_rate_sweep", "recall_matched_threshold", "threshold_sweep", "auc_from_histograms", "bias_auc", "bias_auc_intervals", "bootstrap_metrics",
    "counterfactual_metrics", "demographic_parity_difference", "demographic_parity_ratio",
    "disparate_impact_ratio", "disparities", "equal_opportunity_difference", "equality_differences", "equalized_odds_difference",
    "equalized_odds_ratio", "error_rate_balance", "evaluate", "fairness_summary", "final_bias_metric",
    "group_metrics", "group_vs_rest_tests", "minimum_detectable_difference", "percentile_interval",
    "power_mean", "rate_alerts", "to_json_safe", "two_proportion_test",
    "INTERVAL_METHODS", "auc_interval", "extremum_interval", "mover_difference", "mover_ratio", "wilson_interval",
    "worst_bias_auc",
]
