"""From scored suites to what the evaluation reports: scores put back on their suites, the
decision rule (configured threshold, F1-best on the validation suite, or per-group thresholds
fitted there or stored with the model), predictions, per-suite
metrics, gate values and gate checks. Pure functions of the suite frames; the evaluate job
only reads, scores and writes around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from debias.evaluation.gates import Gate, check_gates, metric_values
from debias.evaluation.suites import suite_metrics
from debias.evaluation.thresholds import GroupThresholds, decide, fit_group_thresholds

__all__ = ["attach_scores", "choose_rule", "choose_threshold", "measure_suites", "with_predictions"]


def attach_scores(frames: Mapping[str, pd.DataFrame], scores: np.ndarray) -> dict[str, pd.DataFrame]:
    """Each suite with its ``y_score`` column: ``scores`` holds every suite's rows, in the order
    of ``frames`` and of the rows within each suite (one inference pass over all suites)."""
    total = sum(len(df) for df in frames.values())
    if len(scores) != total:
        raise ValueError(f"expected {total} scores (the rows of every suite); found {len(scores)}")
    out, start = {}, 0
    for name, df in frames.items():
        out[name] = df.assign(y_score=scores[start:start + len(df)])
        start += len(df)
    return out


def choose_threshold(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], *, threshold: float,
                     tune: bool) -> tuple[float, str]:
    """``(threshold, where it came from)``: the configured ``threshold``, or with ``tune`` the
    F1-best threshold on the first ``val_split`` suite (scored frames)."""
    if not tune:
        return threshold, "config"
    from debias.metrics import best_f1_threshold

    val = _val_suite(frames, kinds, "evaluate.tune_threshold")
    best, val_f1 = best_f1_threshold(frames[val]["y_true"], frames[val]["y_score"])
    return best, f"F1-best on suite {val!r} (F1 {val_f1:.4f})"


def _val_suite(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], what: str) -> str:
    val = next((n for n in frames if kinds[n] == "val_split"), None)
    if val is None:
        raise ValueError(f"{what} needs a val_split suite; suite kinds present: "
                         + ", ".join(sorted(set(kinds.values()))))
    return val


def choose_rule(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], *, threshold: float,
                tune: bool, group_thresholds: str = "none", min_rows: int = 30,
                stored: GroupThresholds | None = None, seed: int = 0) -> GroupThresholds:
    """The decision rule for every suite (scored frames).

    ``group_thresholds``: ``"none"``, one global threshold (:func:`choose_threshold`);
    ``"stored"``, the rule stored with the model (``stored``); a constraint name, per-group
    thresholds fitted on the first val_split suite's scores and the groups annotated on its
    texts, with the global threshold recorded beside them. ``seed`` goes into a new rule (its
    randomised decisions draw from it with each text); a stored rule keeps its own.
    """
    if group_thresholds == "stored":
        if stored is None:
            raise ValueError("group_thresholds: stored, but the model dir holds no group_thresholds.json")
        return stored
    t, source = choose_threshold(frames, kinds, threshold=threshold, tune=tune)
    if group_thresholds == "none":
        return GroupThresholds.global_only(t, source=source, seed=seed)
    val = _val_suite(frames, kinds, f"group_thresholds: {group_thresholds}")
    df = frames[val]
    groups = [list(g) if g is not None else [] for g in df["groups"]]
    rule = fit_group_thresholds(df["y_true"].astype(int).to_numpy(), df["y_score"].to_numpy(), groups,
                                constraint=group_thresholds, min_rows=min_rows, threshold=t,
                                source=f"{group_thresholds} fitted on suite {val!r} ({len(df):,} rows)")
    rule.seed = int(seed)
    return rule


def with_predictions(frames: Mapping[str, pd.DataFrame], rule: float | GroupThresholds, *,
                     seed: int | None = None) -> dict[str, pd.DataFrame]:
    """Each scored suite with ``y_pred`` (int8): ``y_score >= rule`` for a number, else the
    rule's decisions (:func:`debias.evaluation.thresholds.decide`: per group, drawn from the
    rule's seed, or ``seed``, with each text)."""
    if isinstance(rule, GroupThresholds):
        return {n: df.assign(y_pred=decide(df, rule=rule if rule.rules else None, threshold=rule.threshold,
                                           seed=seed)) for n, df in frames.items()}
    return {n: df.assign(y_pred=(df["y_score"] >= rule).astype("int8")) for n, df in frames.items()}


def measure_suites(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], gates: Sequence[Gate], *,
                   threshold: float, n_boot: int, min_group_size: int, seed: int) -> dict[str, Any]:
    """Metrics per suite (:func:`debias.evaluation.suites.suite_metrics`), the gateable values
    per suite and the gate checks: ``{"metrics", "values", "gates"}``."""
    metrics = {name: suite_metrics(df, kind=kinds[name], threshold=threshold, n_boot=n_boot,
                                   min_group_size=min_group_size, seed=seed)
               for name, df in frames.items()}
    values = {name: metric_values(m, min_group_size=min_group_size) for name, m in metrics.items()}
    return {"metrics": metrics, "values": values, "gates": check_gates(gates, values)}
