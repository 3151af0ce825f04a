"""Fairness gates: ``--gate "bnsp_auc.min>=0.9"`` makes an evaluation fail a CI job.

Grammar (spaces allowed anywhere)::

    [<suite>:]<metric>[.<agg>] <op> <number>

``metric`` is a name from :data:`METRICS`; a per-group metric needs ``agg``, one of ``min``,
``max``, ``mean`` (over the groups that have a value); ``op`` is one of ``>=``, ``<=``, ``>``,
``<``, ``==``. Without ``suite`` the gate reads the first suite that reports the metric, in
config order. Gates are parsed and checked against the catalogue before any inference, so a
typo fails in a second, not after an hour of scoring.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from debias.schema import CLASS_NAMES

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricInfo:
    """What a gateable metric is, for error messages and the report's labels.

    ``label`` names the classes as ``{neg}`` (label 0) and ``{pos}`` (label 1), so the words
    follow the task; :meth:`text` fills them in.
    """

    name: str
    per_group: bool
    better: Better
    label: str

    def text(self, class_names: tuple[str, str] = CLASS_NAMES) -> str:
        """The label with the task's class names, e.g. "non-toxic rows flagged toxic"."""
        neg, pos = class_names
        return self.label.format(neg=neg, pos=pos)


def _m(name: str, per_group: bool, better: Better, label: str) -> MetricInfo:
    return MetricInfo(name, per_group, better, label)


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    # Overall (one number per suite).
    _m("auc", False, "higher", "ROC AUC over all rows"),
    _m("accuracy", False, "higher", "Accuracy over all rows"),
    _m("final_bias_metric", False, "higher",
       "Final bias metric: 0.25 x overall AUC + 0.75 x power means of subgroup, BPSN and BNSP AUCs"),
    _m("dp_difference", False, "lower", "Largest gap in flagged rate between groups (demographic parity)"),
    _m("dp_ratio", False, "higher", "Smallest / largest flagged rate across groups"),
    _m("eo_difference", False, "lower", "Largest gap in true- or false-positive rate between groups (equalized odds)"),
    _m("fpr_difference", False, "lower", "Largest gap in false-positive rate between groups"),
    _m("fnr_difference", False, "lower", "Largest gap in false-negative rate between groups"),
    _m("cf_gap_mean", False, "lower", "Mean absolute score change when only the identity term is swapped"),
    _m("cf_gap_max", False, "lower", "Largest absolute score change when only the identity term is swapped"),
    _m("cf_flip_rate", False, "lower", "Share of counterfactual pairs whose decision flips"),
    _m("pair_gap_mean", False, "lower", "Mean score gap (first minus second sentence) over minimal pairs"),
    _m("pair_first_higher_rate", False, "lower",
       "Share of minimal pairs where the first (more stereotyping) sentence scores higher"),
    # Per group (one number per identity group; a gate aggregates with .min/.max/.mean).
    _m("selection_rate", True, "lower", "Share of rows flagged {pos}"),
    _m("fpr", True, "lower", "False-positive rate: {neg} rows flagged {pos}"),
    _m("fnr", True, "lower", "False-negative rate: {pos} rows missed"),
    _m("tpr", True, "higher", "True-positive rate: {pos} rows caught"),
    _m("group_accuracy", True, "higher", "Accuracy within the group"),
    _m("subgroup_auc", True, "higher", "Subgroup AUC: AUC on rows mentioning the group only"),
    _m("bpsn_auc", True, "higher",
       "BPSN AUC: group's {neg} rows vs other groups' {pos} rows (low = false positives)"),
    _m("bnsp_auc", True, "higher",
       "BNSP AUC: group's {pos} rows vs other groups' {neg} rows (low = false negatives)"),
    _m("cf_gap", True, "lower", "Mean absolute counterfactual score change for pairs touching the group"),
    _m("pair_gap", True, "lower", "Mean minimal-pair score gap for the bias type"),
    # Generative LM audit (debias audit-lm; debias.lm.audit.gate_values).
    _m("stereotype_score", False, "lower", "% of pairs where the LM prefers the stereotypical sentence (50 = none)"),
    _m("stereotype_deviation", False, "lower", "|stereotype score - 50|"),
    _m("stereotype_deviation_by_type", True, "lower", "|stereotype score - 50| per bias type"),
    _m("icat", False, "higher", "StereoSet ICAT: LMS x min(SS, 100 - SS) / 50"),
    _m("bbq_acc_ambig", False, "higher", "BBQ accuracy on ambiguous contexts (correct answer: unknown)"),
    _m("bbq_acc_disambig", False, "higher", "BBQ accuracy on disambiguated contexts"),
    _m("bbq_s_dis", False, "lower", "BBQ bias score in disambiguated contexts (x100, 0 = none)"),
    _m("bbq_s_amb", False, "lower", "BBQ bias score in ambiguous contexts (x100, 0 = none)"),
    _m("bbq_unparsed_rate", False, "lower", "Share of generated BBQ answers that name no option"),
    _m("bbq_abs_s_amb", True, "lower", "|BBQ ambiguous-context bias score| per category"),
    _m("bbq_abs_s_dis", True, "lower", "|BBQ disambiguated-context bias score| per category"),
    _m("cf_gen_gap_mean", False, "lower", "Mean max-min classifier score of continuations over a counterfactual set"),
    _m("cf_gen_gap_max", False, "lower", "Largest counterfactual gap of continuation scores"),
    _m("cf_gen_flip_rate", False, "lower", "Share of counterfactual sets whose continuations straddle the threshold"),
    _m("refusal_rate", False, "lower", "Share of continuations that read as a refusal"),
    _m("empty_rate", False, "lower", "Share of empty continuations"),
    _m("cf_gen_score_mean", True, "lower", "Mean classifier score of continuations about the group"),
)}

