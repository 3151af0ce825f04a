"""`debias evaluate`: score every bias suite with Ray Data batch inference, then measure.

1. Preflight (no Ray work): parse the gates, find the model, load every suite on the driver.
2. One Ray Data plan scores all suites together: texts sorted by length and cut into
   blocks (so each block holds texts of similar length), ``map_batches`` over an actor pool of
   :class:`debias.evaluation.predict.Predictor` (the model loads once per actor; each actor pads a batch
   only to its own longest text), CPU or GPU.
3. On the driver, from the predictions alone (``debias.evaluation.measure``): the decision rule
   (threshold, or per-group thresholds fitted on the val split), metrics per suite, gate values
   and checks, the worst cases and their token attributions.
4. ``RUN_DIR/evaluate/``: ``predictions/<suite>/part-0.parquet``, ``metrics.json``,
   ``group_thresholds.json`` (the rule), manifest; the rule also goes into the run's own model
   dir (``evaluate.store_rule``) so ``debias serve`` decides as evaluation did.
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from debias.config import EvaluateConfig, PipelineConfig
from debias.evaluation.build import build_suite
from debias.evaluation.gates import Gate, parse_gates
from debias.evaluation.measure import (
    attach_scores,
    choose_rule,
    focus_labels,
    measure_suites,
    with_predictions,
)
from debias.evaluation.thresholds import FILE_NAME as RULE_FILE
from debias.evaluation.thresholds import GroupThresholds
from debias.io import to_arrow
from debias.runs import read_manifest, resolve_fs, stage_output, stage_path
from debias.schema import TEXT_PAIR
from jobs.progress import Progress


def log(msg: str) -> None:
    print(f"[evaluate] {msg}", file=sys.stderr, flush=True)

# Rows per Ray block (and per map_batches call) = batch_size * this: big enough that sorting
# by length inside a block makes tight batches, small enough to spread over the actors.
_BLOCK_BATCHES = 8


def resolve_model_dir(cfg: PipelineConfig, run_dir: str) -> str:
    """``evaluate.model`` if set, else ``RUN_DIR/train/model``, checked as the trainer checks it."""
    from debias.training.model import resolve_model_dir as resolve

    return resolve(cfg.evaluate.model, run_dir=run_dir, key="evaluate.model")


def _read_split(run_dir: str, split: str) -> pd.DataFrame:
    path = stage_path(run_dir, "preprocess", split)
    fs, p = resolve_fs(path)
    from pyarrow import fs as pafs

    if fs.get_file_info(p).type == pafs.FileType.NotFound:
        raise ValueError(f"suite needs the {split} split at {path}; run `debias preprocess` first")
    import pyarrow.parquet as pq

    # ignore_metadata: a split written from pandas with Arrow-backed list columns carries dtype
    # names that to_pandas cannot always rebuild; the columns themselves are all we need.
    return pq.read_table(p, filesystem=fs).to_pandas(ignore_metadata=True)


def preflight(cfg: PipelineConfig, run_dir: str, *, gates: list[str] | None = None
              ) -> tuple[list[Gate], str]:
    """Everything that can fail before inference: gates, suite names, the model dir (and its
    stored decision rule when ``evaluate.group_thresholds: stored``)."""
    names = [s.name for s in cfg.evaluate.suites]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"evaluate.suites: duplicate suite name(s) {dup}")
    if not names:
        raise ValueError("evaluate.suites is empty; add at least one suite")
    parsed = parse_gates([*cfg.evaluate.gates, *(gates or [])], suites=names)
    if cfg.evaluate.explain_method == "shap" and cfg.evaluate.explain_top_k:
        import importlib.util

        if importlib.util.find_spec("shap") is None:
            raise ValueError("evaluate.explain_method: shap needs the shap package: pip install 'debias[explain]' "
                             "(or pip install shap), or choose integrated_gradients / occlusion")
    model_dir = resolve_model_dir(cfg, run_dir)
    if cfg.evaluate.group_thresholds == "stored" and GroupThresholds.load(model_dir) is None:
        raise ValueError(f"evaluate.group_thresholds: stored, but {model_dir} holds no {RULE_FILE}; "
                         "fit one first (evaluate.group_thresholds: equal_opportunity, with a val_split suite)")
    return parsed, model_dir


def store_rule(rule: GroupThresholds, *, model_dir: str, run_dir: str,
               suites: dict[str, Any] | None = None) -> str | None:
    """Put the decision rule beside the run's own model (``RUN_DIR/train/model``), so the
    service decides as this evaluation did; the plain configured threshold removes a stale one.
    The model card (``model_card.json``, ``README.md``) gains the evaluation's headline metrics
    with intervals and the rule. A model from elsewhere is left untouched. Returns what was
    done, for the log."""
    own = Path(stage_path(run_dir, "train", "model"))
    if "://" in str(run_dir) or not own.is_dir() or Path(model_dir).resolve() != own.resolve():
        return None
    from debias.runs import json_default
    from debias.training.card import evaluation_rows, model_card_markdown
    from debias.training.model import MODEL_CARD, read_model_card

    card = read_model_card(own)
    if card:
        card["decision_rule"] = rule.describe()
        card["evaluation"] = evaluation_rows(suites or {})
        (own / MODEL_CARD).write_text(json.dumps(card, indent=2, default=json_default), encoding="utf-8")
        (own / "README.md").write_text(model_card_markdown(card), encoding="utf-8")
    path = own / RULE_FILE
    if rule.constraint == "none" and rule.source == "config":
        if path.is_file():
            path.unlink()
            return f"removed the stale {path} (this evaluation used the configured threshold)"
        return None
    rule.save(own)
    return f"decision rule stored with the model: {path}"


def score_texts(texts: list[str], *, model_dir: str, ev: EvaluateConfig, focus: int = 1,
                with_proba: bool = False, pairs: list[str | None] | None = None) -> Any:
    """P(focus class) for ``texts`` (the positive class by default) with Ray Data ``map_batches``
    over an actor pool of Predictors; ``with_proba``: ``(scores, probabilities)``, the second the
    ``(n, K)`` matrix of a model of K > 2 classes, else None.

    Texts are sorted by length before they are cut into blocks, so every block (and every
    batch the Predictor pads) holds texts of similar length: the length bucketing that makes
    short-text inference much cheaper than padding to max_length. ``pairs[i]`` (a str) scores
    row ``i`` as the text pair (texts[i], pairs[i]).
    """
    import ray

    from debias.evaluation.predict import Predictor

    n = len(texts)
    if n == 0:
        return (np.empty(0), None) if with_proba else np.empty(0)
    if pairs is not None and len(pairs) != n:
        raise ValueError(f"pairs must have one entry per text; found {len(pairs)} for {n} texts")
    lengths = np.fromiter((len(t) + (len(pairs[i]) if pairs is not None and isinstance(pairs[i], str) else 0)
                           for i, t in enumerate(texts)), dtype=np.int64, count=n)
    order = np.argsort(lengths, kind="stable")
    frame = pd.DataFrame({"_row": order.astype(np.int64), "text": [texts[i] for i in order]})
    if pairs is not None:
        frame[TEXT_PAIR] = [pairs[i] if isinstance(pairs[i], str) else None for i in order]
    # Enough blocks to keep every actor busy, each at least one batch and at most _BLOCK_BATCHES.
    per_actor = -(-n // (ev.num_actors * 2))
    block = max(ev.batch_size, min(ev.batch_size * _BLOCK_BATCHES, per_actor))
    chunks = [frame.iloc[i:i + block] for i in range(0, n, block)]
    ds = ray.data.from_pandas(chunks)
    ds = ds.map_batches(
        Predictor,
        fn_constructor_kwargs={"model_dir": model_dir, "batch_size": ev.batch_size,
                               "max_length": ev.max_length, "device": "cuda" if ev.use_gpu else "cpu",
                               "num_threads": ev.cpus_per_actor, "focus": int(focus)},
        batch_size=block,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=ev.num_actors),
        num_cpus=ev.cpus_per_actor,
        num_gpus=1 if ev.use_gpu else 0,
    )
    ds = ds.drop_columns(["text", *([TEXT_PAIR] if pairs is not None else [])])
    prog = Progress("[evaluate] scoring", n, unit="texts")
    parts = []
    for part in ds.iter_batches(batch_size=None, batch_format="pandas"):
        parts.append(part)
        prog.update(len(part))
    out = pd.concat(parts, ignore_index=True)
    scores = np.full(n, np.nan)
    rows = out["_row"].to_numpy()
    scores[rows] = out["y_score"].to_numpy(dtype=np.float64)
    if np.isnan(scores).any():
        raise RuntimeError(f"inference returned {int(np.isnan(scores).sum())} rows without a score")
    if not with_proba:
        return scores
    proba = None
    if "y_proba" in out.columns:
        proba = np.empty((n, len(out["y_proba"].iloc[0])), dtype=np.float64)
        proba[rows] = np.stack([np.asarray(v, dtype=np.float64) for v in out["y_proba"]])
    return scores, proba


def _explain(cases: list[dict], *, model_dir: str, ev: EvaluateConfig, focus: int = 1,
             seed: int = 0) -> tuple[list[dict], dict | None]:
    """The cases with their attributions, and (``shap``) SHAP's agreement with integrated gradients."""
    if not cases:
        return [], None
    from debias.evaluation.explain import IntegratedGradients, explain_cases
    from debias.evaluation.predict import Predictor

    prog = Progress(f"[evaluate] explaining ({ev.explain_method})", len(cases), unit="cases")
    if ev.explain_method == "occlusion":
        p = Predictor(model_dir, batch_size=ev.batch_size, max_length=ev.max_length, focus=focus)
        return explain_cases(cases, predict_fn=p.predict_texts, method="occlusion", on_case=lambda: prog.update(1)), None
    from debias.training.model import load_classifier

    model, tok = load_classifier(model_dir, optimized=False)  # IG needs gradients: fp32 weights
    ig = IntegratedGradients(model, tok, steps=ev.ig_steps, max_length=ev.max_length, focus=focus)
    if ev.explain_method != "shap":
        return explain_cases(cases, ig=ig, method="integrated_gradients", on_case=lambda: prog.update(1)), None
    from debias.evaluation.explain_shap import method_agreement, shap_attributions

    p = Predictor(model_dir, batch_size=ev.batch_size, max_length=ev.max_length, focus=focus)
    shap_cases = explain_cases(cases, method="shap", on_case=lambda: prog.update(1), attribute=partial(
        shap_attributions, predict_fn=p.predict_texts, tokenizer=p.tokenizer, max_evals=ev.shap_max_evals, seed=seed))
    ig_cases = explain_cases(cases, ig=ig, method="integrated_gradients")
    agree = method_agreement(shap_cases, ig_cases, names=("shap", "integrated_gradients"))
    log(f"explanations: SHAP and integrated gradients name the same top word in "
        f"{agree['top1_agreement'] or 0:.0%} of {agree['n_cases']} texts (top-3 overlap {agree['top_k_overlap'] or 0:.2f})")
    return shap_cases, agree


