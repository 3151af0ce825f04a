"""The audit's plan and its metrics, without any inference: what to score, what to generate.

:func:`plan` turns an :class:`AuditLMConfig` into two frames -- *score rows* (``prefix``,
``text``: one log-likelihood each, all suites together so one Ray pass serves them) and *prompt
rows* (``prompt``: one generation each) -- plus the items each suite needs afterwards. The
translation suite's rows are prompt rows when the audited model translates, else *translate
rows* (``text``: one source sentence per language, for a seq2seq model or a translations file).
:func:`suite_metrics` takes the scored and generated rows back and computes every suite's
statistics; :func:`gate_values` flattens them for ``--gate``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from debias.lm import bbq as bbq_mod
from debias.lm import counterfactual as cf_mod
from debias.lm import intrinsic
from debias.lm import translation as tr_mod
from debias.lm.config import AuditLMConfig

__all__ = ["DATA_ENV", "AuditPlan", "resolve_data_dir", "check_inputs", "plan", "suite_metrics", "gate_values",
           "summary_lines", "json_safe"]

DATA_ENV = "DEBIAS_DATA_DIR"
_DATA_FOLDERS = {"crows_pairs": "crows-pairs", "stereoset": "stereoset", "bbq": "bbq"}


def translation_lexicons(cfg: AuditLMConfig) -> dict:
    """``{code: TranslationLexicon}`` of ``cfg.translation.languages``, in config order."""
    from debias.lm.translation_lexicon import load_translation_lexicon

    t = cfg.translation
    return {code: load_translation_lexicon(code, t.lexicon_dir) for code in t.languages}


def resolve_data_dir(cfg: AuditLMConfig) -> Path:
    """``cfg.data_dir``, else ``$DEBIAS_DATA_DIR``, else ``<repo>/../shared/data``."""
    if cfg.data_dir:
        return Path(cfg.data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def check_inputs(cfg: AuditLMConfig) -> list[str]:
    """Problems with the requested suites' inputs (empty: all present)."""
    base = resolve_data_dir(cfg)
    errs = []
    for suite in cfg.suites:
        folder = _DATA_FOLDERS.get(suite)
        if folder and not (base / folder).is_dir():
            errs.append(f"suite {suite!r} needs {base / folder} (set audit_lm.data_dir or ${DATA_ENV})")
    if "translation" in cfg.suites:
        errs += _translation_problems(cfg, base)
    return errs


def _translation_problems(cfg: AuditLMConfig, base: Path) -> list[str]:
    t, errs = cfg.translation, []
    for src in t.sources:
        if not (base / src).is_dir():
            errs.append(f"suite 'translation' needs {base / src} (set audit_lm.data_dir or ${DATA_ENV})")
    try:
        translation_lexicons(cfg)
    except ValueError as e:
        errs.append(str(e))
    if t.translator == "file" and not Path(t.file).is_file():
        errs.append(f"audit_lm.translation.file not found: {t.file}")
    if t.translator == "seq2seq":
        from debias.lm.seq2seq import resolve_seq2seq_dir

        for code in t.languages:
            try:
                resolve_seq2seq_dir(t.seq2seq_model, lang=code)
            except FileNotFoundError as e:
                errs.append(str(e))
    return errs


@dataclass
class AuditPlan:
    score_rows: pd.DataFrame
    prompt_rows: pd.DataFrame
    items: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    translate_rows: pd.DataFrame | None = None           # translation by a seq2seq model or a file
    translation_excluded: dict[str, int] = field(default_factory=dict)


