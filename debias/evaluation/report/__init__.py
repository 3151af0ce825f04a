"""The fairness report: one self-contained HTML file for people, one JSON file for machines.

:func:`render_report` takes what the evaluation wrote (metrics, predictions), the data audit
and the manifests of one or more runs, and returns the HTML: figures are embedded PNGs, the
stylesheet is inlined, nothing is fetched when the file is opened. Every number has a label
that says what it is and which way is better (:data:`debias.evaluation.gates.METRICS`). With several
runs, a comparison table (change against the first run, coloured by whether it is an
improvement) and an accuracy-vs-fairness Pareto plot come first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from debias.evaluation.gates import METRICS, parse_gates
from debias.evaluation.report import plots
from debias.evaluation.report._format import fmt
from debias.evaluation.report.per_class import per_class_context
from debias.metrics.group_intervals import INTERVAL_METHODS
from debias.schema import NO_GROUP

HERE = Path(__file__).parent
MAX_GROUPS_PLOTTED = 20

SUITE_KIND_TEXT = {
    "test_split": "Held-out test split of the run's corpus: real texts with their real labels.",
    "val_split": "Validation split of the run's corpus (where a tuned decision threshold is chosen).",
    "identity_templates": ("The project's identity templates: the same sentences with only the identity term "
                           "changed, in a {neg} (label 0) and a {pos} (label 1) version. An unbiased model "
                           "scores every group alike on the same template."),
    "counterfactual_pairs": ("Test texts paired with a copy in which identity terms were swapped "
                             "(e.g. 'she' for 'he'). An unbiased model gives both the same score."),
    "labelled_file": "An external labelled suite read from a file.",
    "minimal_pairs": ("An external set of sentence pairs that differ in the group they are about "
                      "(first = more stereotyping sentence, second = less)."),
}

# Headline numbers, in the order the summary and the comparison show them.
HEADLINE = ("auc", "final_bias_metric", "bnsp_auc.min", "bpsn_auc.min", "subgroup_auc.min", "dp_difference",
            "eo_difference", "fpr_difference", "fnr_difference", "cf_gap_mean", "cf_flip_rate",
            "pair_gap_mean", "pair_first_higher_rate")
# The verdict's table: the headline bias metrics, per suite that reports them
VERDICT = ("bnsp_auc.min", "bpsn_auc.min", "subgroup_auc.min", "dp_difference", "eo_difference", "cf_flip_rate",
           "pair_first_higher_rate")


@dataclass
class RunInput:
    """Everything the report reads about one run (``jobs.report`` loads it from RUN_DIR)."""

    name: str
    run_dir: str
    metrics: dict[str, Any]
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    preprocess_manifest: dict[str, Any] | None = None
    evaluate_manifest: dict[str, Any] | None = None
    model_card: dict[str, Any] | None = None


def headline_value(values: dict[str, Any], key: str) -> float | None:
    """A scalar (``auc``) or an aggregate of a per-group metric (``bnsp_auc.min``)."""
    name, _, agg = key.partition(".")
    v = values.get(name)
    if v is None:
        return None
    if isinstance(v, dict):
        finite = [float(x) for x in v.values() if x is not None and math.isfinite(float(x))]
        if not finite:
            return None
        return {"min": min, "max": max}.get(agg, lambda a: sum(a) / len(a))(finite)
    return None if not math.isfinite(float(v)) else float(v)


def headline_label(key: str, class_names: tuple[str, str] = plots.CLASS_NAMES) -> tuple[str, str]:
    """``(plain-language label, better)`` for a headline key, in the words of ``class_names``."""
    name, _, agg = key.partition(".")
    info = METRICS[name]
    label = info.text(class_names)
    if agg:
        label = {"min": "Worst group: ", "max": "Worst group: ", "mean": "Mean over groups: "}[agg] + label
    return label, info.better


def _direction(better: str) -> str:
    return "higher is better" if better == "higher" else "lower is better"


def _headline_rows(values: dict[str, Any], class_names: tuple[str, str]) -> list[dict[str, Any]]:
    rows = []
    for key in HEADLINE:
        v = headline_value(values, key)
        if v is None:
            continue
        label, better = headline_label(key, class_names)
        rows.append({"key": key, "label": label, "value": fmt(v), "better": _direction(better)})
    return rows


def _group_rows(summary: dict[str, Any]) -> tuple[list[dict], dict | None]:
    rows = [r for r in summary.get("by_group", []) if r.get("kind") in ("group", "intersection")]
    rows = [r for r in rows if (r.get("count") or 0) > 0]
    rows.sort(key=lambda r: (bool(r.get("small_group")), -(r.get("count") or 0), r["group"]))
    overall = next((r for r in summary.get("by_group", []) if r.get("kind") == "overall"), None)
    return rows, overall


def _ci(r: dict, m: str) -> str:
    v, lo, hi = r.get(m), r.get(f"{m}_lo"), r.get(f"{m}_hi")
    if v is None:
        return "–"
    if lo is None or hi is None:
        return fmt(v)
    return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"


def _auc_cell(v: Any, lo: Any = None, hi: Any = None) -> dict[str, str]:
    """Background from red (0.5, chance) to green (1.0) so weak groups stand out; the
    bootstrap interval after the value where there is one."""
    if v is None:
        return {"text": "–", "style": ""}
    t = max(0.0, min(1.0, (float(v) - 0.5) / 0.5))
    r, g = int(229 - 120 * t), int(115 + 100 * t)
    text = fmt(v) if lo is None or hi is None else f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"
    return {"text": text, "style": f"background: rgba({r},{g},120,0.35)"}


def _agreement_context(a: dict[str, Any] | None) -> dict[str, Any] | None:
    """The words of the method-agreement note (``metrics.json``'s ``explain_agreement``), or None."""
    if not a or not a.get("n_cases"):
        return None
    n, share = int(a["n_cases"]), float(a.get("top1_agreement") or 0.0)
    return {"methods_text": " and ".join(str(x).replace("_", " ") for x in a.get("methods", [])),
            "n": n, "top1": round(share * n), "top1_share": f"{share:.0%}", "k": a.get("top_k", 3),
            "overlap": fmt(a.get("top_k_overlap")), "disagree": ", ".join(map(str, a.get("disagree_ids") or []))}


def _attribution_html(attr: dict[str, Any] | None) -> Any:
    from markupsafe import Markup, escape

    if not attr or not attr.get("tokens"):
        return Markup("<em>no attribution</em>")
    vals = [abs(float(v)) for _, v in attr["tokens"]]
    top = max(vals) or 1.0
    spans = []
    for w, v in attr["tokens"]:
        a = min(abs(float(v)) / top, 1.0) * 0.75
        col = f"rgba(197,48,48,{a:.2f})" if v > 0 else f"rgba(43,108,176,{a:.2f})"
        spans.append(f'<span class="tok" style="background:{col}" title="{float(v):+.4f}">{escape(w)}</span>')
    return Markup(" ".join(spans))


def _suite_context(name: str, m: dict[str, Any], values: dict[str, Any], preds: pd.DataFrame | None,
                   threshold: float, min_group_size: int, class_names: tuple[str, str]) -> dict[str, Any]:
    kind = m.get("kind", "")
    neg, pos = class_names
    ctx: dict[str, Any] = {"name": name, "kind": kind, "kind_text": SUITE_KIND_TEXT.get(kind, "").format(neg=neg, pos=pos),
                           "n_rows": fmt(m.get("n_rows")), "headline": _headline_rows(values, class_names), "figures": [],
                           "min_group_size": min_group_size}
    s = m.get("summary")
    if s:
        rows, overall = _group_rows(s)
        big = [r for r in rows if not r.get("small_group")][:MAX_GROUPS_PLOTTED]
        shown = big or rows[:MAX_GROUPS_PLOTTED]
        ctx["n_groups"] = len(rows)
        ctx["n_small"] = sum(bool(r.get("small_group")) for r in rows)
        ctx["groups_plotted"] = len(shown)
        for metric, title, xlabel in (
            ("fpr", "False-positive rate per group", f"Share of {neg} rows flagged {pos} — lower is better"),
            ("fnr", "False-negative rate per group", f"Share of {pos} rows missed — lower is better"),
            ("selection_rate", "Flagged rate per group", f"Share of rows flagged {pos} (parity: equal across groups)"),
        ):
            if any(r.get(metric) is not None for r in shown):
                ctx["figures"].append({
                    "title": title, "caption": f"Dots: value per group; bars: 95% interval (Wilson); dashed: all rows. "
                                               f"Groups under {min_group_size} rows are hollow.",
                    "uri": plots.interval_plot(shown, metric=metric, title=title, xlabel=xlabel,
                                               overall=(overall or {}).get(metric))})
        ctx["group_table"] = [{
            "group": r["group"], "count": fmt(r.get("count")), "small": bool(r.get("small_group")),
            "base_rate": fmt(r.get("base_rate")), "selection_rate": _ci(r, "selection_rate"),
            "fpr": _ci(r, "fpr"), "fnr": _ci(r, "fnr"), "roc_auc": _ci(r, "roc_auc")} for r in rows]
        ctx["overall"] = overall and {"count": fmt(overall.get("count")), "base_rate": fmt(overall.get("base_rate")),
                                      "selection_rate": _ci(overall, "selection_rate"), "fpr": _ci(overall, "fpr"),
                                      "fnr": _ci(overall, "fnr"), "roc_auc": _ci(overall, "roc_auc")}
        ba = [r for r in s.get("bias_auc", []) if r.get("group") != "overall"]
        ba.sort(key=lambda r: (r.get("bnsp_auc") is None, r.get("bnsp_auc") or 0))
        ctx["bias_auc"] = [{"group": r["group"], "n": fmt(r.get("n")), "n_positive": fmt(r.get("n_positive")),
                            "small": (r.get("n") or 0) < min_group_size,
                            **{k: _auc_cell(r.get(f"{m}_auc"), r.get(f"{m}_auc_lo"), r.get(f"{m}_auc_hi"))
                               for k, m in (("subgroup", "subgroup"), ("bpsn", "bpsn"), ("bnsp", "bnsp"))}}
                           for r in ba]
        ctx["final_bias_metric"] = fmt(s.get("final_bias_metric"))
        crit = s.get("criteria", {})
        ctx["criteria"] = [{"name": k.replace("_", " "), "value": fmt(c.get("value")),
                            "ci": f"[{fmt(c.get('ci_low'))}, {fmt(c.get('ci_high'))}]",
                            "between": f"{c.get('min_group') or '–'} vs {c.get('max_group') or '–'}",
                            "better": "higher is better (1 = parity)" if "ratio" in k else "lower is better (0 = parity)"}
                           for k, c in crit.items()]
        tests = [t for t in s.get("tests", []) if t.get("significant")]
        tests.sort(key=lambda t: (t.get("p_adjusted") is None, t.get("p_adjusted") or 1.0))
        ctx["tests"] = [{"metric": t["metric"], "group": t["group"], "value": fmt(t.get("value")),
                         "rest": fmt(t.get("rest_value")), "difference": fmt(t.get("difference")),
                         "p": fmt(t.get("p_adjusted"), 4), "n": fmt(t.get("n"))} for t in tests[:30]]
        ctx["n_tests"] = len(s.get("tests", []))
        if preds is not None and len(preds) and kind != "minimal_pairs":
            gnames = [r["group"] for r in shown if r.get("kind") == "group"]
            ctx["figures"].append({"title": "ROC curves", "caption": "Rows mentioning each group (largest groups "
                                   "first); a curve further up and left is better.",
                                   "uri": plots.roc_curves(preds, gnames, title=f"ROC curves — {name}",
                                                           class_names=class_names)})
            ctx["figures"].append({"title": "Score distributions", "caption": "Boxes span the middle half of the "
                                   "scores; whiskers the rest. Blue boxes above the threshold mean false "
                                   "positives for that group; red boxes below it mean misses.",
                                   "uri": plots.score_distributions(preds, gnames, threshold=threshold,
                                                                    title=f"Scores per group — {name}",
                                                                    class_names=class_names)})
        cf = s.get("counterfactual")
        if cf and cf.get("n_pairs"):
            ci = cf.get("mean_abs_gap_ci") or [None, None]
            fci = cf.get("flip_rate_ci") or [None, None]
            ctx["counterfactual"] = {
                "n_pairs": fmt(cf.get("n_pairs")),
                "mean_abs_gap": f"{fmt(cf.get('mean_abs_gap'))} [{fmt(ci[0])}, {fmt(ci[1])}]",
                "max_abs_gap": fmt(cf.get("max_abs_gap")),
                "flip_rate": f"{fmt(cf.get('flip_rate'))} [{fmt(fci[0])}, {fmt(fci[1])}]"}
    by = m.get("counterfactual_by_group")
    if by:
        top = by[:MAX_GROUPS_PLOTTED]
        ctx["figures"].append({"title": "Counterfactual gap per group",
                               "caption": "Mean absolute change of the score when identity terms are swapped, "
                                          "over pairs that mention the group — lower is better (0 = the model "
                                          "ignores the identity term).",
                               "uri": plots.bar_plot([r["group"] for r in top], [r["mean_abs_gap"] for r in top],
                                                     title="Counterfactual score gap per group",
                                                     xlabel="Mean |score(original) − score(swapped)| — lower is better")})
        ctx["cf_table"] = [{"group": r["group"], "n_pairs": fmt(r["n_pairs"]), "mean": fmt(r["mean_abs_gap"]),
                            "max": fmt(r["max_abs_gap"]), "flip": fmt(r["flip_rate"])} for r in by]
    pg = m.get("pair_gaps")
    if pg:
        ctx["pair_gaps"] = [{"bias_type": r["bias_type"], "n_pairs": fmt(r["n_pairs"]),
                             "mean_gap": f"{fmt(r.get('mean_gap'))} [{fmt(r.get('mean_gap_lo'))}, {fmt(r.get('mean_gap_hi'))}]",
                             "mean_abs_gap": fmt(r.get("mean_abs_gap")),
                             "first_higher": fmt(r.get("first_higher_rate")), "p": fmt(r.get("sign_test_p"), 4)}
                            for r in pg]
        ctx["figures"].append({"title": "Minimal-pair gap by bias type",
                               "caption": "Mean of score(first sentence) − score(second) with 95% bootstrap "
                                          "interval. Closer to 0 is better; red (positive): the more "
                                          f"stereotyping sentence scores as more {pos}.",
                               "uri": plots.bar_plot([r["bias_type"] for r in pg], [r["mean_gap"] for r in pg],
                                                     lo=[r["mean_gap_lo"] for r in pg], hi=[r["mean_gap_hi"] for r in pg],
                                                     title="Score gap within minimal pairs", signed=True,
                                                     xlabel="Mean score(first) − score(second) — closer to 0 is better")})
    return ctx


def _audit_context(audit: dict | None, manifest: dict | None) -> dict[str, Any] | None:
    if not audit and not manifest:
        return None
    out: dict[str, Any] = {"counts": [], "groups": []}
    if manifest:
        for k, v in (manifest.get("rows") or {}).items():
            if isinstance(v, dict):
                out["counts"].extend({"name": f"{k.replace('_', ' ')}: {kk}", "value": fmt(vv)}
                                     for kk, vv in v.items() if not isinstance(vv, (dict, list)))
            else:
                out["counts"].append({"name": f"rows {k.replace('_', ' ')}", "value": fmt(v)})
        for reason, n in (manifest.get("reject_reasons") or {}).items():
            out["counts"].append({"name": f"rejected because: {reason}", "value": fmt(n)})
    if audit:
        out["n"], out["base_rate"] = fmt(audit.get("n")), fmt(audit.get("base_rate"))
        out["min_group_size"] = audit.get("min_group_size")
        groups = audit.get("groups") or {}
        items = sorted(groups.items(), key=lambda kv: (kv[0].startswith("__"), -(kv[1].get("n") or 0), kv[0]))
        for g, r in items:
            lor = r.get("log_odds_ratio")
            out["groups"].append({
                "group": "no identity term" if g == NO_GROUP else g, "n": fmt(r.get("n")),
                "share": fmt(r.get("share")), "label_rate": fmt(r.get("label_rate")),
                "lor": "–" if lor is None else f"{lor:+.2f} [{r.get('ci_low'):+.2f}, {r.get('ci_high'):+.2f}]",
                "p": fmt(r.get("p_value"), 4), "small": bool(r.get("small"))})
    return out


def _gate_key(expr: str) -> str | None:
    try:
        return parse_gates([expr])[0].key
    except ValueError:  # a gate the metrics file carries but this version cannot parse
        return None


def _verdict(run: RunInput, class_names: tuple[str, str]) -> dict[str, Any]:
    """The report's first word on a run: how many gates passed, which failed, and the headline
    bias metrics per suite with the result of the gate set on each (if any)."""
    gates = run.metrics.get("gates", [])
    keyed = [(_gate_key(g.get("expr", "")), g) for g in gates]
    rows = []
    for suite, vals in run.metrics.get("gate_values", {}).items():
        for key in VERDICT:
            v = headline_value(vals, key)
            if v is None:
                continue
            label, better = headline_label(key, class_names)
            hit = [g for k, g in keyed if k == key and g.get("suite") == suite]
            gate = "" if not hit else ("PASS" if all(g["passed"] for g in hit) else "FAIL")
            rows.append({"suite": suite, "label": label, "value": fmt(v), "better": _direction(better),
                         "gate": gate, "gates": ", ".join(g["expr"] for g in hit)})
    failed = [g["expr"] for g in gates if not g["passed"]]
    if not gates:
        text = "No gates were set, so nothing passed or failed; the headline bias metrics are below."
    elif failed:
        text = (f"{len(gates) - len(failed)} of {len(gates)} gates passed; "
                f"failed: {', '.join(failed)}.")
    else:
        text = f"All {len(gates)} gate{'s' if len(gates) != 1 else ''} passed."
    return {"name": run.name, "text": text, "failed": bool(failed), "rows": rows}


def _run_context(run: RunInput, class_names: tuple[str, str]) -> dict[str, Any]:
    m = run.metrics
    cfg = (run.evaluate_manifest or {}).get("config") or {}
    threshold = float(m.get("threshold", cfg.get("threshold", 0.5)))
    mgs = int(cfg.get("min_group_size", 30))
    values = m.get("gate_values", {})
    suites = [{**_suite_context(n, sm, values.get(n, {}), run.predictions.get(n), threshold, mgs, class_names),
               "per_class": per_class_context(sm.get("multiclass"), suite=n, classes=m.get("classes"),
                                              focus_class=m.get("focus_class"))}
              for n, sm in m.get("suites", {}).items()]
    cases = []
    for c in m.get("worst_cases", []):
        cases.append({**c, "kind_text": {"counterfactual_gap": "Largest counterfactual gap",
                                         "false_positive": "Confident false positive",
                                         "false_negative": "Confident miss"}.get(c["kind"], c["kind"]),
                      "y_score_f": fmt(c.get("y_score")), "partner_score_f": fmt(c.get("partner_score")),
                      "error_f": fmt(c.get("error")), "groups_f": ", ".join(c.get("groups") or []) or "none",
                      "attr_html": _attribution_html(c.get("attribution")),
                      "partner_attr_html": _attribution_html(c.get("partner_attribution"))})
    gates = [{**g, "value_f": fmt(g.get("value"))} for g in m.get("gates", [])]
    card = run.model_card or {}
    rule = m.get("decision_rule") or {}
    rule_text = ""
    if rule.get("cells"):  # per-group thresholds: say so, and which constraint they equalise
        rule_text = (f"per-group thresholds ({str(rule.get('constraint', '')).replace('_', ' ')}, "
                     f"{len(rule['cells'])} cells{', randomised' if rule.get('randomised') else ''}; "
                     f"{rule.get('source', '')})")
    elif m.get("threshold_source") and m.get("threshold_source") != "config":
        rule_text = str(m["threshold_source"])
    return {"name": run.name, "run_dir": run.run_dir, "model_dir": m.get("model_dir", "–"), "threshold": threshold,
            "rule_text": rule_text,
            "min_group_size": mgs, "suites": suites, "cases": cases, "gates": gates,
            "gates_failed": sum(not g["passed"] for g in gates),
            "explain_method": (m.get("explain_method") or "").replace("_", " "),
            "agreement": _agreement_context(m.get("explain_agreement")),
            "audit": _audit_context(run.audit, run.preprocess_manifest),
            "verdict": _verdict(run, class_names),
            "card": {k: card[k] for k in list(card)[:12] if not isinstance(card[k], (dict, list))}}


def _comparison(runs: list[RunInput], class_names: tuple[str, str]) -> dict[str, Any] | None:
    if len(runs) < 2:
        return None
    suite_names: list[str] = []
    for r in runs:
        for n in r.metrics.get("gate_values", {}):
            if n not in suite_names:
                suite_names.append(n)
    rows = []
    for suite in suite_names:
        for key in HEADLINE:
            vals = [headline_value(r.metrics.get("gate_values", {}).get(suite, {}), key) for r in runs]
            if all(v is None for v in vals):
                continue
            label, better = headline_label(key, class_names)
            base = vals[0]
            cells = []
            for v in vals:
                delta = None if (v is None or base is None) else v - base
                good = None if not delta else ((delta > 0) == (better == "higher"))
                cells.append({"value": fmt(v), "delta": "" if delta is None else f"{delta:+.3f}",
                              "cls": "" if good is None else ("better" if good else "worse")})
            rows.append({"suite": suite, "label": label, "better": _direction(better), "cells": cells})
    acc_suite, fair_suite = _pareto_suites(runs)
    points = []
    for r in runs:
        gv = r.metrics.get("gate_values", {})
        points.append({"name": r.name, "acc": headline_value(gv.get(acc_suite, {}), "auc"),
                       "fair": headline_value(gv.get(fair_suite, {}), "final_bias_metric")})
    pareto = plots.pareto_plot(points, x="fair", y="acc",
                               xlabel=f"Final bias metric on '{fair_suite}' — higher is fairer",
                               ylabel=f"ROC AUC on '{acc_suite}' — higher is more accurate",
                               title="Accuracy vs fairness, one point per run")
    return {"runs": [r.name for r in runs], "rows": rows, "pareto": pareto,
            "acc_suite": acc_suite, "fair_suite": fair_suite}


def _pareto_suites(runs: list[RunInput]) -> tuple[str, str]:
    kinds: dict[str, str] = {}
    for r in runs:
        for n, sm in r.metrics.get("suites", {}).items():
            kinds.setdefault(n, sm.get("kind", ""))
    labelled = [n for n, k in kinds.items() if k not in ("minimal_pairs",)]
    acc = next((n for n, k in kinds.items() if k == "test_split"), labelled[0] if labelled else "")
    fair = next((n for n, k in kinds.items() if k == "identity_templates"), acc)
    return acc, fair


def render_report(runs: list[RunInput], *, title: str = "Fairness report",
                  class_names: tuple[str, str] = plots.CLASS_NAMES) -> str:
    """The report as one self-contained HTML string (inline CSS, figures as data URIs).

    Parameters
    ----------
    runs : one or more runs; with two or more the first is the baseline of the comparison.
    title : page title.
    class_names : (name of label 0, name of label 1), the words the text and the figures use for
        the two classes; default the toxicity task's ("non-toxic", "toxic").
    """
    if not runs:
        raise ValueError("render_report needs at least one run")
    if (not isinstance(class_names, (tuple, list)) or len(class_names) != 2
            or not all(isinstance(c, str) and c.strip() for c in class_names)):
        raise ValueError(f"class_names must be two non-empty names (label 0, label 1); found {class_names!r}")
    neg, pos = (c.strip() for c in class_names)
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(HERE)), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    glossary = [{"name": n, "label": i.text((neg, pos)), "better": _direction(i.better)} for n, i in METRICS.items()]
    return env.get_template("report.html.j2").render(
        title=title, css=(HERE / "report.css").read_text(encoding="utf-8"),
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        runs=[_run_context(r, (neg, pos)) for r in runs], comparison=_comparison(runs, (neg, pos)), glossary=glossary,
        interval_methods=INTERVAL_METHODS, neg=neg, pos=pos)


def report_metrics(runs: list[RunInput]) -> dict[str, Any]:
    """The machine-readable twin of the report: per run, gate values and gate results."""
    out: dict[str, Any] = {"runs": []}
    for r in runs:
        out["runs"].append({"name": r.name, "run_dir": r.run_dir, "model_dir": r.metrics.get("model_dir"),
                            "threshold": r.metrics.get("threshold"), "gates": r.metrics.get("gates", []),
                            "values": r.metrics.get("gate_values", {}),
                            "headline": {s: {k: headline_value(v, k) for k in HEADLINE}
                                         for s, v in r.metrics.get("gate_values", {}).items()}})
    if len(runs) > 1:
        a, f = _pareto_suites(runs)
        out["pareto"] = {"accuracy": f"{a}.auc", "fairness": f"{f}.final_bias_metric",
                         "points": [{"name": r.name,
                                     "accuracy": headline_value(r.metrics.get("gate_values", {}).get(a, {}), "auc"),
                                     "fairness": headline_value(r.metrics.get("gate_values", {}).get(f, {}),
                                                                "final_bias_metric")} for r in runs]}
    return out
