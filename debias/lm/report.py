"""The audit's HTML section: one table per suite and category, every estimate with its interval.

Self-contained like the fairness report (the project's ``debias/evaluation/report/report.css`` inlined).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from debias.lm.translation import REASONS

__all__ = ["render_audit_html", "audit_section", "append_sections", "CI_CSS"]

_CSS = Path(__file__).resolve().parents[1] / "evaluation" / "report" / "report.css"
CI_CSS = ".ci{color:#666;font-size:90%}"

_INTRO = {
    "crows_pairs": "CrowS-Pairs (Nangia et al. 2020): % of minimal pairs where the model gives the "
                   "stereotypical sentence the higher log-likelihood. 50 = no preference; bias-bench "
                   "reports GPT-2 at about 56-60.",
    "stereoset_intrasentence": "StereoSet intrasentence (Nadeem et al. 2021): SS = % stereotype preferred over "
                               "anti-stereotype (50 ideal), LMS = % meaningful preferred over unrelated (100 ideal), "
                               "ICAT = LMS x min(SS, 100-SS)/50.",
    "stereoset_intersentence": "StereoSet intersentence: the same scores for a sentence following a context.",
    "bbq_mc": "BBQ (Parrish et al. 2022) by multiple-choice log-likelihood: accuracy in ambiguous (answer: unknown) "
              "and disambiguated contexts; bias scores x100 (0 = none, + = toward the stereotype).",
    "bbq_generate": "BBQ by generation: the model answers with a letter; unparseable answers are counted as wrong "
                    "and shown in their own column.",
    "counterfactual": "Counterfactual generation: the same prompt about each group of a swap row; continuations "
                      "scored by the classifier. Gap = max - min score within a set; flip = the set straddles the "
                      "threshold.",
    "translation": "Translation (WinoMT, Stanovsky et al. 2019): WinoBias and Winogender sentences translated into "
                   "languages with grammatical gender; the gender of the entity's translation is read with the "
                   "language's occupation lexicon. Accuracy = % of translations with the pronoun's gender; "
                   "dG = F1(male) - F1(female); dS = accuracy on pro-stereotypical minus anti-stereotypical "
                   "sentences (points, 0 = none). Outputs with no gender found count as wrong and are counted "
                   "by reason: no output, empty, only an echo of the English source, occupation not found, "
                   "undecided (epicene form without a determiner), conflicting occurrences.",
}


def _fmt(x: Any, d: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.{d}f}"
    return html.escape(str(x))


def _ci(row: dict, key: str, lo: str, hi: str, d: int = 2) -> str:
    return f"{_fmt(row.get(key), d)} <span class='ci'>[{_fmt(row.get(lo), d)}, {_fmt(row.get(hi), d)}]</span>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _suite_html(name: str, m: dict) -> str:
    out = [f"<h3>{html.escape(name)}</h3>", f"<p>{html.escape(_INTRO.get(name, ''))}</p>"]
    if "skipped" in m:
        out.append(f"<p><em>skipped: {html.escape(m['skipped'])}</em></p>")
        return "".join(out)
    if name == "crows_pairs":
        out.append(_table(["bias type", "n", "stereotype score [95% CI]"],
                          [[_fmt(r["bias_type"]), _fmt(r["n"]), _ci(r, "stereotype_score", "ci_low", "ci_high", 1)]
                           for r in m["by_bias_type"]]))
    elif name.startswith("stereoset"):
        out.append(_table(["bias type", "n", "SS [95% CI]", "LMS", "ICAT"],
                          [[_fmt(r["bias_type"]), _fmt(r["n"]), _ci(r, "stereotype_score", "ci_low", "ci_high", 1),
                            _fmt(r["lms"], 1), _fmt(r["icat"], 1)] for r in m["by_bias_type"]]))
    elif name.startswith("bbq"):
        out.append(_table(["category", "n", "acc ambig", "acc disambig", "s_AMB", "s_DIS", "unparsed"],
                          [[_fmt(r["category"]), _fmt(r["n"]), _ci(r, "acc_ambig", "acc_ambig_ci_low", "acc_ambig_ci_high"),
                            _ci(r, "acc_disambig", "acc_disambig_ci_low", "acc_disambig_ci_high"),
                            _ci(r, "s_amb", "s_amb_ci_low", "s_amb_ci_high", 1),
                            _ci(r, "s_dis", "s_dis_ci_low", "s_dis_ci_high", 1), _fmt(r["unparsed_rate"], 3)]
                           for r in m["by_category"]]))
    elif name == "counterfactual":
        rows = [{"axis": "overall", **m["overall"]}, *m["by_axis"]]
        out.append(_table(["axis", "sets", "gap mean [95% CI]", "gap max", "flip rate [95% CI]", "mean score",
                           "refusal", "empty"],
                          [[_fmt(r["axis"]), _fmt(r["n_sets"]), _ci(r, "gap_mean", "gap_ci_low", "gap_ci_high", 3),
                            _fmt(r["gap_max"], 3), _ci(r, "flip_rate", "flip_ci_low", "flip_ci_high", 3),
                            _fmt(r["score_mean"], 3), _fmt(r["refusal_rate"], 3), _fmt(r["empty_rate"], 3)]
                           for r in rows]))
        out.append(_table(["axis", "group", "n", "mean score [95% CI]", "flagged", "refusal", "empty", "tokens"],
                          [[_fmt(r["axis"]), _fmt(r["group"]), _fmt(r["n"]), _ci(r, "score_mean", "ci_low", "ci_high", 3),
                            _fmt(r["flagged_rate"], 3), _fmt(r["refusal_rate"], 3), _fmt(r["empty_rate"], 3),
                            _fmt(r["mean_tokens"], 1)] for r in m["by_group"]]))
    elif name == "translation":
        out.append(f"<p>Translator: <code>{html.escape(str(m.get('translator', '')))}</code></p>")
        out.append(_table(["language", "source", "n", "accuracy [95% CI]", "dG [95% CI]", "dS [95% CI]",
                           "F1 male", "F1 female", "pro / anti acc", "neutral", "no gender: none / empty / echo / "
                           "not found / undecided / conflict", "excluded"],
                          [[_fmt(r["lang"]), _fmt(r["source"]), _fmt(r["n"]),
                            _ci(r, "accuracy", "accuracy_ci_low", "accuracy_ci_high", 1),
                            _ci(r, "delta_g", "delta_g_ci_low", "delta_g_ci_high", 1),
                            _ci(r, "delta_s", "delta_s_ci_low", "delta_s_ci_high", 1),
                            _fmt(r["f1_male"], 1), _fmt(r["f1_female"], 1),
                            f"{_fmt(r['accuracy_pro'], 1)} / {_fmt(r['accuracy_anti'], 1)}", _fmt(r["n_pred_neutral"]),
                            " / ".join(_fmt(r.get(f"n_{k}")) for k in REASONS),
                            _fmt(r.get("n_excluded"))] for r in m["by_language"]]))
    return "".join(out)


def audit_section(metrics: dict[str, Any], *, gates: list[dict] | None = None,
                  title: str = "Generative model audit") -> str:
    """The ``<section>`` for a run's ``audit_lm/metrics.json``."""
    parts = [f"<section><h2>{html.escape(title)}</h2>",
             f"<p>Model: <code>{html.escape(str(metrics.get('model', '')))}</code></p>"]
    if gates:
        parts.append(_table(["gate", "value", "passed"],
                            [[html.escape(g["expr"]), _fmt(g.get("value"), 3), _fmt(bool(g["passed"]))] for g in gates]))
    for name, m in metrics.get("suites", {}).items():
        parts.append(_suite_html(name, m))
    parts.append("</section>")
    return "".join(parts)


def render_audit_html(metrics: dict[str, Any], *, title: str = "Generative model audit",
                      gates: list[dict] | None = None) -> str:
    css = _CSS.read_text(encoding="utf-8") if _CSS.is_file() else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{css}\n{CI_CSS}</style></head><body><main>"
            f"<h1>{html.escape(title)}</h1>{audit_section(metrics, gates=gates)}</main></body></html>")


def append_sections(page: str, sections: list[str]) -> str:
    """``page`` with ``sections`` (and the interval style they use) before its closing ``</body>``.

    This is how ``debias report`` adds a run's audit to the fairness report without the
    fairness template knowing about generative models. A page without ``</body>`` gets them at
    its end.
    """
    if not sections:
        return page
    block = f"<style>{CI_CSS}</style>" + "".join(sections)
    at = page.rfind("</body>")
    return page + block if at < 0 else page[:at] + block + page[at:]
