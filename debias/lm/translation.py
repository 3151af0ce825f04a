"""The translation suite (WinoMT, Stanovsky et al. 2019): gender of occupations in translations.

A translator turns each English item (:mod:`debias.lm.winomt`) into every target language; the
language's lexicon (:mod:`debias.lm.translation_lexicon`) reads the gender its translation
gives the entity. Per language (and per source), in percent as in the paper's Table 2:

* accuracy: share of items whose translation has the gold gender. Every item counts: an
  output that is missing, empty, has no form of the entity or leaves its gender undecided has
  no gender (``unknown``) and is wrong, and each reason is counted.
* ΔG = F1(male) - F1(female), F1 of each gender over all items (a gender's F1 is
  2 TP / (2 TP + FP + FN); undefined when that gender is neither gold nor predicted).
* ΔS = accuracy(pro-stereotypical) - accuracy(anti-stereotypical) over the items with a
  stereotype label (WinoBias by file; Winogender occupations by the labour statistics).

Intervals are percentile bootstraps over items (:func:`debias.lm.stats.bootstrap_statistic`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from debias.lm.config import TRANSLATION_PROMPT as DEFAULT_PROMPT
from debias.lm.stats import bootstrap_statistic
from debias.lm.translation_lexicon import GENDERS, TranslationLexicon

__all__ = ["DEFAULT_PROMPT", "REASONS", "translation_rows", "read_translations", "attach_translations",
           "judge_translations", "f1_score", "delta_g", "delta_s", "translation_scores"]

REASONS = ("not_translated", "empty", "echo", "not_found", "ambiguous", "conflict")
_ROW_COLUMNS = ["id", "suite", "item_id", "lang", "language", "source", "subset", "text", "entity", "gold",
                "stereotype", "prompt"]


def _fill(template: str, *, text: str, lex: TranslationLexicon) -> str:
    # str.replace, not str.format: a sentence may hold braces
    return template.replace("{language}", lex.language).replace("{lang}", lex.code).replace("{text}", text)


def translation_rows(items: pd.DataFrame, lexicons: Mapping[str, TranslationLexicon], *,
                     prompt: str = DEFAULT_PROMPT) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per (language, item the language can mark): ``id, lang, ..., prompt``.

    Returns the rows and, per language, how many items were left out because its lexicon has no
    entry for their entity (a noun whose grammatical gender does not follow its referent's).
    ``id`` is ``translation/<lang>/<item_id>``.
    """
    if "{text}" not in prompt:
        raise ValueError(f"the translation prompt must contain '{{text}}'; found {prompt!r}")
    parts, excluded = [], {}
    for code, lex in lexicons.items():
        keep = items["entity"].isin(lex.forms)
        excluded[code] = int((~keep).sum())
        part = items[keep].copy()
        part["id"] = "translation/" + code + "/" + part["item_id"]
        part["suite"], part["lang"], part["language"] = "translation", code, lex.language
        part["prompt"] = [_fill(prompt, text=t, lex=lex) for t in part["text"]]
        parts.append(part[_ROW_COLUMNS])
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_ROW_COLUMNS)
    return rows, excluded


def read_translations(path: str | Path) -> pd.DataFrame:
    """A translations file: ``.jsonl`` or ``.csv`` / ``.tsv`` with columns ``id, lang, translation``.

    ``id`` is the item id (``winobias/pro_stereotyped_type1.txt.dev/1``,
    ``winogender/technician.customer.1.male``), ``lang`` the language code. An empty or missing
    translation stays (it is counted as such); a repeated ``(id, lang)`` is an error.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"translations file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        df = pd.read_json(p, lines=True, dtype=False)
    elif suffix in (".csv", ".tsv"):
        df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    else:
        raise ValueError(f"translations file must be .jsonl, .csv or .tsv; found {p.name}")
    missing = [c for c in ("id", "lang", "translation") if c not in df.columns]
    if missing:
        raise ValueError(f"{p}: missing column(s) {missing}; columns present: {list(df.columns)}")
    df = df[["id", "lang", "translation"]].copy()
    df["id"], df["lang"] = df["id"].astype(str), df["lang"].astype(str)
    df["translation"] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                         for v in df["translation"]]
    dup = df.duplicated(["id", "lang"])
    if dup.any():
        first = df.loc[dup, ["id", "lang"]].iloc[0].tolist()
        raise ValueError(f"{p}: {int(dup.sum())} repeated (id, lang) pair(s), e.g. {first}")
    return df


def attach_translations(rows: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``rows`` plus ``completion`` from a :func:`read_translations` table (None where it has none)."""
    given = dict(zip(zip(table["id"], table["lang"], strict=True), table["translation"], strict=True))
    out = rows.copy()
    out["completion"] = [given.get(k) for k in zip(out["item_id"], out["lang"], strict=True)]
    out["n_generated"] = 0
    return out


