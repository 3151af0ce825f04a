"""`debias evaluate --compare A B` and `debias export`: fairness parity of two models.

1. Preflight (no Ray): both model dirs, the suites, the export's output folder.
2. The suites of ``evaluate.suites`` are built as the evaluate job builds them (minimal pairs
   are left out: they have no labels or decisions to compare).
3. Both models score the same texts with the evaluate job's Ray Data inference
   (:func:`jobs.evaluate.score_texts`).
4. Per suite, :func:`debias.evaluation.parity.suite_parity`: drift, headline bias metrics of
   both models with intervals, the paired bootstrap difference, the gate (at most 200
   replicates: ``min(evaluate.n_boot, 200)``).
5. ``RUN_DIR/compare/metrics.json`` and a manifest; ``debias export`` also writes the summary
   into the exported model's card.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from debias.config import PipelineConfig
from debias.runs import stage_output, stage_path


def log(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def preflight(cfg: PipelineConfig, *, models: list[str], out: str | None = None,
              method: str | None = None, overwrite: bool = False) -> None:
    """Everything that can fail before Ray starts: model dirs, suites, the output folder, the extra."""
    from debias.serving.export import require_onnx
    from debias.training.model import check_model_dir

    if method is not None and method.startswith("onnx"):
        require_onnx()

    for m in models:
        check_model_dir(m)
    if not any(sc.kind != "minimal_pairs" for sc in cfg.evaluate.suites):
        raise ValueError("evaluate.suites has no labelled or counterfactual suite to compare on")
    if cfg.evaluate.n_boot < 1:
        raise ValueError(f"a parity check needs bootstrap intervals: evaluate.n_boot must be >= 1; "
                         f"found {cfg.evaluate.n_boot}")
    if out is not None and not overwrite and Path(out).is_dir() and any(Path(out).iterdir()):
        raise ValueError(f"output dir {out} exists and is not empty; pick a new folder or --overwrite")


def run(cfg: PipelineConfig, run_dir: str, *, model_a: str, model_b: str, n_boot: int | None = None,
        rule: str = "interval") -> dict[str, Any]:
    """Score both models on every suite and compare them; returns the metrics document."""
    from debias.evaluation.build import build_suite
    from debias.evaluation.parity import suite_parity
    from jobs.evaluate import _read_split, score_texts

    preflight(cfg, models=[model_a, model_b])
    ev = cfg.evaluate
    seed = ev.seed if ev.seed is not None else cfg.seed
    suites = [sc for sc in ev.suites if sc.kind != "minimal_pairs"]
    cache: dict[str, Any] = {}
    frames = {sc.name: build_suite(sc, cfg, read_split=partial(_read_split, run_dir), cache=cache)
              for sc in suites}
    kinds = {sc.name: sc.kind for sc in suites}
    texts = [t for df in frames.values() for t in df["text"].tolist()]
    timings, scores = {}, {}
    for key, model in (("a", model_a), ("b", model_b)):
        t0 = time.time()
        scores[key] = score_texts(texts, model_dir=model, ev=ev)
        timings[key] = round(time.time() - t0, 2)
        log(f"model {key.upper()} {model}: {len(texts):,} texts in {timings[key]} s")
    start = 0
    out: dict[str, Any] = {}
    for name, df in frames.items():
        n = len(df)
        df["score_a"], df["score_b"] = scores["a"][start:start + n], scores["b"][start:start + n]
        start += n
        out[name] = {"kind": kinds[name], **suite_parity(
            df, score_a="score_a", score_b="score_b", threshold=ev.threshold,
            min_group_size=ev.min_group_size, n_boot=n_boot or min(ev.n_boot, 200),
            fpr_gap=kinds[name] == "identity_templates", rule=rule, seed=seed)}
        log(f"suite {name}: max |d| {out[name]['drift']['max_abs_diff']:.4f}, decisions changed "
            f"{out[name]['drift']['decision_change_rate']:.4f}, "
            f"{'PASS' if out[name]['passed'] else 'FAIL ' + ', '.join(out[name]['failed'])}")
    failed = [f"{s}.{m}" for s, d in out.items() for m in d["failed"]]
    doc = {"model_a": model_a, "model_b": model_b, "threshold": ev.threshold, "rule": rule,
           "suites": out, "passed": not failed, "failed": failed, "inference_seconds": timings}
    with stage_output(run_dir, "compare", config=ev, inputs=[model_a, model_b], seed=seed) as w:
        w.write_json("metrics.json", doc)
        w.manifest.update({"passed": doc["passed"], "failed": failed})
    log(f"{'PASS' if doc['passed'] else 'FAIL'}: {stage_path(run_dir, 'compare', 'metrics.json')}")
    return doc


def card_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a parity document that goes into a model card (no per-row data)."""
    return {"passed": doc["passed"], "failed": doc["failed"], "rule": doc["rule"],
            "threshold": doc["threshold"],
            "suites": {n: {"kind": s["kind"], "drift": s["drift"], "metrics": s["metrics"]}
                       for n, s in doc["suites"].items()}}


def export(cfg: PipelineConfig, run_dir: str, *, source: str, out: str, method: str,
           parity: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """``debias export``: the optimised copy, then (by default) its parity check against the source.

    The parity check needs Ray (the caller's session); ``parity=False`` does not.
    """
    from debias.serving.export import export_optimized, write_card
    from debias.training.model import read_model_card

    t0 = time.time()
    path = export_optimized(source, out, method=method, overwrite=overwrite)
    log(f"exported {method} to {path} in {time.time() - t0:.1f} s")
    if not parity:
        return {"model_dir": str(path), "passed": True, "parity": None}
    doc = run(cfg, run_dir, model_a=str(Path(source)), model_b=str(path))
    card = read_model_card(path)
    card["parity"] = card_summary(doc)
    write_card(path, card)
    return {"model_dir": str(path), "passed": doc["passed"], "parity": doc}


def main(cfg: PipelineConfig, run_dir: str, *, compare: tuple[str, str] | None = None,
         method: str | None = None, source: str | None = None, out: str | None = None,
         parity: bool = True, overwrite: bool = False) -> int:
    """The CLI's entry: ``compare=(A, B)`` for ``evaluate --compare``, else ``export``; exit code."""
    from jobs.ray_session import ray_session

    if compare is None:
        from jobs.evaluate import resolve_model_dir

        source = source or resolve_model_dir(cfg, run_dir)
        out = out or str(Path(run_dir) / "export" / str(method))
        preflight(cfg, models=[source], out=out, method=method, overwrite=overwrite)
        if not parity:  # no suites to score: no Ray needed
            export(cfg, run_dir, source=source, out=out, method=method, parity=False, overwrite=overwrite)
            print(out)
            return 0
    else:
        preflight(cfg, models=list(compare))
    with ray_session(cfg.ray, dashboard=False):
        if compare is None:
            doc = export(cfg, run_dir, source=source, out=out, method=method, overwrite=overwrite)["parity"]
            print(out)
        else:
            doc = run(cfg, run_dir, model_a=compare[0], model_b=compare[1])
    for f in doc["failed"]:
        print(f"parity FAILED: {f} is worse than the source model's interval", file=sys.stderr)
    return 0 if doc["passed"] else 1
