"""From scored suites to what the evaluation reports: scores put back on their suites, the
decision threshold (configured, or F1-best on the validation suite), predictions, per-suite
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

__all__ = ["attach_scores", "choose_threshold", "measure_suites", "with_predictions"]


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

    val = next((n for n in frames if kinds[n] == "val_split"), None)
    if val is None:
        raise ValueError("evaluate.tune_threshold needs a val_split suite; suite kinds present: "
                         + ", ".join(sorted(set(kinds.values()))))
    best, val_f1 = best_f1_threshold(frames[val]["y_true"], frames[val]["y_score"])
    return best, f"F1-best on suite {val!r} (F1 {val_f1:.4f})"


def with_predictions(frames: Mapping[str, pd.DataFrame], threshold: float) -> dict[str, pd.DataFrame]:
    """Each scored suite with ``y_pred`` (int8, ``y_score >= threshold``)."""
    return {n: df.assign(y_pred=(df["y_score"] >= threshold).astype("int8")) for n, df in frames.items()}


def measure_suites(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], gates: Sequence[Gate], *,
                   threshold: float, n_boot: int, min_group_size: int, seed: int) -> dict[str, Any]:
    """Metrics per suite (:func:`debias.evaluation.suites.suite_metrics`), the gateable values
    per suite and the gate checks: ``{"metrics", "values", "gates"}``."""
    metrics = {name: suite_metrics(df, kind=kinds[name], threshold=threshold, n_boot=n_boot,
                                   min_group_size=min_group_size, seed=seed)
               for name, df in frames.items()}
    values = {name: metric_values(m, min_group_size=min_group_size) for name, m in metrics.items()}
    return {"metrics": metrics, "values": values, "gates": check_gates(gates, values)}
