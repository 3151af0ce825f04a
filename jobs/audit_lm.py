"""`debias audit-lm`: bias audit of a generative LM on Ray Data (or against an HTTP endpoint).

    debias audit-lm --run-dir runs/lm [--set audit_lm.limit=200] [--gate "crows_pairs:stereotype_deviation<=10"]

Reads the suites' data, scores every option's log-likelihood in one Ray Data pass (an actor
pool holding the model; rows sorted by length so batches pad little), generates every prompt
in a second pass, scores counterfactual continuations with the classifier, and writes
``RUN_DIR/audit_lm/`` atomically: ``scored.parquet``, ``generated.parquet``, ``metrics.json``,
``report.html`` and the manifest (plus ``translation.parquet``, each translation and the gender
read from it, when the translation suite ran). Translations come from the audited model's
generation pass, or from a seq2seq model in a third Ray pass, or from a file. With ``audit_lm.endpoint`` the same rows go to an
OpenAI-compatible server over async HTTP instead (cached, so a re-run resumes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from debias.config import PipelineConfig
from debias.lm.audit import (
    AuditPlan,
    check_inputs,
    gate_values,
    json_safe,
    plan,
    suite_metrics,
    summary_lines,
)
from debias.lm.config import AuditLMConfig

STAGE = "audit_lm"


class Progress:
    """One line per update, at most every ``every_s`` seconds, with rate and ETA."""

    def __init__(self, what: str, total: int, *, every_s: float = 10.0, unit: str = "rows") -> None:
        self.what, self.total, self.every_s, self.unit = what, total, every_s, unit
        self.t0 = self.last = time.time()
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n
        now = time.time()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"[audit-lm] {self.what}: {self.done:,}/{self.total:,} {self.unit}, {rate:.1f}/s, "
                  f"ETA {eta:.0f} s", file=sys.stderr, flush=True)


def _cfg(cfg: PipelineConfig) -> AuditLMConfig:
    return cfg.audit_lm or AuditLMConfig()


def classifier_dir(acfg: AuditLMConfig, run_dir: str) -> str | None:
    if acfg.classifier:
        return acfg.classifier
    default = Path(run_dir) / "train" / "model"
    return str(default) if (default / "config.json").is_file() else None


def preflight(cfg: PipelineConfig, run_dir: str, *, gates: list[str] = ()) -> AuditLMConfig:
    """Config, inputs and gates checked before Ray starts."""
    from debias.evaluation.gates import parse_gates

    acfg = _cfg(cfg)
    errs = check_inputs(acfg)
    if errs:
        raise FileNotFoundError("; ".join(errs))
    clf = acfg.classifier
    if clf and not (Path(clf) / "config.json").is_file():
        raise FileNotFoundError(f"audit_lm.classifier must be a model folder with config.json; found {clf!r}")
    if acfg.endpoint is None and acfg.model != "smollm2" and not (Path(acfg.model) / "config.json").is_file():
        raise FileNotFoundError(f"audit_lm.model must be 'smollm2' or a local model folder; found {acfg.model!r}")
    parse_gates([*acfg.gates, *gates])
    return acfg


def _blocks(df: pd.DataFrame, rows_per_block: int) -> list[pd.DataFrame]:
    """Consecutive blocks of the (length-sorted) frame, so each block holds similar lengths."""
    return [df.iloc[i:i + rows_per_block].reset_index(drop=True) for i in range(0, len(df), rows_per_block)] or [df]


def _ray_score(rows: pd.DataFrame, model_dir: str, acfg: AuditLMConfig) -> pd.DataFrame:
    import ray

    from debias.lm.mitigate import MitigatedScorer as LMScorer
    from debias.lm.mitigate import mitigation_kwargs

    if rows.empty:
        return rows.assign(logprob_sum=[], logprob_mean=[], n_tokens=[])
    # Sorting the whole plan by length puts similar rows in the same Ray block and batch.
    rows = rows.assign(_len=(rows["prefix"].str.len() + rows["text"].str.len())).sort_values("_len", kind="stable")
    ds = ray.data.from_pandas(_blocks(rows.drop(columns="_len"), acfg.batch_size * 8))
    ds = ds.map_batches(LMScorer, fn_constructor_kwargs={"model": model_dir, "batch_size": acfg.batch_size,
                                                         "max_length": acfg.max_length,
                                                         "torch_threads": acfg.cpus_per_actor, "dtype": acfg.dtype,
                                                         **mitigation_kwargs(acfg)},
                        batch_size=acfg.batch_size * 4, batch_format="pandas",
                        compute=ray.data.ActorPoolStrategy(size=acfg.num_actors), num_cpus=acfg.cpus_per_actor,
                        num_gpus=1 if acfg.use_gpu else 0)
    prog, parts = Progress("score", len(rows)), []
    for b in ds.iter_batches(batch_size=None, batch_format="pandas"):
        parts.append(b)
        prog.update(len(b))
    return pd.concat(parts, ignore_index=True)


def _ray_generate(rows: pd.DataFrame, model_dir: str, acfg: AuditLMConfig) -> pd.DataFrame:
    import ray

    from debias.lm.mitigate import MitigatedGenerator as LMGenerator
    from debias.lm.mitigate import mitigation_kwargs

    out = []
    for max_new, part in rows.groupby("max_new_tokens", sort=True):
        part = part.assign(_len=part["prompt"].str.len()).sort_values("_len", kind="stable").drop(columns="_len")
        ds = ray.data.from_pandas(_blocks(part, acfg.gen_batch_size * 4))
        ds = ds.map_batches(LMGenerator, fn_constructor_kwargs={
            "model": model_dir, "batch_size": acfg.gen_batch_size, "max_new_tokens": int(max_new),
            "temperature": acfg.temperature, "top_p": acfg.top_p, "seed": acfg.seed, "chat": acfg.chat,
            "torch_threads": acfg.cpus_per_actor, "dtype": acfg.dtype, **mitigation_kwargs(acfg)},
            batch_size=acfg.gen_batch_size * 2, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=acfg.num_actors), num_cpus=acfg.cpus_per_actor,
            num_gpus=1 if acfg.use_gpu else 0)
        prog = Progress(f"generate ({max_new} new tokens)", len(part))
        for b in ds.iter_batches(batch_size=None, batch_format="pandas"):
            out.append(b)
            prog.update(len(b))
    return pd.concat(out, ignore_index=True) if out else rows.assign(completion=[], n_generated=[])


def _ray_translate(rows: pd.DataFrame, acfg: AuditLMConfig) -> pd.DataFrame:
    """One Ray Data pass per language through that language's seq2seq model."""
    import ray

    from debias.lm.seq2seq import Seq2SeqTranslator, resolve_seq2seq_dir

    t, out = acfg.translation, []
    for code, part in rows.groupby("lang", sort=False):
        prefix = t.seq2seq_prefix.replace("{language}", str(part["language"].iloc[0])).replace("{lang}", str(code))
        part = part.assign(_len=part["text"].str.len()).sort_values("_len", kind="stable").drop(columns="_len")
        ds = ray.data.from_pandas(_blocks(part, acfg.gen_batch_size * 4))
        ds = ds.map_batches(Seq2SeqTranslator, fn_constructor_kwargs={
            "model": str(resolve_seq2seq_dir(t.seq2seq_model, lang=str(code))), "prefix": prefix,
            "batch_size": acfg.gen_batch_size, "max_new_tokens": t.max_new_tokens, "num_beams": t.num_beams,
            "torch_threads": acfg.cpus_per_actor, "dtype": acfg.dtype},
            batch_size=acfg.gen_batch_size * 2, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=acfg.num_actors), num_cpus=acfg.cpus_per_actor,
            num_gpus=1 if acfg.use_gpu else 0)
        prog = Progress(f"translate ({code}, seq2seq)", len(part))
        for b in ds.iter_batches(batch_size=None, batch_format="pandas"):
            out.append(b)
            prog.update(len(b))
    return pd.concat(out, ignore_index=True) if out else rows.assign(completion=[], n_generated=[])


