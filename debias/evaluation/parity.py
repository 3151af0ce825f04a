"""Fairness parity of two models scored on the same rows (an optimised export vs its source).

A faster model is only the same model if its scores, its decisions and every headline bias
metric stay put. For each suite frame (``debias.evaluation.suites`` layout, plus one score column per
model) this module measures:

* score drift: max / mean / p99 ``|score_b - score_a|`` and the share of decisions that change
  at the threshold;
* headline metrics for both models, with percentile-bootstrap intervals, and their paired
  difference: the SAME resampled rows score both models in every replicate (a paired
  bootstrap), so the difference's interval is far tighter than the two intervals side by side.
  Resampling units are rows, or whole counterfactual pairs when the frame has ``pair_id``.
  Headline metrics (where the suite has the columns for them): overall ``auc``; the worst
  (lowest) ``subgroup_auc`` / ``bpsn_auc`` / ``bnsp_auc`` over groups with at least
  ``min_group_size`` rows (Borkan et al. 2019, sec. 4; :func:`debias.metrics.auc_exact`);
  ``fpr_gap``, max minus min false-positive rate over groups with at least ``min_group_size``
  negatives (templates); ``cf_flip_rate`` and ``cf_gap_mean``
  (:func:`debias.metrics.counterfactual_metrics`).
* a gate (:func:`parity_gate`): it fails when model B's estimate of a bias metric is worse than
  model A's interval allows (below A's lower bound for an AUC, above A's upper bound for a gap
  or a flip rate). ``rule="paired"`` is stricter: worse with the paired difference's interval
  excluding 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from debias.metrics import auc_exact, counterfactual_metrics

__all__ = ["BIAS_METRICS", "HIGHER_IS_BETTER", "headline_metrics", "paired_bootstrap", "parity_gate", "score_drift",
           "suite_parity"]

# +1: higher is better (AUCs); -1: lower is better (gaps, flip rates).
HIGHER_IS_BETTER: dict[str, int] = {"auc": 1, "worst_subgroup_auc": 1, "worst_bpsn_auc": 1,
                                    "worst_bnsp_auc": 1, "fpr_gap": -1, "cf_flip_rate": -1,
                                    "cf_gap_mean": -1}
# Gated by default: the headline bias metrics of issue 22 (worst subgroup / BPSN / BNSP AUC, FPR
# gap on templates, counterfactual flip rate). ``cf_gap_mean`` and ``auc`` are reported and
# flagged ``worse`` but not gated: any score noise raises a mean |gap| (quantisation does).
BIAS_METRICS = ("worst_subgroup_auc", "worst_bpsn_auc", "worst_bnsp_auc", "fpr_gap", "cf_flip_rate")


def _scores(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"score arrays must be 1-d and of equal length; found shapes {a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("scores must not be NaN")
    return a, b


def score_drift(y_score_a: Any, y_score_b: Any, *, threshold: float = 0.5) -> dict[str, float]:
    """``n``, ``max_abs_diff``, ``mean_abs_diff``, ``p99_abs_diff``, ``decision_change_rate``."""
    a, b = _scores(y_score_a, y_score_b)
    if len(a) == 0:
        raise ValueError("score_drift needs at least one row; found none")
    d = np.abs(b - a)
    return {"n": int(len(a)), "max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
            "p99_abs_diff": float(np.quantile(d, 0.99)),
            "decision_change_rate": float(np.mean((a >= threshold) != (b >= threshold)))}


def _membership(groups: pd.Series, names: Sequence[str]) -> np.ndarray:
    index = {g: j for j, g in enumerate(names)}
    m = np.zeros((len(groups), len(names)), dtype=bool)
    for i, gs in enumerate(groups):
        for g in (gs if gs is not None else []):
            j = index.get(g)
            if j is not None:
                m[i, j] = True
    return m


class _Frame:
    """The columns the headline metrics need, as arrays, with the group set fixed once."""

    def __init__(self, df: pd.DataFrame, *, min_group_size: int) -> None:
        self.y = None
        if "y_true" in df.columns and df["y_true"].notna().all() and len(df):
            self.y = df["y_true"].to_numpy(dtype=np.int64).astype(bool)
        self.pair = df["pair_id"].to_numpy(dtype=object) if "pair_id" in df.columns and \
            df["pair_id"].notna().any() else None
        names: list[str] = []
        if "groups" in df.columns:
            counts: dict[str, int] = {}
            for gs in df["groups"]:
                for g in (gs if gs is not None else []):
                    counts[g] = counts.get(g, 0) + 1
            names = sorted(g for g, c in counts.items() if c >= min_group_size)
        self.groups = names
        self.member = _membership(df["groups"], names) if names else np.zeros((len(df), 0), bool)
        self.min_group_size = min_group_size


def _metrics(f: _Frame, s: np.ndarray, idx: np.ndarray, *, threshold: float,
             fpr_gap: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    if f.y is not None:
        y, m = f.y[idx], f.member[idx]
        sc = s[idx]
        out["auc"] = auc_exact(sc[y], sc[~y])
        if f.groups:
            sub, bpsn, bnsp = [], [], []
            for j in range(m.shape[1]):
                g = m[:, j]
                sub.append(auc_exact(sc[g & y], sc[g & ~y]))
                bpsn.append(auc_exact(sc[~g & y], sc[g & ~y]))
                bnsp.append(auc_exact(sc[g & y], sc[~g & ~y]))
            for k, v in (("worst_subgroup_auc", sub), ("worst_bpsn_auc", bpsn), ("worst_bnsp_auc", bnsp)):
                v = np.asarray(v, dtype=np.float64)
                out[k] = float(np.nanmin(v)) if np.isfinite(v).any() else float("nan")
            if fpr_gap:
                neg = ~y
                fprs = [float(np.mean(sc[m[:, j] & neg] >= threshold)) for j in range(m.shape[1])
                        if (m[:, j] & neg).sum() >= f.min_group_size]
                out["fpr_gap"] = max(fprs) - min(fprs) if len(fprs) >= 2 else float("nan")
    if f.pair is not None:
        r = counterfactual_metrics(pd.DataFrame({"pair_id": f.pair[idx], "y_score": s[idx]}),
                                   threshold=threshold)
        out["cf_flip_rate"] = float(r.flip_rate)
        out["cf_gap_mean"] = float(r.mean_abs_gap)
    return out


def headline_metrics(df: pd.DataFrame, *, score_col: str = "y_score", threshold: float = 0.5,
                     min_group_size: int = 30, fpr_gap: bool = True) -> dict[str, float]:
    """The headline metrics of one scored suite frame (see the module docstring)."""
    if score_col not in df.columns:
        raise ValueError(f"missing column {score_col!r}; columns present: {', '.join(map(str, df.columns))}")
    f = _Frame(df, min_group_size=min_group_size)
    return _metrics(f, df[score_col].to_numpy(dtype=np.float64), np.arange(len(df)),
                    threshold=threshold, fpr_gap=fpr_gap)


def _units(f: _Frame, n: int) -> list[np.ndarray]:
    if f.pair is None:
        return [np.array([i]) for i in range(n)]
    codes, _ = pd.factorize(pd.Series(f.pair).where(pd.notna(f.pair), None), use_na_sentinel=True)
    out: dict[int, list[int]] = {}
    single = []
    for i, c in enumerate(codes):
        if c < 0:
            single.append(np.array([i]))
        else:
            out.setdefault(int(c), []).append(i)
    return [np.asarray(v) for v in out.values()] + single


def paired_bootstrap(df: pd.DataFrame, *, score_a: str, score_b: str, threshold: float = 0.5,
                     min_group_size: int = 30, n_boot: int = 200, confidence: float = 0.95,
                     fpr_gap: bool = True, seed: int | None = 0) -> pd.DataFrame:
    """Both models' headline metrics and their paired difference, with bootstrap intervals.

    Returns
    -------
    DataFrame, one row per metric: ``metric``, ``higher_is_better``, ``a``, ``a_lo``, ``a_hi``,
    ``b``, ``b_lo``, ``b_hi``, ``diff`` (b - a), ``diff_lo``, ``diff_hi``, ``p_value``
    (two-sided, from the share of replicates on each side of 0), ``n_boot``.
    """
    for c in (score_a, score_b):
        if c not in df.columns:
            raise ValueError(f"missing score column {c!r}; columns present: {', '.join(map(str, df.columns))}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; found {n_boot}")
    f = _Frame(df, min_group_size=min_group_size)
    sa, sb = _scores(df[score_a], df[score_b])
    whole = np.arange(len(df))
    kw = {"threshold": threshold, "fpr_gap": fpr_gap}
    pa, pb = _metrics(f, sa, whole, **kw), _metrics(f, sb, whole, **kw)
    names = list(pa)
    units = _units(f, len(df))
    rng = np.random.default_rng(seed)
    ra = np.full((n_boot, len(names)), np.nan)
    rb = np.full((n_boot, len(names)), np.nan)
    for r in range(n_boot):
        pick = rng.integers(0, len(units), size=len(units))
        idx = np.concatenate([units[u] for u in pick])
        ma, mb = _metrics(f, sa, idx, **kw), _metrics(f, sb, idx, **kw)
        ra[r] = [ma.get(k, np.nan) for k in names]
        rb[r] = [mb.get(k, np.nan) for k in names]
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    rows = []
    with np.errstate(all="ignore"):
        for j, k in enumerate(names):
            d = rb[:, j] - ra[:, j]
            d = d[np.isfinite(d)]
            lo_a, hi_a = np.nanpercentile(ra[:, j], q) if np.isfinite(ra[:, j]).any() else (np.nan, np.nan)
            lo_b, hi_b = np.nanpercentile(rb[:, j], q) if np.isfinite(rb[:, j]).any() else (np.nan, np.nan)
            lo_d, hi_d = np.percentile(d, q) if len(d) else (np.nan, np.nan)
            p = float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))) if len(d) else np.nan
            rows.append({"metric": k, "higher_is_better": HIGHER_IS_BETTER[k] > 0,
                         "a": pa[k], "a_lo": float(lo_a), "a_hi": float(hi_a),
                         "b": pb[k], "b_lo": float(lo_b), "b_hi": float(hi_b),
                         "diff": pb[k] - pa[k], "diff_lo": float(lo_d), "diff_hi": float(hi_d),
                         "p_value": p, "n_boot": n_boot})
    return pd.DataFrame(rows)


def parity_gate(table: pd.DataFrame, *, rule: Literal["interval", "paired"] = "interval",
                metrics: Sequence[str] = BIAS_METRICS) -> pd.DataFrame:
    """``table`` (from :func:`paired_bootstrap`) with ``worse`` and ``passed`` per metric.

    ``interval``: B is worse than A's interval (below ``a_lo`` when higher is better, above
    ``a_hi`` otherwise). ``paired``: B is worse and the paired difference's interval excludes 0.
    ``worse`` is set for every metric; only those in ``metrics`` can fail (``passed`` False).
    NaN estimates pass (nothing to compare).
    """
    if rule not in ("interval", "paired"):
        raise ValueError(f"rule must be 'interval' or 'paired'; found {rule!r}")
    out = table.copy()
    hib = out["higher_is_better"].to_numpy(dtype=bool)
    if rule == "interval":
        worse = np.where(hib, out["b"] < out["a_lo"], out["b"] > out["a_hi"])
    else:
        worse = np.where(hib, out["diff_hi"] < 0, out["diff_lo"] > 0)
    out["worse"] = worse
    out["gated"] = out["metric"].isin(list(metrics)).to_numpy()
    out["passed"] = ~(worse & out["gated"].to_numpy())
    return out


def suite_parity(df: pd.DataFrame, *, score_a: str, score_b: str, threshold: float = 0.5,
                 min_group_size: int = 30, n_boot: int = 200, fpr_gap: bool = True,
                 rule: Literal["interval", "paired"] = "interval",
                 seed: int | None = 0) -> dict[str, Any]:
    """Drift, the paired table and the gate of one suite, as a JSON-ready dict."""
    from debias.metrics import to_json_safe

    table = parity_gate(paired_bootstrap(df, score_a=score_a, score_b=score_b, threshold=threshold,
                                         min_group_size=min_group_size, n_boot=n_boot,
                                         fpr_gap=fpr_gap, seed=seed), rule=rule)
    return to_json_safe({"drift": score_drift(df[score_a], df[score_b], threshold=threshold),
                         "metrics": table.to_dict("records"), "rule": rule,
                         "passed": bool(table["passed"].all()),
                         "failed": table.loc[~table["passed"], "metric"].tolist()})
