"""The report's per-class section: what a model of more than two classes does to each class.

The rest of the report reads a K-class model as "focus class against the rest" at the decision
threshold. For K > 2 the evaluation also writes a ``multiclass`` block per suite
(:func:`debias.evaluation.measure.multiclass_suite_metrics`): demographic parity and equalized
odds differences of every class one-vs-rest and their maximum over classes, accuracy and
macro-F1 by group, and for counterfactual pairs the argmax flip rate and total-variation gaps.
:func:`per_class_context` turns one such block into the rows the template shows; the class names
are those of the run's ``metrics.json`` (its top-level ``classes``), never a fixed task's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from debias.evaluation.report._format import fmt
from debias.schema import NO_GROUP

__all__ = ["per_class_context"]

_CRITERIA = (("dp", "demographic_parity_difference"), ("eo", "equalized_odds_difference"))
_AUCS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def _class_names(block: Mapping[str, Any], classes: Sequence[str] | None, suite: str) -> list[str]:
    own = list(block.get("classes") or [])
    names = list(classes) if classes else own
    if own and names != own:
        raise ValueError(f"metrics.json names the classes {', '.join(map(str, names))} but suite {suite!r} "
                         f"was measured for {', '.join(map(str, own))}")
    if len(names) < 3:
        raise ValueError(f"a per-class block needs at least 3 class names; suite {suite!r} has {names!r}")
    return [str(n) for n in names]


def _ci(r: Mapping[str, Any], col: str) -> str:
    """``[lo, hi]`` of a value that carries an interval, else ""."""
    lo, hi = r.get(f"{col}_lo"), r.get(f"{col}_hi")
    return f"[{fmt(lo)}, {fmt(hi)}]" if lo is not None and hi is not None else ""


def _worst(v: Any, top: Any) -> bool:
    return v is not None and top is not None and float(v) == float(top)


def per_class_context(block: Mapping[str, Any] | None, *, suite: str, classes: Sequence[str] | None = None,
                      focus_class: str | None = None) -> dict[str, Any] | None:
    """The template's rows for one suite's ``multiclass`` block; None when there is none (binary).

    Parameters
    ----------
    block : the suite's ``multiclass`` entry of ``metrics.json`` (JSON-safe: NaN is None).
    suite : the suite's name, for error messages.
    classes : the run's class names (``metrics.json``'s top-level ``classes``); default the
        block's own. The criteria rows are the classes in this order, then their maximum.
    focus_class : the class the binary sections read against the rest (marked in the table).

    Returns
    -------
    ``{"classes", "focus", "criteria", "max", "groups", "overall", "counterfactual"}``: one
    criteria row per class with each value formatted and ``<key>_worst`` set where it is the
    maximum over classes; ``max`` holds the maxima and the classes they come from; ``groups``
    the accuracy / macro-F1 rows (large groups first, then by size); ``counterfactual`` the pair
    statistics or None.
    """
    if not block:
        return None
    names = _class_names(block, classes, suite)
    crit = list(block.get("criteria") or [])
    if len(crit) != len(names) + 1:  # one row per class, then the row of their maximum
        raise ValueError(f"suite {suite!r}: expected {len(names) + 1} per-class criteria rows "
                         f"({len(names)} classes and their maximum); found {len(crit)}")
    per_class, top = crit[:-1], crit[-1]
    rows = []
    for name, r in zip(names, per_class, strict=True):
        row: dict[str, Any] = {"name": name, "focus": name == focus_class}
        for key, col in _CRITERIA:
            row[key] = fmt(r.get(col))
            row[f"{key}_ci"] = _ci(r, col)
            row[f"{key}_worst"] = _worst(r.get(col), top.get(col))
        rows.append(row)
    mx = {}
    for key, col in _CRITERIA:
        mx[key] = fmt(top.get(col))
        mx[f"{key}_ci"] = _ci(top, col)
        mx[f"{key}_class"] = ", ".join(w["name"] for w in rows if w[f"{key}_worst"]) or "–"

    by = list(block.get("by_group") or [])
    overall = next((r for r in by if r.get("group") == "overall"), None)
    groups = [r for r in by if r.get("group") != "overall" and (r.get("count") or 0) > 0]
    groups.sort(key=lambda r: (bool(r.get("small_group")), -(r.get("count") or 0), str(r["group"])))

    def group_row(r: Mapping[str, Any], label: str) -> dict[str, Any]:
        return {"group": label, "count": fmt(r.get("count")), "small": bool(r.get("small_group")),
                "accuracy": fmt(r.get("accuracy")), "macro_f1": fmt(r.get("macro_f1"))}

    cf = block.get("counterfactual")
    aucs = [{"name": str(r.get("class")), **{m: fmt(r.get(f"min_{m}")) for m in _AUCS},
             **{f"{m}_group": r.get(f"min_{m}_group") or "–" for m in _AUCS}}
            for r in block.get("bias_auc") or []]
    return {
        "classes": names, "focus": focus_class if focus_class in names else None,
        "criteria": rows, "max": mx, "intervals": any(r["dp_ci"] for r in rows), "bias_auc": aucs,
        "groups": [group_row(r, "no identity term" if r["group"] == NO_GROUP else str(r["group"])) for r in groups],
        "overall": overall and group_row(overall, "all rows"),
        "counterfactual": None if not cf or not cf.get("n_pairs") else {
            k: fmt(cf.get(k)) for k in ("n_pairs", "flip_rate", "mean_tv_gap", "max_tv_gap")},
    }