def _translations(p: AuditPlan, acfg: AuditLMConfig) -> pd.DataFrame | None:
    """The translate rows' outputs as generation rows (``suite == "translation"``), or None."""
    from debias.lm.translation import attach_translations, read_translations

    rows = p.translate_rows
    if rows is None:
        return None
    if acfg.translation.translator == "file":
        done = attach_translations(rows, read_translations(acfg.translation.file))
    else:
        done = _ray_translate(rows, acfg)
    # the source sentence stands where a prompt would: generated.parquet says what was translated
    return done.assign(prompt=done["text"])[["id", "suite", "prompt", "max_new_tokens", "completion",
                                              "n_generated"]]


def _needs_ray(acfg: AuditLMConfig) -> bool:
    return acfg.endpoint is None or ("translation" in acfg.suites and acfg.translation.translator == "seq2seq")


def _endpoint_client(acfg: AuditLMConfig, run_dir: str):
    from debias.lm.endpoint import EndpointClient

    e = acfg.endpoint
    return EndpointClient(e.base_url, e.model, api_key=os.environ.get(e.api_key_env) if e.api_key_env else None,
                          concurrency=e.concurrency, timeout_s=e.timeout_s, max_retries=e.max_retries,
                          backoff_s=e.backoff_s, cache_dir=e.cache_dir or str(Path(run_dir) / "audit_lm_cache"))