AGGREGATES = ("min", "max", "mean")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": None}
_GATE_RE = re.compile(
    r"^\s*(?:(?P<suite>[A-Za-z0-9_\-]+)\s*:\s*)?(?P<metric>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\.(?P<agg>[A-Za-z]+))?\s*(?P<op>>=|<=|==|>|<)\s*(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Gate:
    """A parsed gate expression."""

    expr: str
    metric: str
    agg: str | None
    op: str
    threshold: float
    suite: str | None = None

    @property
    def key(self) -> str:
        return self.metric if self.agg is None else f"{self.metric}.{self.agg}"


def available() -> str:
    """The gateable names as one line, for error messages."""
    scal = [m.name for m in METRICS.values() if not m.per_group]
    grp = [f"{m.name}.{{min,max,mean}}" for m in METRICS.values() if m.per_group]
    return "overall: " + ", ".join(scal) + "; per group: " + ", ".join(grp)


def parse_gate(expr: str, *, suites: Sequence[str] | None = None) -> Gate:
    """Parse one gate expression; ValueError naming what is wrong and what is available.

    Parameters
    ----------
    expr : e.g. ``"bnsp_auc.min>=0.9"``, ``"templates:fpr_difference <= 0.05"``.
    suites : the configured suite names, to check an explicit ``suite:`` prefix.
    """
    if not isinstance(expr, str):
        raise TypeError(f"a gate must be a string like 'bnsp_auc.min>=0.9'; found {type(expr).__name__}")
    m = _GATE_RE.match(expr)
    if m is None:
        raise ValueError(f"cannot parse gate {expr!r}; expected '[suite:]metric[.min|.max|.mean] OP number' "
                         f"with OP one of {', '.join(_OPS)}, e.g. 'bnsp_auc.min>=0.9'")
    metric, agg, suite = m["metric"], m["agg"], m["suite"]
    info = METRICS.get(metric)
    if info is None:
        raise ValueError(f"gate {expr!r}: unknown metric {metric!r}; available: {available()}")
    if info.per_group and agg is None:
        raise ValueError(f"gate {expr!r}: {metric} has one value per group; add an aggregate, "
                         f"e.g. '{metric}.{'min' if info.better == 'higher' else 'max'}'")
    if agg is not None and not info.per_group:
        raise ValueError(f"gate {expr!r}: {metric} is one overall number; drop '.{agg}'")
    if agg is not None and agg not in AGGREGATES:
        raise ValueError(f"gate {expr!r}: unknown aggregate {agg!r}; expected one of {', '.join(AGGREGATES)}")
    if suite is not None and suites is not None and suite not in suites:
        raise ValueError(f"gate {expr!r}: unknown suite {suite!r}; configured suites: {', '.join(suites)}")
    return Gate(expr.strip(), metric, agg, m["op"], float(m["num"]), suite)


def parse_gates(exprs: Sequence[str], *, suites: Sequence[str] | None = None) -> list[Gate]:
    """Parse every gate, reporting all bad ones at once."""
    gates, errors = [], []
    for e in exprs:
        try:
            gates.append(parse_gate(e, suites=suites))
        except (ValueError, TypeError) as err:
            errors.append(str(err))
    if errors:
        raise ValueError("invalid gate(s):\n  " + "\n  ".join(errors))
    return gates


def _aggregate(values: Mapping[str, float], agg: str) -> float:
    finite = [float(v) for v in values.values() if v is not None and math.isfinite(float(v))]
    if not finite:
        return math.nan
    if agg == "min":
        return min(finite)
    if agg == "max":
        return max(finite)
    return sum(finite) / len(finite)


def gate_value(gate: Gate, values: Mapping[str, Mapping[str, object]]) -> tuple[float, str | None]:
    """``(value, suite)`` of a gate's metric; NaN and None when no suite reports it.

    Parameters
    ----------
    values : suite -> metric name -> a float (overall metric) or a ``{group: float}`` mapping.
    """
    order = [gate.suite] if gate.suite is not None else list(values)
    for suite in order:
        v = values.get(suite, {}).get(gate.metric)
        if v is None:
            continue
        if isinstance(v, Mapping):
            return _aggregate(v, gate.agg or "mean"), suite
        return float(v), suite
    return math.nan, None


def check_gates(gates: Sequence[Gate], values: Mapping[str, Mapping[str, object]]) -> list[dict]:
    """Evaluate gates: ``[{"expr", "value", "passed", "suite", "reason"}]``.

    A metric that no suite reports, or that is NaN (no group large enough), FAILS its gate:
    a gate that silently passes when there is nothing to measure would defeat its purpose.
    """
    out = []
    for g in gates:
        value, suite = gate_value(g, values)
        if suite is None:
            passed, reason = False, f"no suite reports {g.metric}"
        elif not math.isfinite(value):
            passed, reason = False, f"{g.key} has no value in suite {suite!r} (too few rows per group?)"
        else:
            if g.op == "==":
                passed = math.isclose(value, g.threshold, rel_tol=1e-9, abs_tol=1e-12)
            else:
                passed = bool(_OPS[g.op](value, g.threshold))
            reason = None if passed else f"{g.key} = {value:.4g} in suite {suite!r}, needs {g.op} {g.threshold:g}"
        out.append({"expr": g.expr, "value": None if not math.isfinite(value) else value,
                    "passed": passed, "suite": suite, "reason": reason})
    return out


def _finite(v: object) -> float:
    return math.nan if v is None else float(v)


def metric_values(suite_metrics: Mapping[str, object], *, min_group_size: int = 30) -> dict[str, object]:
    """The gateable values of one suite from its metrics (``debias.evaluation.suites.suite_metrics``).

    Per-group values of groups under ``min_group_size`` rows are NaN, so ``.min`` over groups
    is not decided by a group of three sentences.
    """
    out: dict[str, object] = {}
    pg = suite_metrics.get("pair_gaps")
    if pg:
        first = pg[0]
        out["pair_gap_mean"] = _finite(first.get("mean_gap"))
        out["pair_first_higher_rate"] = _finite(first.get("first_higher_rate"))
        out["pair_gap"] = {r["bias_type"]: _finite(r.get("mean_gap")) for r in pg[1:]}
    s = suite_metrics.get("summary")
    if not s:
        return out
    rows = s.get("by_group", [])
    overall = next((r for r in rows if r.get("kind") == "overall"), {})
    out["auc"] = _finite(overall.get("roc_auc"))
    out["accuracy"] = _finite(overall.get("accuracy"))
    out["final_bias_metric"] = _finite(s.get("final_bias_metric"))
    crit = s.get("criteria", {})
    for key, name in (("dp_difference", "demographic_parity_difference"),
                      ("dp_ratio", "demographic_parity_ratio"),
                      ("eo_difference", "equalized_odds_difference")):
        if name in crit:
            out[key] = _finite(crit[name].get("value"))
    for d in s.get("disparities", []):
        if d.get("metric") in ("fpr", "fnr"):
            out[f"{d['metric']}_difference"] = _finite(d.get("difference"))
    groups = [r for r in rows if r.get("kind") == "group"]
    for key, col in (("selection_rate", "selection_rate"), ("fpr", "fpr"), ("fnr", "fnr"),
                     ("tpr", "tpr"), ("group_accuracy", "accuracy")):
        out[key] = {r["group"]: (math.nan if r.get("small_group") else _finite(r.get(col))) for r in groups}
    for key in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        out[key] = {r["group"]: (_finite(r.get(key)) if (r.get("n") or 0) >= min_group_size else math.nan)
                    for r in s.get("bias_auc", []) if r.get("group") != "overall"}
    cf = s.get("counterfactual")
    if cf:
        out["cf_gap_mean"] = _finite(cf.get("mean_abs_gap"))
        out["cf_gap_max"] = _finite(cf.get("max_abs_gap"))
        out["cf_flip_rate"] = _finite(cf.get("flip_rate"))
    by = suite_metrics.get("counterfactual_by_group")
    if by is not None:
        out["cf_gap"] = {r["group"]: _finite(r.get("mean_abs_gap")) for r in by}
    return out