def plan(cfg: AuditLMConfig, *, classifier: str | None = None) -> AuditPlan:
    """Every row to score and every prompt to generate for the configured suites."""
    base = resolve_data_dir(cfg)
    score, prompts, items, skipped = [], [], {}, {}
    if "crows_pairs" in cfg.suites:
        pairs = intrinsic.read_crows_pairs(base / "crows-pairs", limit=cfg.limit, seed=cfg.seed)
        items["crows_pairs"] = pairs
        score.append(intrinsic.crows_options(pairs))
    if "stereoset" in cfg.suites:
        for kind in ("intrasentence", "intersentence"):
            it = intrinsic.read_stereoset(base / "stereoset", kind=kind, limit=cfg.limit, seed=cfg.seed)
            items[f"stereoset_{kind}"] = it
            score.append(intrinsic.stereoset_options(it))
    if "bbq" in cfg.suites:
        q = bbq_mod.read_bbq(base / "bbq", categories=cfg.bbq_categories, limit=cfg.limit, seed=cfg.seed)
        items["bbq"] = q
        if "mc" in cfg.bbq_modes:
            score.append(bbq_mod.mc_options(q))
        if "generate" in cfg.bbq_modes:
            g = bbq_mod.generation_prompts(q)
            g["suite"] = "bbq"
            g["max_new_tokens"] = cfg.bbq_max_new_tokens
            prompts.append(g)
    if "counterfactual" in cfg.suites:
        if classifier is None:
            skipped["counterfactual"] = "no classifier (set audit_lm.classifier or train a model in RUN_DIR)"
        else:
            from debias.evaluation.suites import load_templates
            from debias.identity.swaps import available_swap_axes, load_swaps

            table = load_swaps(available_swap_axes())
            cf = cf_mod.counterfactual_prompts(load_templates(sets=cfg.cf_template_sets), table,
                                               swap_rows=cfg.cf_swap_rows, prompt=cfg.cf_prompt,
                                               limit=cfg.limit, seed=cfg.seed)
            items["counterfactual"] = cf
            p = cf[["id", "prompt"]].copy()
            p["suite"] = "counterfactual"
            p["max_new_tokens"] = cfg.max_new_tokens
            prompts.append(p)
    translate_rows, excluded = None, {}
    if "translation" in cfg.suites:
        from debias.lm.stats import seeded_limit
        from debias.lm.winomt import read_winomt

        t = cfg.translation
        sents = seeded_limit(read_winomt(base, sources=t.sources), cfg.limit, seed=cfg.seed).reset_index(drop=True)
        rows, excluded = tr_mod.translation_rows(sents, translation_lexicons(cfg), prompt=t.prompt)
        rows["max_new_tokens"] = t.max_new_tokens
        items["translation"] = rows
        if t.translator == "model":
            prompts.append(rows)
        else:
            translate_rows = rows
    cols_s = ["id", "suite", "item_id", "option", "prefix", "text"]
    srows = pd.concat([s[cols_s] for s in score], ignore_index=True) if score else pd.DataFrame(columns=cols_s)
    srows["option"] = srows["option"].astype(str)
    cols_p = ["id", "suite", "prompt", "max_new_tokens"]
    prow = pd.concat(prompts, ignore_index=True)[cols_p] if prompts else pd.DataFrame(columns=cols_p)
    return AuditPlan(srows, prow, items, skipped, translate_rows, excluded)


def _restore(items: pd.DataFrame, scored: pd.DataFrame, suite: str, extra: str) -> pd.DataFrame:
    s = scored[scored["suite"] == suite]
    keep = [c for c in ("id", "item_id", "option", "logprob_sum", "logprob_mean", "n_tokens") if c in s.columns]
    return s[keep].merge(items[["item_id", extra]], on="item_id", how="left")


def suite_metrics(cfg: AuditLMConfig, p: AuditPlan, scored: pd.DataFrame, generated: pd.DataFrame,
                  *, classifier_scores: pd.Series | None = None) -> dict[str, Any]:
    """Every suite's statistics as JSON-ready records (``{suite: {...}}``).

    Parameters
    ----------
    scored : ``p.score_rows`` plus the scorer's columns (any row order).
    generated : ``p.prompt_rows`` plus ``completion`` and ``n_generated`` (any order).
    classifier_scores : counterfactual prompt id -> classifier score of its completion.
    """
    kw = {"n_boot": cfg.n_boot, "seed": cfg.seed, "confidence": cfg.confidence}
    out: dict[str, Any] = {}
    if "crows_pairs" in p.items:
        rows = _restore(p.items["crows_pairs"], scored, "crows_pairs", "bias_type")
        out["crows_pairs"] = {"score": cfg.crows_score,
                              "by_bias_type": intrinsic.stereotype_scores(rows, score=cfg.crows_score, **kw)}
    for kind in ("intrasentence", "intersentence"):
        name = f"stereoset_{kind}"
        if name in p.items:
            rows = _restore(p.items[name], scored, name, "bias_type")
            out[name] = {"score": cfg.stereoset_score,
                         "by_bias_type": intrinsic.stereoset_scores(rows, score=cfg.stereoset_score, **kw)}
    if "bbq" in p.items:
        q = p.items["bbq"]
        if "mc" in cfg.bbq_modes:
            s = scored[scored["suite"] == "bbq"].copy()
            s["option"] = s["option"].astype(int)
            preds = bbq_mod.mc_predictions(q, s, score=cfg.bbq_score)
            out["bbq_mc"] = {"score": cfg.bbq_score, "by_category": bbq_mod.bbq_scores(preds, **kw)}
        if "generate" in cfg.bbq_modes:
            g = generated[generated["suite"] == "bbq"].set_index("id")["completion"]
            preds = q.copy()
            preds["completion"] = preds["item_id"].map(g).fillna("")
            preds["pred"] = [bbq_mod.parse_answer(c, [a0, a1, a2]) for c, a0, a1, a2 in
                             zip(preds["completion"], preds["ans0"], preds["ans1"], preds["ans2"], strict=True)]
            out["bbq_generate"] = {"by_category": bbq_mod.bbq_scores(preds, **kw)}
    if "counterfactual" in p.items and classifier_scores is not None:
        cf = p.items["counterfactual"].copy()
        gen = generated[generated["suite"] == "counterfactual"].set_index("id")
        cf["completion"] = cf["id"].map(gen["completion"]).fillna("")
        cf["n_generated"] = cf["id"].map(gen["n_generated"]).fillna(0)
        cf["score"] = cf["id"].map(classifier_scores).astype(float)
        out["counterfactual"] = cf_mod.counterfactual_scores(cf, threshold=cfg.classifier_threshold, **kw)
    if "translation" in p.items:
        judged = translation_judged(cfg, p, generated)
        out["translation"] = {"translator": cfg.translation.translator, "languages": list(cfg.translation.languages),
                              "by_language": tr_mod.translation_scores(judged, excluded=p.translation_excluded,
                                                                       languages=cfg.translation.languages, **kw)}
    for suite, reason in p.skipped.items():
        out[suite] = {"skipped": reason}
    return out


