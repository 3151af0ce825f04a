"""Group metrics and disparities between groups.

``group_metrics`` gives one row per group, per intersection, for ``unknown`` (rows whose
membership is missing) and for ``overall``. ``disparities`` compares groups: ``unknown``
is never a group in a comparison, and groups under ``min_group_size`` rows are flagged in
the by-group frame and left out of comparisons unless ``include_small=True`` (the
disparities frame names what it left out).

Definitions follow fairlearn's ``MetricFrame``: between groups, ``difference = max - min``
and ``ratio = min / max``; to overall, ``difference = max_g |m_g - m_overall|`` and
``ratio = min_g min(m_g / m_overall, m_overall / m_g)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from debias.metrics._compute import count_table, hist_auc, metric_arrays
from debias.metrics._input import INTERSECTION_SEP, OVERALL, UNKNOWN, encode
from debias.metrics._rates import COUNT_METRICS
from debias.metrics.auc import auc_exact
from debias.metrics.bootstrap import bootstrap_metrics
from debias.metrics.group_intervals import BOOTSTRAP_METRICS, disparity_intervals, metric_limits
from debias.metrics.intervals import extremum_interval
from debias.metrics.stats import GroupStats

METRICS = (*COUNT_METRICS, "roc_auc", "brier", "ece")
DEFAULT_MIN_GROUP_SIZE = 30
Data = "pd.DataFrame | GroupStats"


@dataclass(frozen=True)
class Evaluation:
    """Point values (``frame``) and, when asked for (``ci=True``), the bootstrap replicates of the
    metrics whose interval is a bootstrap (F1, Brier, ECE; a dict, empty when none was asked for).
    The other intervals are closed form; see :mod:`debias.metrics.group_intervals`."""

    frame: pd.DataFrame
    replicates: dict[str, np.ndarray] | None
    stats: GroupStats
    confidence: float


def evaluate(
    data: pd.DataFrame | GroupStats,
    *,
    group_col: str | Sequence[str] = "groups",
    threshold: float = 0.5,
    metrics: Sequence[str] | None = None,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    intersections: Sequence[Sequence[str]] | str = (),
    ci: bool = False,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | None = None,
    score_bins: int = 4096,
    calibration_bins: int = 10,
    y_true_col: str = "y_true",
    y_pred_col: str = "y_pred",
    score_col: str = "y_score",
    weight_col: str = "sample_weight",
) -> Evaluation:
    """Everything :func:`group_metrics` and :func:`disparities` need, computed once."""
    metrics = tuple(METRICS if metrics is None else metrics)
    unknown_metrics = set(metrics) - set(METRICS)
    if unknown_metrics:
        raise ValueError(f"unknown metric(s) {sorted(unknown_metrics)}; available: {', '.join(METRICS)}")
    enc = None
    if isinstance(data, GroupStats):
        stats = data
    elif isinstance(data, pd.DataFrame):
        enc = encode(data, group_col=group_col, threshold=threshold, y_true_col=y_true_col,
                     y_pred_col=y_pred_col, score_col=score_col, weight_col=weight_col)
        stats = GroupStats._from_encoded(enc, threshold=threshold, score_bins=score_bins,
                                         calibration_bins=calibration_bins, intersections=intersections, groups=None)
    else:
        raise TypeError(f"expected a DataFrame or GroupStats; found {type(data).__name__}")

    groups = stats.groups
    names = (*groups, UNKNOWN, OVERALL)
    n = count_table(stats, names).sum(axis=(1, 2))
    frame = pd.DataFrame({"group": names,
                          "kind": [_kind(g) for g in groups] + ["unknown", "overall"],
                          "count": n.astype(np.int64)})
    if stats.weighted:
        frame["weight"] = stats.cell_table(names).sum(axis=(1, 2))
    frame["small_group"] = (frame["count"] < min_group_size) & (frame["kind"] != "overall")
    values = metric_arrays(stats, names)
    for m in metrics:
        if m == "roc_auc":
            frame["roc_auc"] = np.nan
            if stats.has_score:
                if enc is not None:
                    frame["roc_auc"] = _exact_auc(enc, names)
                else:
                    auc, bound = hist_auc(stats, names)
                    frame["roc_auc"], frame["roc_auc_error_bound"] = auc, bound
        else:
            frame[m] = values.get(m, np.full(len(names), np.nan))
    replicates = None
    if ci:
        # closed-form intervals where there is one (group_intervals); the bootstrap only for the rest
        boot = [m for m in metrics if m in BOOTSTRAP_METRICS]
        replicates = bootstrap_metrics(stats, names, n_boot=n_boot, seed=seed, metrics=boot) if boot else {}
        for m in metrics:
            if m in BOOTSTRAP_METRICS and m not in replicates:
                continue
            frame[f"{m}_lo"], frame[f"{m}_hi"] = metric_limits(stats, names, frame[m].to_numpy(dtype=float), m,
                                                               confidence=confidence, replicates=replicates)
    return Evaluation(frame, replicates, stats, confidence)


def _kind(g: str) -> str:
    return "intersection" if INTERSECTION_SEP in g else "group"


def _exact_auc(enc, names: Sequence[str]) -> np.ndarray:
    y = enc.y_true.astype(bool)
    s, w = enc.y_score, enc.weight
    out = []
    for g in names:
        if g == OVERALL:
            m = np.ones(len(y), dtype=bool)
        elif g == UNKNOWN:
            m = enc.pattern < 0
        else:
            parts = set(g.split(INTERSECTION_SEP))
            pm = np.array([parts <= set(p) for p in enc.patterns] + [False], dtype=bool)
            m = pm[enc.pattern]
        out.append(auc_exact(s[m & y], s[m & ~y], w[m & y], w[m & ~y]))
    return np.array(out)


def group_metrics(data: pd.DataFrame | GroupStats, **kwargs) -> pd.DataFrame:
    """Metrics per group, per intersection, for unknown membership, and overall.

    Parameters
    ----------
    data : DataFrame or GroupStats
        A predictions frame (``y_true``, ``y_score`` and/or ``y_pred``, optional
        ``sample_weight``, membership in ``group_col``) or its sufficient statistics.
    **kwargs
        Keyword-only options of :func:`evaluate`: ``group_col``, ``threshold``,
        ``metrics``, ``min_group_size``, ``intersections``, ``ci``, ``confidence``,
        ``n_boot``, ``seed``, ``score_bins``, ``calibration_bins`` and column names.

    Returns
    -------
    DataFrame
        Columns ``group``, ``kind`` (group / intersection / unknown / overall),
        ``count`` (rows), ``weight`` (if weighted), ``small_group``, then
        ``selection_rate, base_rate, accuracy, precision, tpr`` (recall), ``fpr, fnr,
        tnr, f1, roc_auc, brier, ece`` (weighted by ``sample_weight`` when given), and
        with ``ci=True`` a ``<metric>_lo`` / ``<metric>_hi`` pair per metric (Wilson for
        proportions, DeLong logit for AUC, expanded percentile bootstrap for F1, Brier and
        ECE; see :mod:`debias.metrics.group_intervals`). From
        GroupStats, ``roc_auc`` is the histogram AUC and ``roc_auc_error_bound`` bounds
        its distance to the exact value. Undefined metrics (empty denominator) are NaN.
    """
    return evaluate(data, **kwargs).frame


def _eligible(frame: pd.DataFrame, include_small: bool) -> np.ndarray:
    ok = frame["kind"].isin(["group", "intersection"]).to_numpy()
    if not include_small:
        ok = ok & ~frame["small_group"].to_numpy()
    return ok


def disparity_values(values: np.ndarray, overall: np.ndarray) -> dict[str, np.ndarray]:
    """Differences and ratios over the last axis (groups), NaN groups ignored.

    With no eligible group at all (every group under the minimum size) every value is NaN.
    """
    if values.shape[-1] == 0:
        nan = np.full(values.shape[:-1], np.nan)
        return {k: nan.copy() for k in ("difference", "ratio", "difference_to_overall", "ratio_to_overall")}
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(values, axis=-1), np.nanmax(values, axis=-1)
            o = overall[..., None]
            r = values / o
            r = np.where(r > 1, 1 / r, r)
            return {
                "difference": hi - lo,
                "ratio": np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan),
                "difference_to_overall": np.nanmax(np.abs(values - o), axis=-1),
                "ratio_to_overall": np.nanmin(r, axis=-1),
            }


def disparities(
    data: pd.DataFrame | GroupStats | Evaluation,
    *,
    include_small: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """Disparities between groups, and of each group to overall, for every metric.

    Parameters
    ----------
    data : DataFrame, GroupStats or Evaluation
        Predictions, their statistics, or the result of :func:`evaluate`.
    include_small : bool
        Compare groups flagged ``small_group`` too.
    **kwargs
        Options of :func:`evaluate` (``ci=True`` adds ``*_lo`` / ``*_hi`` columns).

    Returns
    -------
    DataFrame
        One row per metric: ``metric``, ``n_groups`` compared, ``excluded`` (groups left
        out as small or undefined), ``min_group``, ``min_value``, ``max_group``,
        ``max_value``, ``difference``, ``ratio``, ``difference_to_overall``,
        ``ratio_to_overall``, and with ``ci=True`` a ``<key>_lo`` / ``<key>_hi`` pair for
        each of ``min_value``, ``max_value`` and the four disparities: extremum intervals
        (they contain the estimate and cover at least nominally; see
        :mod:`debias.metrics.intervals`).
    """
    ev = data if isinstance(data, Evaluation) else evaluate(data, **kwargs)
    frame = ev.frame
    eligible = _eligible(frame, include_small)
    groups = frame["group"].to_numpy()
    overall_row = int(np.flatnonzero(frame["kind"].to_numpy() == "overall")[0])
    rows = []
    for m in (c for c in METRICS if c in frame.columns):
        v = frame[m].to_numpy(dtype=float)
        use = eligible & ~np.isnan(v)
        row = {"metric": m, "n_groups": int(use.sum()),
               "excluded": [str(g) for g in groups[_eligible(frame, True) & ~use]]}
        if use.any():
            vu, gu = v[use], groups[use]
            row.update(min_group=str(gu[np.argmin(vu)]), min_value=float(vu.min()),
                       max_group=str(gu[np.argmax(vu)]), max_value=float(vu.max()))
            row.update({k: float(x) for k, x in disparity_values(vu, np.array(v[overall_row])).items()})
        else:
            row.update(min_group=None, min_value=np.nan, max_group=None, max_value=np.nan, difference=np.nan,
                       ratio=np.nan, difference_to_overall=np.nan, ratio_to_overall=np.nan)
        if ev.replicates is not None and f"{m}_lo" in frame.columns and use.any():
            for k, x in _disparity_ci(ev, m, use, overall_row, ev.confidence).items():
                row[f"{k}_lo"], row[f"{k}_hi"] = (float(a) for a in x)
        rows.append(row)
    return pd.DataFrame(rows)


def _disparity_ci(ev: Evaluation, m: str, use: np.ndarray, overall_row: int, confidence: float) -> dict:
    frame = ev.frame
    return disparity_intervals(ev.stats, frame["group"].tolist(), frame[m].to_numpy(dtype=float), m, use,
                               overall_row, confidence=confidence, replicates=ev.replicates)


# ---------------------------------------------------------------------- named criteria
@dataclass(frozen=True)
class Criterion:
    """A named fairness criterion: one number, where it comes from, and its interval."""

    name: str
    value: float
    method: str
    metrics: tuple[str, ...]
    min_group: str | None
    max_group: str | None
    ci_low: float | None = None
    ci_high: float | None = None
    threshold: float | None = None
    passed: bool | None = None
    components: dict | None = None

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


Method = Literal["between_groups", "to_overall"]


def _criterion(data, name: str, metrics: tuple[str, ...], stat: str, *, method: Method, agg: str,
               include_small: bool = False, threshold: float | None = None, **kwargs) -> Criterion:
    if method not in ("between_groups", "to_overall"):
        raise ValueError(f"method must be 'between_groups' or 'to_overall'; found {method!r}")
    key = stat if method == "between_groups" else f"{stat}_to_overall"
    ev = data if isinstance(data, Evaluation) else evaluate(data, metrics=metrics, **kwargs)
    table = disparities(ev, include_small=include_small).set_index("metric").loc[list(metrics)]
    vals = table[key].to_numpy(dtype=float)
    pick = int(np.nanargmax(vals) if agg == "max" else np.nanargmin(vals)) if not np.isnan(vals).all() else 0
    lo = hi = None
    if ev.replicates is not None and not np.isnan(vals).all():
        # worst of several metrics: an extremum interval over the metrics' own disparity intervals
        frame = ev.frame
        use = _eligible(frame, include_small)
        overall_row = int(np.flatnonzero(frame["kind"].to_numpy() == "overall")[0])

        def per_metric(c: float) -> tuple[np.ndarray, np.ndarray]:
            iv = []
            for m, v in zip(metrics, vals, strict=True):
                ok = use & frame[m].notna().to_numpy()
                iv.append(_disparity_ci(ev, m, ok, overall_row, c)[key] if ok.any() and np.isfinite(v)
                          else (np.nan, np.nan))
            return np.array([x[0] for x in iv]), np.array([x[1] for x in iv])

        _, lo, hi = extremum_interval(vals, per_metric, kind=agg, confidence=ev.confidence)
    value = float(vals[pick])
    passed = None if threshold is None or np.isnan(value) else bool(value >= threshold)
    return Criterion(name, value, method, metrics, table["min_group"].iloc[pick], table["max_group"].iloc[pick],
                     lo, hi, threshold, passed, {m: float(v) for m, v in zip(metrics, vals, strict=True)})


def demographic_parity_difference(data, *, method: Method = "between_groups", **kwargs) -> Criterion:
    """Largest difference in selection rate (fairlearn's ``demographic_parity_difference``)."""
    return _criterion(data, "demographic_parity_difference", ("selection_rate",), "difference", method=method, agg="max", **kwargs)


def demographic_parity_ratio(data, *, method: Method = "between_groups", **kwargs) -> Criterion:
    """Smallest ratio of selection rates (fairlearn's ``demographic_parity_ratio``)."""
    return _criterion(data, "demographic_parity_ratio", ("selection_rate",), "ratio", method=method, agg="min", **kwargs)


def equalized_odds_difference(data, *, method: Method = "between_groups", **kwargs) -> Criterion:
    """Worse of the TPR and FPR differences (Hardt et al. 2016; fairlearn ``agg='worst_case'``)."""
    return _criterion(data, "equalized_odds_difference", ("tpr", "fpr"), "difference", method=method, agg="max", **kwargs)


def equalized_odds_ratio(data, *, method: Method = "between_groups", **kwargs) -> Criterion:
    """Worse of the TPR and FPR ratios."""
    return _criterion(data, "equalized_odds_ratio", ("tpr", "fpr"), "ratio", method=method, agg="min", **kwargs)


def equal_opportunity_difference(data, *, method: Method = "between_groups", **kwargs) -> Criterion:
    """Largest difference in true positive rate (Hardt et al. 2016)."""
    return _criterion(data, "equal_opportunity_difference", ("tpr",), "difference", method=method, agg="max", **kwargs)


def disparate_impact_ratio(data, *, method: Method = "between_groups", four_fifths: float = 0.8, **kwargs) -> Criterion:
    """Lowest selection-rate ratio; ``passed`` applies the four-fifths rule (29 CFR 1607.4(D))."""
    return _criterion(data, "disparate_impact_ratio", ("selection_rate",), "ratio", method=method, agg="min",
                      threshold=four_fifths, **kwargs)


def error_rate_balance(data, *, method: Method = "between_groups", **kwargs) -> Criterion:
    """Worse of the FPR and FNR differences (Chouldechova 2017, error-rate balance)."""
    return _criterion(data, "error_rate_balance", ("fpr", "fnr"), "difference", method=method, agg="max", **kwargs)


CRITERIA = (demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference,
            equalized_odds_ratio, equal_opportunity_difference, disparate_impact_ratio, error_rate_balance)


def equality_differences(data: Evaluation | pd.DataFrame | GroupStats, *, include_small: bool = False,
                         **kwargs) -> dict:
    """Dixon et al. (2018)'s equality differences: ``fped = sum_g |FPR_g - FPR|`` and
    ``fned = sum_g |FNR_g - FNR|`` over the groups (identity terms), FPR / FNR overall.

    Sums over groups, so they grow with the number of groups compared: ``n_groups`` is given,
    and ``fped_mean`` / ``fned_mean`` divide by it, for comparing suites of different sizes. A
    group whose rate is undefined (no negatives, or no positives) is left out of that sum and
    counted in ``n_groups_fpr`` / ``n_groups_fnr``. Intersections and ``unknown`` are not groups
    here; groups under ``min_group_size`` rows are left out unless ``include_small``.

    ``data``: an :class:`Evaluation`, or what :func:`evaluate` takes (``**kwargs`` are its options).
    """
    ev = data if isinstance(data, Evaluation) else evaluate(data, **kwargs)
    f = ev.frame
    use = (f["kind"] == "group").to_numpy(copy=True)
    if not include_small:
        use = use & ~f["small_group"].to_numpy(dtype=bool)
    overall = f.loc[f["kind"] == "overall"].iloc[0]
    out: dict = {"n_groups": int(use.sum())}
    for rate, name in (("fpr", "fped"), ("fnr", "fned")):
        g = f.loc[use, rate].to_numpy(dtype=float)
        ok = ~np.isnan(g)
        total = float(np.abs(g[ok] - float(overall[rate])).sum()) if ok.any() else float("nan")
        out[name] = total
        out[f"n_groups_{rate}"] = int(ok.sum())
        out[f"{name}_mean"] = total / ok.sum() if ok.any() else float("nan")
    return out
