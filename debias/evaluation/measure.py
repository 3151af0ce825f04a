"""From scored suites to what the evaluation reports: scores put back on their suites, the
decision rule (configured threshold, F1-best on the validation suite, or per-group thresholds
fitted there or stored with the model), predictions, per-suite
metrics, gate values and gate checks. Pure functions of the suite frames; the evaluate job
only reads, scores and writes around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from debias.evaluation.gates import Gate, check_gates, metric_values
from debias.evaluation.suites import suite_metrics
from debias.evaluation.thresholds import GroupThresholds, decide, fit_group_thresholds

__all__ = ["CLASS_LABEL_KINDS", "attach_scores", "choose_rule", "choose_threshold", "focus_labels",
           "measure_suites", "multiclass_suite_metrics", "with_predictions"]

# Suites whose y_true is the corpus's class id (the others' is already "is the focus class").
CLASS_LABEL_KINDS = ("test_split", "val_split", "counterfactual_pairs", "labelled_file")


def attach_scores(frames: Mapping[str, pd.DataFrame], scores: np.ndarray,
                  proba: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
    """Each suite with its ``y_score`` column: ``scores`` holds every suite's rows, in the order
    of ``frames`` and of the rows within each suite (one inference pass over all suites).
    ``proba`` (the ``(n, K)`` class probabilities of a K-class model, same rows) adds
    ``y_proba``, one vector per row."""
    total = sum(len(df) for df in frames.values())
    if len(scores) != total:
        raise ValueError(f"expected {total} scores (the rows of every suite); found {len(scores)}")
    if proba is not None and len(proba) != total:
        raise ValueError(f"expected {total} probability rows; found {len(proba)}")
    out, start = {}, 0
    for name, df in frames.items():
        extra = {"y_score": scores[start:start + len(df)]}
        if proba is not None:
            extra["y_proba"] = list(proba[start:start + len(df)])
        out[name] = df.assign(**extra)
        start += len(df)
    return out


def focus_labels(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], *, focus: int,
                 n_classes: int) -> dict[str, pd.DataFrame]:
    """The binary reading of a K-class task: suites of :data:`CLASS_LABEL_KINDS` keep their class
    id as ``y_class`` and get ``y_true = (y_class == focus)``, so every binary metric, threshold
    and gate reads the focus class against the rest. Binary with focus 1: unchanged."""
    if n_classes == 2 and focus == 1:
        return dict(frames)
    out = {}
    for name, df in frames.items():
        if kinds[name] in CLASS_LABEL_KINDS and "y_class" not in df.columns:
            y = df["y_true"].astype("int64")
            df = df.assign(y_class=y.to_numpy(), y_true=(y == focus).astype("int64").to_numpy())
        out[name] = df
    return out


def multiclass_suite_metrics(df: pd.DataFrame, *, classes: Sequence[str], min_group_size: int,
                             n_boot: int = 0, seed: int = 0) -> dict[str, Any]:
    """Per-class fairness of a K-class suite (``y_class``, ``y_proba``, ``groups``): demographic
    parity and equalized odds differences per class one-vs-rest and their maximum, accuracy and
    macro-F1 by group (argmax decisions), and for paired rows the argmax flip rate and total-
    variation gaps (:mod:`debias.metrics.multiclass`). With ``n_boot`` the per-class criteria
    and their maximum carry 95% bootstrap intervals (``<criterion>_lo`` / ``_hi``)."""
    from debias.metrics.multiclass import (
        accuracy_by_group,
        multiclass_bias_auc,
        multiclass_counterfactual,
        multiclass_criteria,
    )

    k = len(classes)
    p = np.stack([np.asarray(v, dtype=np.float64) for v in df["y_proba"]])
    frame = pd.DataFrame({"y_true": df["y_class"].astype("int64").to_numpy(), "y_pred": p.argmax(axis=1),
                          "y_proba": list(p), "groups": df["groups"].to_numpy()})
    out: dict[str, Any] = {
        "classes": list(classes),
        "criteria": multiclass_criteria(frame, classes=classes, min_group_size=min_group_size,
                                        **({"ci": True, "n_boot": n_boot, "seed": seed} if n_boot else {})
                                        ).to_dict("records"),
        "by_group": accuracy_by_group(frame, n_classes=k, min_group_size=min_group_size).to_dict("records"),
        "bias_auc": _worst_auc_per_class(multiclass_bias_auc(frame, classes=classes), min_group_size),
    }
    if "pair_id" in df.columns and df["pair_id"].notna().any():
        out["counterfactual"] = multiclass_counterfactual(frame.assign(pair_id=df["pair_id"].to_numpy()), n_classes=k)
    return out


def _worst_auc_per_class(table: pd.DataFrame, min_group_size: int) -> list[dict[str, Any]]:
    """Per class: the lowest subgroup, BPSN and BNSP AUC over groups of at least
    ``min_group_size`` rows, and the group that has it (NaN AUCs, a group lacking one side of
    the class, are passed over)."""
    out = []
    for name, t in table.groupby("class", sort=False):
        t = t[(t["group"] != "overall") & (t["n"] >= min_group_size)]
        row: dict[str, Any] = {"class": name}
        for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
            vals = t[["group", m]].dropna()
            worst = vals.loc[vals[m].idxmin()] if len(vals) else None
            row[f"min_{m}"] = float(worst[m]) if worst is not None else float("nan")
            row[f"min_{m}_group"] = str(worst["group"]) if worst is not None else None
        out.append(row)
    return out


def choose_threshold(frames: Mapping[str, pd.DataFrame], kinds: Mapping[str, str], *, threshold: float,
                     tune: bool, recall: float | None = None) -> tuple[float, str]:
    """``(threshold, where it came from)``: the configured ``threshold``, or with ``tune`` the
    F1-best threshold on the first ``val_split`` suite (scored frames); with ``recall`` too, the
    highest threshold whose recall on that suite reaches ``recall`` instead."""
    if not tune:
        return threshold, "config"
    from debias.metrics import best_f1_threshold, recall_matched_threshold

    val = _val_suite(frames, kinds, "evaluate.tune_threshold")
    if recall is not None:
        t = recall_matched_threshold(frames[val]["y_true"], frames[val]["y_score"], recall)
        got = float((frames[val].loc[frames[val]["y_true"] == 1, "y_score"] >= t).mean())
        return t, f"recall-matched on suite {val!r} (recall {got:.4f} >= {recall:.4f})"
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
                stored: GroupThresholds | None = None, seed: int = 0,
                recall: float | None = None) -> GroupThresholds:
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
    t, source = choose_threshold(frames, kinds, threshold=threshold, tune=tune, recall=recall)
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
                   threshold: float, n_boot: int, min_group_size: int, seed: int,
                   classes: Sequence[str] | None = None,
                   on_suite: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Metrics per suite (:func:`debias.evaluation.suites.suite_metrics`), the gateable values
    per suite and the gate checks: ``{"metrics", "values", "gates"}``. With ``classes`` (more
    than two) a suite holding ``y_class`` and ``y_proba`` gets a ``multiclass`` block too.
    ``on_suite(name, rows)`` is called after each suite (progress)."""
    metrics = {}
    for name, df in frames.items():
        core = df.drop(columns=[c for c in ("y_proba", "y_class") if c in df.columns])
        metrics[name] = suite_metrics(core, kind=kinds[name], threshold=threshold, n_boot=n_boot,
                                      min_group_size=min_group_size, seed=seed)
        if classes is not None and len(classes) > 2 and {"y_class", "y_proba"} <= set(df.columns):
            metrics[name]["multiclass"] = multiclass_suite_metrics(df, classes=classes, min_group_size=min_group_size,
                                                                   n_boot=n_boot, seed=seed)
        if on_suite is not None:
            on_suite(name, len(df))
    values = {name: metric_values(m, min_group_size=min_group_size) for name, m in metrics.items()}
    return {"metrics": metrics, "values": values, "gates": check_gates(gates, values)}
