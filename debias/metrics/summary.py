"""One call for the evaluation report and the serving monitor: everything, as JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from debias.metrics._input import OVERALL
from debias.metrics.auc import bias_auc, bias_auc_intervals, final_bias_metric
from debias.metrics.counterfactual import counterfactual_metrics
from debias.metrics.group import CRITERIA, DEFAULT_MIN_GROUP_SIZE, disparities, equality_differences, evaluate
from debias.metrics.significance import Correction, group_vs_rest_tests
from debias.metrics.stats import GroupStats


def fairness_summary(
    data: pd.DataFrame | GroupStats,
    *,
    group_col: str | Sequence[str] = "groups",
    threshold: float = 0.5,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    intersections: Sequence[Sequence[str]] | str = (),
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | None = 0,
    correction: Correction = "holm",
    alpha: float = 0.05,
    pair_col: str = "pair_id",
) -> dict:
    """Group metrics with intervals, disparities, criteria, tests, bias AUCs, counterfactuals.

    Parameters
    ----------
    data : DataFrame or GroupStats
        Predictions or their sufficient statistics. Counterfactual metrics need rows
        with ``pair_col`` and are omitted for GroupStats.

    Returns
    -------
    dict
        JSON-serialisable (NaN becomes None): ``config``, ``n_rows``, ``n_unknown``,
        ``by_group`` (records), ``disparities`` (records), ``criteria`` (name -> record),
        ``equality_differences`` (Dixon et al.'s FPED / FNED),
        ``tests`` (records), ``bias_auc`` (records), ``final_bias_metric``, and
        ``counterfactual`` (record or None).
    """
    ev = evaluate(data, group_col=group_col, threshold=threshold, min_group_size=min_group_size,
                  intersections=intersections, ci=True, confidence=confidence, n_boot=n_boot, seed=seed)
    stats = ev.stats
    out: dict = {
        "config": {"threshold": threshold, "min_group_size": min_group_size, "confidence": confidence,
                   "n_boot": n_boot, "seed": seed, "correction": correction, "alpha": alpha,
                   "score_bins": stats.score_bins, "calibration_bins": stats.calibration_bins,
                   "weighted": stats.weighted,
                   "auc": "exact" if isinstance(data, pd.DataFrame) else "histogram"},
        "n_rows": stats.n_rows,
        "n_unknown": stats.n_unknown,
        "by_group": ev.frame.to_dict(orient="records"),
        "disparities": disparities(ev).to_dict(orient="records"),
        "criteria": {c.__name__: c(ev, min_group_size=min_group_size).to_dict() for c in CRITERIA},
        "equality_differences": equality_differences(ev),
        "tests": group_vs_rest_tests(stats, correction=correction, alpha=alpha,
                                     min_group_size=min_group_size).to_dict(orient="records"),
    }
    if stats.has_score:
        ba = bias_auc(data) if isinstance(data, GroupStats) else bias_auc(data, group_col=group_col, groups=stats.groups)
        if n_boot:  # intervals from the histograms, centred on the (exact, for rows) point values
            names = [g for g in ba["group"] if g != OVERALL]
            iv = bias_auc_intervals(stats, names, point=ba.set_index("group"), n_boot=n_boot, seed=seed,
                                    confidence=confidence)
            ba = ba.merge(iv, on="group", how="left")
        out["bias_auc"] = ba.to_dict(orient="records")
        out["final_bias_metric"] = final_bias_metric(ba)
    else:
        out["bias_auc"], out["final_bias_metric"] = [], None
    cf = None
    if isinstance(data, pd.DataFrame) and pair_col in data.columns and "y_score" in data.columns:
        cf = counterfactual_metrics(data, pair_col=pair_col, threshold=threshold, ci=True,
                                    pred_col="y_pred" if "y_pred" in data.columns else None,
                                    confidence=confidence, n_boot=n_boot, seed=seed).to_dict()
    out["counterfactual"] = cf
    return to_json_safe(out)


def to_json_safe(x):
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively."""
    if isinstance(x, dict):
        return {str(k): to_json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [to_json_safe(v) for v in x.tolist()]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if x is pd.NA or x is None:
        return None
    return x