def _load_suites(cfg: PipelineConfig, run_dir: str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every configured suite as a frame, and each suite's kind (both by suite name)."""
    cache: dict[str, Any] = {}
    frames = {sc.name: build_suite(sc, cfg, read_split=partial(_read_split, run_dir), cache=cache)
              for sc in cfg.evaluate.suites}
    kinds = {sc.name: sc.kind for sc in cfg.evaluate.suites}
    log("suites: " + ", ".join(f"{n} ({kinds[n]}, {len(d):,} rows)" for n, d in frames.items()))
    return frames, kinds


def _score_suites(frames: dict[str, pd.DataFrame], *, model_dir: str, ev: EvaluateConfig,
                  focus: int = 1) -> dict[str, pd.DataFrame]:
    """One inference pass over every suite; the scores go back to their rows by position."""
    texts = [t for df in frames.values() for t in df["text"].tolist()]
    pairs = None
    if any(TEXT_PAIR in df.columns for df in frames.values()):  # a pair task: rows without one score alone
        pairs = [p if isinstance(p, str) else None for df in frames.values()
                 for p in (df[TEXT_PAIR].tolist() if TEXT_PAIR in df.columns else [None] * len(df))]
    log(f"scoring {len(texts):,} texts with {model_dir} on {ev.num_actors} actor(s) x "
        f"{ev.cpus_per_actor} CPU{' + 1 GPU' if ev.use_gpu else ''}")
    t1 = time.time()
    scores, proba = score_texts(texts, model_dir=model_dir, ev=ev, focus=focus, with_proba=True, pairs=pairs)
    t_infer = time.time() - t1
    log(f"scored in {t_infer:.1f} s ({len(texts) / max(t_infer, 1e-9):.1f} texts/s)")
    return attach_scores(frames, scores, proba=proba)


def _write(run_dir: str, ev: EvaluateConfig, frames: dict[str, pd.DataFrame], kinds: dict[str, str],
           doc: dict[str, Any], *, rule_doc: dict[str, Any], seed: int, timings: dict[str, float]) -> None:
    """``RUN_DIR/evaluate/``: predictions per suite, ``metrics.json``, the decision rule and
    the manifest."""
    import pyarrow.parquet as pq

    model_dir, n_scored = doc["model_dir"], sum(len(d) for d in frames.values())
    inputs = [stage_path(run_dir, "preprocess")] if any(
        k in ("test_split", "val_split", "counterfactual_pairs") for k in kinds.values()) else []
    with stage_output(run_dir, "evaluate", config=ev, inputs=[*inputs, model_dir], seed=seed) as w:
        for name, df in frames.items():
            w.fs.create_dir(w.sub("predictions", name), recursive=True)
            pq.write_table(to_arrow(df), w.sub("predictions", name, "part-0.parquet"), filesystem=w.fs)
        w.write_json("metrics.json", doc)
        w.write_json(RULE_FILE, rule_doc)
        w.manifest.update({
            "model_dir": model_dir,
            "rows": {n: int(len(d)) for n, d in frames.items()},
            "rows_scored": int(n_scored),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "throughput_texts_per_s": round(n_scored / timings["inference"], 1) if timings["inference"] > 0 else None,
            "gates": doc["gates"],
        })


def run(cfg: PipelineConfig, run_dir: str, *, gates: list[str] | None = None) -> dict[str, Any]:
    """Score every suite, compute metrics, check gates; write ``RUN_DIR/evaluate/``.

    Returns the manifest dict, including ``"gates": [{"expr", "value", "passed", ...}]``.
    """
    from debias.evaluation.explain import worst_cases
    from debias.metrics import to_json_safe
    from jobs.storage import check_run_dir_shared

    ev = cfg.evaluate
    parsed, model_dir = preflight(cfg, run_dir, gates=gates)
    check_run_dir_shared(run_dir)
    seed = ev.seed if ev.seed is not None else cfg.seed
    clock = [time.time()]

    def lap() -> float:
        clock.append(time.time())
        return clock[-1] - clock[-2]

    frames, kinds = _load_suites(cfg, run_dir)
    timings = {"load_suites": lap()}
    frames = _score_suites(frames, model_dir=model_dir, ev=ev, focus=cfg.focus_id)
    frames = focus_labels(frames, kinds, focus=cfg.focus_id, n_classes=cfg.data.n_classes)
    timings["inference"] = lap()
    rule = choose_rule(frames, kinds, threshold=ev.threshold, tune=ev.tune_threshold,
                       group_thresholds=ev.group_thresholds, min_rows=ev.group_thresholds_min_rows,
                       stored=GroupThresholds.load(model_dir) if ev.group_thresholds == "stored" else None,
                       seed=seed, recall=ev.tune_recall)
    threshold = rule.threshold
    if rule.source != "config":
        log(f"decision rule: {rule.constraint if rule.rules else 'global'} threshold {threshold:.4f}, "
            f"{rule.source}" + (f", {len(rule.rules)} cells" if rule.rules else ""))
    frames = with_predictions(frames, rule)
    prog = Progress(f"[evaluate] metrics ({ev.n_boot} bootstrap draws)", sum(len(d) for d in frames.values()),
                    every_s=0.0)
    measured = measure_suites(frames, kinds, parsed, threshold=threshold, n_boot=ev.n_boot,
                              min_group_size=ev.min_group_size, seed=seed, classes=cfg.data.class_names,
                              on_suite=lambda name, rows: prog.update(rows, note=f"suite {name} done"))
    timings["metrics"] = lap()
    labelled = {n: d for n, d in frames.items() if kinds[n] != "minimal_pairs"}
    if any(TEXT_PAIR in d.columns for d in frames.values()):
        log("explanations: not computed for text-pair inputs (the attributions read one text)")
        cases, agreement = [], None
    else:
        cases, agreement = _explain(worst_cases(labelled, k=ev.explain_top_k), model_dir=model_dir, ev=ev,
                                    focus=cfg.focus_id, seed=seed)
    timings["explain"] = lap()
    doc = to_json_safe({
        "model_dir": model_dir, "threshold": threshold, "threshold_source": rule.source,
        "decision_rule": rule.describe(),
        "classes": list(cfg.data.class_names), "focus_class": cfg.data.class_names[cfg.focus_id],
        "suites": {n: {**measured["metrics"][n], "name": n} for n in frames},
        "gate_values": measured["values"], "gates": measured["gates"],
        "worst_cases": cases, "explain_method": ev.explain_method, "explain_agreement": agreement,
    })
    _write(run_dir, ev, frames, kinds, doc, rule_doc=rule.to_dict(), seed=seed, timings=timings)
    if ev.store_rule and (done := store_rule(rule, model_dir=model_dir, run_dir=run_dir, suites=doc["suites"])):
        log(done)
    for g in measured["gates"]:
        log(f"gate {'PASS' if g['passed'] else 'FAIL'}: {g['expr']} (value {g['value']})")
    log(f"done: {stage_path(run_dir, 'evaluate')}")
    return read_manifest(run_dir, "evaluate")


def load_metrics(run_dir: str) -> dict[str, Any]:
    """``RUN_DIR/evaluate/metrics.json`` (a clear error when evaluate has not run)."""
    path = Path(stage_path(run_dir, "evaluate", "metrics.json"))
    if not path.is_file():
        raise FileNotFoundError(f"no evaluation in {run_dir} (looked for {path}); run `debias evaluate` first")
    return json.loads(path.read_text(encoding="utf-8"))