def _chunks(df: pd.DataFrame, size: int):
    for i in range(0, len(df), size):
        yield df.iloc[i:i + size]


def _endpoint_score(rows: pd.DataFrame, client, acfg: AuditLMConfig) -> pd.DataFrame:
    prog, parts = Progress("score (endpoint)", len(rows)), []
    for part in _chunks(rows, acfg.endpoint.concurrency * 16):
        s = client.score_pairs(part["prefix"].tolist(), part["text"].tolist())
        parts.append(pd.concat([part.reset_index(drop=True), s], axis=1))
        prog.update(len(part))
    return pd.concat(parts, ignore_index=True) if parts else rows.assign(logprob_sum=[], logprob_mean=[], n_tokens=[])


def _endpoint_generate(rows: pd.DataFrame, client, acfg: AuditLMConfig) -> pd.DataFrame:
    prog, parts = Progress("generate (endpoint)", len(rows)), []
    for (max_new,), group in rows.groupby(["max_new_tokens"], sort=True):
        for part in _chunks(group, acfg.endpoint.concurrency * 4):
            g = client.generate(part["prompt"].tolist(), max_tokens=int(max_new), temperature=acfg.temperature,
                                top_p=acfg.top_p, seed=acfg.seed)
            parts.append(pd.concat([part.reset_index(drop=True), g], axis=1))
            prog.update(len(part))
    return pd.concat(parts, ignore_index=True) if parts else rows.assign(completion=[], n_generated=[])