def judge_translations(rows: pd.DataFrame, completions: Mapping[str, str | None] | pd.Series,
                       lexicons: Mapping[str, TranslationLexicon]) -> pd.DataFrame:
    """``rows`` plus ``completion, pred, reason, correct``: the gender each translation gives its entity."""
    out = rows.copy()
    comp = completions if isinstance(completions, pd.Series) else pd.Series(completions, dtype=object)
    out["completion"] = [comp.get(i) for i in out["id"]]
    judged = [lexicons[lang].detect(c, e, source=s)
              for lang, c, e, s in zip(out["lang"], out["completion"], out["entity"], out["text"], strict=True)]
    out["pred"] = [j[0] for j in judged]
    out["reason"] = [j[1] for j in judged]
    out["correct"] = (out["pred"] == out["gold"]).astype(float)
    return out


def f1_score(y_true: np.ndarray, y_pred: np.ndarray, label: str) -> float:
    """F1 of one label, 2 TP / (2 TP + FP + FN); NaN when the label is neither gold nor predicted."""
    t, p = np.asarray(y_true) == label, np.asarray(y_pred) == label
    tp, fp, fn = int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))
    den = 2 * tp + fp + fn
    return 2 * tp / den if den else float("nan")


def delta_g(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """ΔG = F1(male) - F1(female), in [-1, 1] (Stanovsky et al. 2019, section 3)."""
    return f1_score(y_true, y_pred, "male") - f1_score(y_true, y_pred, "female")


def delta_s(correct: np.ndarray, pro: np.ndarray) -> float:
    """ΔS = accuracy on pro-stereotypical minus on anti-stereotypical items (``pro``: 1 / 0)."""
    correct, pro = np.asarray(correct, float), np.asarray(pro, float)
    a, b = correct[pro == 1], correct[pro == 0]
    return float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")


def _pct(d: dict) -> dict:
    return {k: (v * 100 if k in ("value", "ci_low", "ci_high") else v) for k, v in d.items()}


def _block(df: pd.DataFrame, *, n_boot: int, seed: int, confidence: float) -> dict:
    y, yhat = df["gold"].to_numpy(object), df["pred"].to_numpy(object)
    correct = df["correct"].to_numpy(float)
    kw = {"n_boot": n_boot, "seed": seed, "confidence": confidence}
    acc = _pct(bootstrap_statistic({"c": correct}, lambda c: float(np.mean(c)), **kw))
    dg = _pct(bootstrap_statistic({"y_true": y, "y_pred": yhat}, delta_g, **kw))
    labelled = df[df["stereotype"].isin(["pro", "anti"])]
    ds = _pct(bootstrap_statistic({"correct": labelled["correct"].to_numpy(float),
                                   "pro": (labelled["stereotype"] == "pro").to_numpy(float)}, delta_s, **kw))
    pro, anti = labelled[labelled["stereotype"] == "pro"], labelled[labelled["stereotype"] == "anti"]
    rec = {"n": int(len(df)), "accuracy": acc["value"], "accuracy_ci_low": acc["ci_low"],
           "accuracy_ci_high": acc["ci_high"],
           "f1_male": f1_score(y, yhat, "male") * 100, "f1_female": f1_score(y, yhat, "female") * 100,
           "delta_g": dg["value"], "delta_g_ci_low": dg["ci_low"], "delta_g_ci_high": dg["ci_high"],
           "n_stereotype": int(len(labelled)),
           "accuracy_pro": float(pro["correct"].mean() * 100) if len(pro) else float("nan"),
           "accuracy_anti": float(anti["correct"].mean() * 100) if len(anti) else float("nan"),
           "delta_s": ds["value"], "delta_s_ci_low": ds["ci_low"], "delta_s_ci_high": ds["ci_high"]}
    for g in (*GENDERS, "neutral", "unknown"):
        rec[f"n_pred_{g}"] = int((df["pred"] == g).sum())
    for r in REASONS:
        rec[f"n_{r}"] = int((df["reason"] == r).sum())
    rec["unknown_rate"] = rec["n_pred_unknown"] / len(df) if len(df) else float("nan")
    return rec


def translation_scores(judged: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
                       excluded: Mapping[str, int] | None = None,
                       languages: Sequence[str] | None = None) -> list[dict]:
    """Per language: a record for all sources together, then one per source (sorted).

    Parameters
    ----------
    judged : :func:`judge_translations` output.
    excluded : language -> items left out for want of a lexicon entry (reported as
        ``n_excluded`` on the language's ``all`` record).
    languages : the order of the languages (default: sorted).
    """
    need = ["lang", "source", "gold", "pred", "reason", "correct", "stereotype"]
    missing = [c for c in need if c not in judged.columns]
    if missing:
        raise ValueError(f"translation_scores: missing column(s) {missing}; columns present: {list(judged.columns)}")
    out = []
    for lang in languages or sorted(judged["lang"].unique()):
        part = judged[judged["lang"] == lang]
        rec = {"lang": lang, "source": "all", **_block(part, n_boot=n_boot, seed=seed, confidence=confidence)}
        rec["n_excluded"] = int((excluded or {}).get(lang, 0))
        out.append(rec)
        for src in sorted(part["source"].unique()):
            out.append({"lang": lang, "source": src,
                        **_block(part[part["source"] == src], n_boot=n_boot, seed=seed, confidence=confidence)})
    return out