def translation_judged(cfg: AuditLMConfig, p: AuditPlan, generated: pd.DataFrame) -> pd.DataFrame:
    """The translation rows with each output and the gender it gives the entity (one row per item
    and language; an item without an output is ``not_translated``)."""
    gen = generated[generated["suite"] == "translation"]
    return tr_mod.judge_translations(p.items["translation"], gen.set_index("id")["completion"],
                                     translation_lexicons(cfg))


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def gate_values(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``suite -> metric -> value or {group: value}`` for :func:`debias.evaluation.gates.check_gates`."""
    vals: dict[str, dict[str, Any]] = {}
    for suite in ("crows_pairs", "stereoset_intrasentence", "stereoset_intersentence"):
        m = metrics.get(suite)
        if not m or "by_bias_type" not in m:
            continue
        rows = m["by_bias_type"]
        ss = _f(rows[0]["stereotype_score"])
        vals[suite] = {"stereotype_score": ss, "stereotype_deviation": abs(ss - 50.0),
                       "stereotype_deviation_by_type": {r["bias_type"]: abs(_f(r["stereotype_score"]) - 50.0)
                                                        for r in rows[1:]}}
        if "icat" in rows[0]:
            vals[suite]["icat"] = _f(rows[0]["icat"])
    for suite in ("bbq_mc", "bbq_generate"):
        m = metrics.get(suite)
        if not m:
            continue
        o, cats = m["by_category"][0], m["by_category"][1:]
        vals[suite] = {"bbq_acc_ambig": _f(o["acc_ambig"]), "bbq_acc_disambig": _f(o["acc_disambig"]),
                       "bbq_s_dis": _f(o["s_dis"]), "bbq_s_amb": _f(o["s_amb"]),
                       "bbq_unparsed_rate": _f(o["unparsed_rate"]),
                       "bbq_abs_s_amb": {c["category"]: abs(_f(c["s_amb"])) for c in cats},
                       "bbq_abs_s_dis": {c["category"]: abs(_f(c["s_dis"])) for c in cats}}
    m = metrics.get("counterfactual")
    if m and "overall" in m:
        o = m["overall"]
        vals["counterfactual"] = {"cf_gen_gap_mean": _f(o["gap_mean"]), "cf_gen_gap_max": _f(o["gap_max"]),
                                  "cf_gen_flip_rate": _f(o["flip_rate"]), "refusal_rate": _f(o["refusal_rate"]),
                                  "empty_rate": _f(o["empty_rate"]),
                                  "cf_gen_score_mean": {r["group"]: _f(r["score_mean"]) for r in m["by_group"]}}
    return vals


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _num(v: Any, fmt: str) -> str:
    return "nan" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def summary_lines(suites: dict[str, Any]) -> list[str]:
    """One line per suite with its headline figures (the job prints them when it is done)."""
    out = []
    for name, m in suites.items():
        if "by_bias_type" in m:
            r = m["by_bias_type"][0]
            out.append(f"{name}: stereotype score {_num(r['stereotype_score'], '.1f')} "
                       f"[{_num(r['ci_low'], '.1f')}, {_num(r['ci_high'], '.1f')}] (n={r['n']})")
        elif "by_category" in m:
            r = m["by_category"][0]
            out.append(f"{name}: acc ambig {_num(r['acc_ambig'], '.3f')} disambig {_num(r['acc_disambig'], '.3f')} "
                       f"s_AMB {_num(r['s_amb'], '.1f')} s_DIS {_num(r['s_dis'], '.1f')} "
                       f"unparsed {_num(r['unparsed_rate'], '.3f')}")
        elif "overall" in m:
            r = m["overall"]
            out.append(f"{name}: gap {_num(r['gap_mean'], '.3f')} flip {_num(r['flip_rate'], '.3f')} "
                       f"refusal {_num(r['refusal_rate'], '.3f')}")
        elif "by_language" in m:
            for r in (r for r in m["by_language"] if r["source"] == "all"):
                out.append(f"{name} {r['lang']}: accuracy {_num(r['accuracy'], '.1f')} "
                           f"[{_num(r['accuracy_ci_low'], '.1f')}, {_num(r['accuracy_ci_high'], '.1f')}] "
                           f"dG {_num(r['delta_g'], '.1f')} dS {_num(r['delta_s'], '.1f')} "
                           f"unknown {_num(r['unknown_rate'], '.3f')} (n={r['n']})")
        elif "skipped" in m:
            out.append(f"{name}: skipped ({m['skipped']})")
    return out
