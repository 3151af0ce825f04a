"""`debias report RUN_A [RUN_B ...]`: the fairness report of one or more evaluated runs.

Reads each run's ``evaluate/metrics.json`` and predictions, ``preprocess/audit.json``, the
manifests and, where ``debias audit-lm`` ran, ``audit_lm/metrics.json``; renders
``debias.evaluation.report`` (plus ``debias.lm.report``'s section per audited run) and writes
``OUT/report/`` (report.html, metrics.json, manifest) atomically. No Ray work: everything it needs was aggregated by ``evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from debias.config import PipelineConfig
from debias.evaluation.report import RunInput, render_report, report_metrics
from debias.runs import stage_output, stage_path


def _json(path: str) -> dict[str, Any] | None:
    p = Path(path)
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def load_run(run_dir: str, *, name: str | None = None) -> RunInput:
    """Everything the report reads from one run directory (evaluate must have run)."""
    metrics = _json(stage_path(run_dir, "evaluate", "metrics.json"))
    if metrics is None:
        raise FileNotFoundError(f"run {run_dir!r} has no evaluation (looked for "
                                f"{stage_path(run_dir, 'evaluate', 'metrics.json')}); run `debias evaluate` first")
    preds = {}
    for suite in metrics.get("suites", {}):
        p = Path(stage_path(run_dir, "evaluate", "predictions", suite))
        if p.is_dir():
            cols = ["y_true", "y_score", "groups"]
            preds[suite] = pq.read_table(p, columns=cols).to_pandas(ignore_metadata=True)
    model_dir = metrics.get("model_dir")
    card = _json(str(Path(model_dir) / "model_card.json")) if model_dir else None
    return RunInput(
        name=name or Path(run_dir.rstrip("/")).name or run_dir,
        run_dir=run_dir,
        metrics=metrics,
        predictions=preds,
        audit=_json(stage_path(run_dir, "preprocess", "audit.json")),
        preprocess_manifest=_json(stage_path(run_dir, "preprocess", "manifest.json")),
        evaluate_manifest=_json(stage_path(run_dir, "evaluate", "manifest.json")),
        model_card=card,
    )


def _with_lm_audits(html: str, run_dirs: list[str], names: list[str]) -> str:
    """The report plus a section per run that has ``audit_lm/metrics.json`` (``debias audit-lm``)."""
    sections = []
    for r, n in zip(run_dirs, names, strict=True):
        m = _json(stage_path(r, "audit_lm", "metrics.json"))
        if m is not None:
            from debias.lm.report import audit_section

            gates = (_json(stage_path(r, "audit_lm", "manifest.json")) or {}).get("gates")
            sections.append(audit_section(m, gates=gates, title=f"Generative model audit — {n}"))
    if not sections:
        return html
    from debias.lm.report import append_sections

    return append_sections(html, sections)


def binary_reading(class_names: tuple[str, ...], focus: str | None = None) -> tuple[str, str]:
    """The report's two words: (label 0, label 1) of a binary task read for class 1; otherwise
    ("not <focus>", "<focus>"), the focus class against the rest that the metrics measure."""
    focus = focus if focus is not None else class_names[1]
    if len(class_names) == 2 and focus == class_names[1]:
        return class_names[0], class_names[1]
    return f"not {focus}", focus


def run(cfg: PipelineConfig, run_dirs: list[str], *, out_run_dir: str) -> str:
    """Write ``out_run_dir/report/{report.html, metrics.json, manifest.json}``; return the HTML path.

    With several runs the first is the baseline of the before/after comparison.
    """
    if not run_dirs:
        raise ValueError("debias report needs at least one run directory")
    names = [Path(r.rstrip("/")).name or r for r in run_dirs]
    if len(set(names)) < len(names):  # two runs called 'run' in different folders
        names = [f"{i + 1}:{n}" for i, n in enumerate(names)]
    runs = [load_run(r, name=n) for r, n in zip(run_dirs, names, strict=True)]
    # the words of the task: the first run's model card names its classes, else the config does
    card = next((r.model_card for r in runs if r.model_card and r.model_card.get("class_names")), None)
    classes = tuple(card["class_names"]) if card else tuple(cfg.data.class_names)
    focus = cfg.evaluate.focus_class or (card or {}).get("focus_class")
    class_names = binary_reading(classes, focus)
    html = render_report(runs, title=f"Fairness report — {cfg.name}", class_names=class_names)
    html = _with_lm_audits(html, run_dirs, names)
    with stage_output(out_run_dir, "report", config=None, inputs=[stage_path(r, "evaluate") for r in run_dirs],
                      seed=cfg.seed) as w:
        w.write_text("report.html", html)
        w.write_json("metrics.json", report_metrics(runs))
        w.manifest.update({"runs": list(run_dirs), "html_bytes": len(html.encode("utf-8"))})
    return stage_path(out_run_dir, "report", "report.html")