def run(cfg: PipelineConfig, run_dir: str, *, gates: list[str] = ()) -> dict[str, Any]:
    """Run the audit; return the manifest (with ``gates`` results)."""
    from debias.evaluation.gates import check_gates, parse_gates
    from debias.lm.report import render_audit_html
    from debias.runs import stage_output

    acfg = preflight(cfg, run_dir, gates=gates)
    t0 = time.time()
    clf = classifier_dir(acfg, run_dir)
    p: AuditPlan = plan(acfg, classifier=clf)
    print(f"[audit-lm] plan: {len(p.score_rows):,} options to score, {len(p.prompt_rows):,} prompts to generate "
          f"({', '.join(p.items)})" + (f"; skipped: {p.skipped}" if p.skipped else ""), file=sys.stderr, flush=True)
    timings: dict[str, float] = {}
    client = None
    if acfg.endpoint is not None and acfg.mitigation == "instruction":  # the client sends no system turn
        from debias.lm.mitigate import instruct_rows

        p.score_rows, p.prompt_rows = instruct_rows(p.score_rows, p.prompt_rows, acfg.debias_instruction)
    if acfg.endpoint is not None:
        client = _endpoint_client(acfg, run_dir)
        model_name = f"{acfg.endpoint.base_url} ({acfg.endpoint.model})"
        t = time.time()
        scored = (_endpoint_score(p.score_rows, client, acfg) if acfg.endpoint.scoring != "none"
                  else p.score_rows.assign(logprob_sum=float("nan"), logprob_mean=float("nan"), n_tokens=0))
        timings["score_s"] = time.time() - t
        t = time.time()
        generated = _endpoint_generate(p.prompt_rows, client, acfg)
        timings["generate_s"] = time.time() - t
    else:
        from debias.lm.model import resolve_model_dir

        model_dir = str(resolve_model_dir(acfg.model))  # converts the default once, before the actors
        model_name = model_dir
        t = time.time()
        scored = _ray_score(p.score_rows, model_dir, acfg)
        timings["score_s"] = time.time() - t
        t = time.time()
        generated = _ray_generate(p.prompt_rows, model_dir, acfg)
        timings["generate_s"] = time.time() - t
    t = time.time()
    translated = _translations(p, acfg)
    if translated is not None:
        generated = pd.concat([generated, translated], ignore_index=True)
        timings["translate_s"] = time.time() - t
    clf_scores = None
    if clf is not None and "counterfactual" in p.items:
        from debias.evaluation.predict import Predictor

        gen = generated[generated["suite"] == "counterfactual"]
        t = time.time()
        pred = Predictor(clf, num_threads=acfg.cpus_per_actor)
        clf_scores = pd.Series(pred.predict_texts(gen["completion"].fillna("").tolist()), index=gen["id"].to_numpy())
        timings["classify_s"] = time.time() - t
    suites = suite_metrics(acfg, p, scored, generated, classifier_scores=clf_scores)
    # stage_output's wall_seconds times only the writing; the manifest also says how long the audit took
    timings["total_s"] = time.time() - t0
    metrics = json_safe({"model": model_name, "classifier": clf, "limit": acfg.limit, "seed": acfg.seed,
                         "mitigation": acfg.mitigation, "suites": suites, "gate_values": gate_values(suites)})
    gate_results = check_gates(parse_gates([*acfg.gates, *gates]), metrics["gate_values"])
    with stage_output(run_dir, STAGE, config=acfg, inputs=[str(v) for v in p.items], seed=acfg.seed) as w:
        scored.to_parquet(w.sub("scored.parquet"), index=False)
        gen_out = generated.copy()
        if clf_scores is not None:
            gen_out["classifier_score"] = gen_out["id"].map(clf_scores)
        gen_out.to_parquet(w.sub("generated.parquet"), index=False)
        if "translation" in p.items:
            from debias.lm.audit import translation_judged

            translation_judged(acfg, p, generated).to_parquet(w.sub("translation.parquet"), index=False)
        w.write_json("metrics.json", metrics)
        w.write_text("report.html", render_audit_html(metrics, title=f"Generative model audit — {cfg.name}",
                                                      gates=gate_results))
        w.manifest.update({"rows": {"scored": len(scored), "generated": len(generated),
                                    **{k: len(v) for k, v in p.items.items()}},
                           "timings_s": {k: round(v, 2) for k, v in timings.items()},
                           "endpoint_stats": vars(client.stats) if client is not None else None,
                           "gates": gate_results, "skipped": p.skipped,
                           "translation_excluded": p.translation_excluded or None})
        manifest = dict(w.manifest)
    print(f"[audit-lm] done in {time.time() - t0:.0f} s: {Path(run_dir) / STAGE}", file=sys.stderr, flush=True)
    for line in summary_lines(suites):
        print(f"  {line}", file=sys.stderr)
    return manifest


def main(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    """CLI entry: run inside a Ray session; 1 when a gate fails."""
    from jobs.ray_session import ray_session

    preflight(cfg, args.run_dir, gates=args.gate)
    if not _needs_ray(_cfg(cfg)):
        manifest = run(cfg, args.run_dir, gates=args.gate)
    else:
        with ray_session(cfg.ray, dashboard=False):
            manifest = run(cfg, args.run_dir, gates=args.gate)
    failed = [g for g in manifest.get("gates", []) if not g["passed"]]
    for g in failed:
        print(f"gate FAILED: {g['expr']} ({g['reason']})", file=sys.stderr)
    return 1 if failed else 0
