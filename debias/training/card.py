"""The exported model's ``README.md``: a Hugging Face model card (YAML front matter, then the
sections a reader of a model hub page expects) written from ``model_card.json``'s fields."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["evaluation_rows", "model_card_markdown"]


def evaluation_rows(suites: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline metrics with their 95% intervals per labelled suite of an evaluation's
    ``metrics.json`` (``suites``): overall AUC, demographic parity and equalized odds
    differences, the counterfactual flip rate."""
    rows = []
    for name, m in suites.items():
        s = m.get("summary") or {}
        overall = next((r for r in s.get("by_group", []) if r.get("kind") == "overall"), None)
        if overall and overall.get("roc_auc") is not None:
            rows.append({"suite": name, "metric": "AUC", "value": overall["roc_auc"],
                         "lo": overall.get("roc_auc_lo"), "hi": overall.get("roc_auc_hi")})
        for key, label in (("demographic_parity_difference", "demographic parity difference"),
                           ("equalized_odds_difference", "equalized odds difference")):
            c = (s.get("criteria") or {}).get(key)
            if c and c.get("value") is not None:
                rows.append({"suite": name, "metric": label, "value": c["value"], "lo": c.get("ci_low"),
                             "hi": c.get("ci_high")})
        cf = s.get("counterfactual")
        if cf and cf.get("flip_rate") is not None:
            ci = cf.get("flip_rate_ci") or [None, None]
            rows.append({"suite": name, "metric": "counterfactual flip rate", "value": cf["flip_rate"],
                         "lo": ci[0], "hi": ci[1]})
    return rows


def _num(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "n/a" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}" if isinstance(v, float) else str(v)
    return str(v)


def model_card_markdown(card: dict[str, Any]) -> str:
    """Markdown for ``README.md`` from the card :func:`jobs.train.export_best` writes: intended
    use, training data, the fairness objective, validation metrics overall and by group (with
    intervals where the evaluation added them) and limitations. No absolute paths."""
    names = card.get("class_names") or ["label 0", "label 1"]
    data = card.get("data")
    described = data if isinstance(data, str) else None  # a card written by hand may describe its data in words
    data = data if isinstance(data, dict) else {}
    groups = data.get("groups") or []
    lines = ["---", "library_name: transformers", "pipeline_tag: text-classification",
             "tags: [debias, fairness, text-classification]", "---", "",
             f"# {card.get('run_name', 'debias model')}", "",
             f"A {names[1]!r} vs {names[0]!r} text classifier fine-tuned from `{card.get('base_model', '?')}` with "
             "[debias](https://github.com/) fairness-regularised training. "
             "`transformers.pipeline(\"text-classification\", model=THIS_DIR)` returns the label names above.", "",
             "## Intended use", "",
             f"Scoring texts for {names[1]!r} where the decision must treat identity groups alike; measured on the "
             "groups listed below. Not for groups, languages or text genres it was not evaluated on.", "",
             "## Training data", "",
             described or (
                 f"{_num(data.get('train_rows'))} training and {_num(data.get('val_rows'))} validation rows "
                 f"(run folders `{data.get('train', 'preprocess/train')}`, `{data.get('val', 'preprocess/val')}`); "
                 f"identity groups annotated: {', '.join(groups) or 'none'}."), "",
             "## Fairness objective", ""]
    for t in card.get("losses", []):
        lines.append(f"- `{t.get('name')}` (weight {t.get('weight', 1.0)})" if isinstance(t, dict) else f"- `{t}`")
    sel = card.get("selection_metric", "")
    lines += ["", f"Best checkpoint: epoch {card.get('epoch')} by `{sel}`; seed {card.get('seed')}.", "",
              "## Validation metrics", "", "| metric | value |", "|---|---|"]
    for k, v in sorted((card.get("validation") or {}).items()):
        lines.append(f"| {k} | {_num(v)} |")
    by_group = card.get("validation_by_group") or []
    if by_group:
        cols = [c for c in ("group", "n", "auc", "tpr", "fpr", "positive_rate") if c in by_group[0]]
        lines += ["", "### By identity group (validation)", "", "| " + " | ".join(cols) + " |",
                  "|" + "---|" * len(cols)]
        for row in by_group:
            lines.append("| " + " | ".join(_num(row.get(c)) for c in cols) + " |")
    ev = card.get("evaluation")
    if ev:
        lines += ["", "## Evaluation (`debias evaluate`)", "", "| suite | metric | value | 95% interval |",
                  "|---|---|---|---|"]
        for row in ev:
            lo, hi = row.get("lo"), row.get("hi")
            ci = "" if lo is None or hi is None else f"[{_num(lo)}, {_num(hi)}]"
            lines.append(f"| {row['suite']} | {row['metric']} | {_num(row['value'])} | {ci} |")
    rule = card.get("decision_rule")
    lines += ["", "## Decisions", "",
              (f"Per-group thresholds ({rule.get('constraint')}) stored in `group_thresholds.json`; "
               "`debias serve` applies them." if rule and rule.get("cells") else
               f"One threshold: {rule.get('threshold') if rule else 0.5}.") , "",
              "## Limitations", "",
              "- Identity groups are found by a lexicon of terms: texts that name a group in other words, or "
              "imply it, are counted as naming none.",
              "- Validation metrics come from one training run; retrain with other seeds before calling a "
              "difference between models real (`bench/fairness.py --seeds`).",
              "- Equal error rates can be reached by detecting less: check recall per group, not only gaps.", ""]
    return "\n".join(lines)
