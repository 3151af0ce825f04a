"""`debias finetune-lm`: counterfactual data augmentation fine-tuning of a causal LM on Ray Train.

    debias finetune-lm --run-dir runs/cda [--set finetune_lm.corpus=FILE] [--set finetune_lm.max_steps=100]

1. Preflight on the driver (no cluster work): the model folder, the corpus, the swap lists.
2. The corpus is read, cleaned, sampled and split (held-out source texts) and every text that
   mentions a swappable identity term gets its counterfactual (``debias.lm.finetune``); Ray Data
   tokenises it once, before the workers take the CPUs.
3. ``train_loop_per_worker`` (V2 TorchTrainer, DDP via ``prepare_model``): ``max_steps`` steps of
   the causal-LM loss over the worker's shard, epoch after epoch; rank 0 measures the loss on a
   fixed sample of training texts and on the held-out texts before the first step and after the
   last, prints progress lines, and checkpoints (weights; the optimiser too when
   ``max_failures > 0``, so a restarted worker group resumes where it stopped).
4. The last checkpoint becomes an ordinary Hugging Face model folder, ``RUN_DIR/finetune_lm/model``
   (fp32 weights, the tokenizer, ``finetune_lm_card.json``), inside the atomically committed stage;
   ``debias audit-lm --set audit_lm.model=RUN_DIR/finetune_lm/model`` audits it like any other.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from debias.config import PipelineConfig
from debias.lm.config import FinetuneLMConfig
from debias.runs import join, resolve_fs, stage_output, stage_path

STAGE = "finetune_lm"
CHECKPOINT_DIR = "finetune_lm_checkpoints"
CARD = "finetune_lm_card.json"
OPTIM_STATE = "optim_state.pt"
PROGRESS_EVERY_S = 60.0
log = logging.getLogger("debias.finetune_lm")


def _say(msg: str) -> None:
    # the process's own stdout: in a Ray Train worker sys.stdout echoes each print twice
    print(f"[debias finetune-lm] {msg}", file=sys.__stdout__ or sys.stdout, flush=True)


def _cfg(cfg: PipelineConfig) -> FinetuneLMConfig:
    return cfg.finetune_lm or FinetuneLMConfig()


def _seed(cfg: PipelineConfig) -> int:
    f = _cfg(cfg)
    return f.seed if f.seed is not None else cfg.seed


def preflight(cfg: PipelineConfig) -> dict[str, Any]:
    """Model, corpus and swap lists checked, the corpus built; returns the plan (no Ray)."""
    from debias.identity.tools import swaps_for
    from debias.lm.finetune import augment_texts, prepare_texts, read_corpus
    from debias.lm.model import DEFAULT_MODEL, resolve_model_dir

    f, seed = _cfg(cfg), _seed(cfg)
    if f.model != DEFAULT_MODEL and not (Path(f.model).expanduser() / "config.json").is_file():
        raise FileNotFoundError(f"finetune_lm.model must be {DEFAULT_MODEL!r} or a local model folder with "
                                f"config.json; found {f.model!r}")
    table = swaps_for(f.axes, f.swap_dir)  # an unknown axis fails here, naming the available ones
    train, heldout, counts = prepare_texts(read_corpus(f.corpus, text_col=f.text_col, seed=seed),
                                           max_texts=f.max_texts, heldout_fraction=f.heldout_fraction, seed=seed)
    if train.empty:
        raise ValueError(f"the corpus {f.corpus!r} has no usable text ({counts})")
    train_rows = augment_texts(train, table=table, mode=f.augment, seed=seed)
    per_worker = len(train_rows) // f.num_workers
    if per_worker < f.batch_size:
        raise ValueError(f"{len(train_rows)} training texts give each of {f.num_workers} worker(s) {per_worker}, "
                         f"fewer than one batch of finetune_lm.batch_size={f.batch_size}")
    counts["counterfactual"] = int(train_rows["is_augmented"].sum())
    model_dir = str(resolve_model_dir(f.model))  # converts the default once, before the workers
    return {"model_dir": model_dir, "train_rows": train_rows, "heldout": heldout, "counts": counts, "seed": seed}


# ---------------------------------------------------------------- the worker loop


def _batches(shard: Any, *, batch_size: int, seed: int):
    """The shard's rows as padded batches, epoch after epoch (each epoch reshuffled locally)."""
    epoch = 0
    while True:
        for b in shard.iter_batches(batch_size=batch_size, batch_format="pandas", drop_last=True,
                                    local_shuffle_buffer_size=batch_size * 16, local_shuffle_seed=seed + epoch):
            yield b["input_ids"].tolist(), epoch
        epoch += 1


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker: model, optimiser, (resume), ``max_steps`` steps, loss before/after, checkpoints."""
    import ray.train
    import ray.train.torch
    import torch
    from transformers import AutoModelForCausalLM

    from debias.lm.finetune import collate, lm_train_step, mean_loss
    from debias.training.model import unwrap
    from debias.training.step import EpochProgress, make_optimizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    f = FinetuneLMConfig.model_validate(config["finetune_lm"])
    ctx, device = ray.train.get_context(), ray.train.torch.get_device()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(int(config["seed"]))
    model = AutoModelForCausalLM.from_pretrained(config["model_dir"], dtype=torch.float32)
    state: dict[str, Any] = {"step": 0, "history": [], "loss_before": None}
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
            saved = torch.load(Path(d) / OPTIM_STATE, map_location="cpu", weights_only=True)
    model = ray.train.torch.prepare_model(model)
    optimizer, scheduler = make_optimizer(model, lr=f.lr, weight_decay=f.weight_decay, total_steps=f.max_steps,
                                          warmup_ratio=f.warmup_ratio)
    if ckpt is not None:
        if "optimizer" in saved:  # written when max_failures > 0
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        if rank == 0:
            _say(f"resumed at step {state['step']}")
    pad_id, evals = int(config["pad_id"]), config["eval"]

    def losses() -> dict[str, float]:
        m = unwrap(model)
        return {f"{k}_loss": mean_loss(m, v, pad_id=pad_id, device=device) for k, v in evals.items()}

    if rank == 0 and state["loss_before"] is None:
        state["loss_before"] = losses()
        _say("loss before: " + ", ".join(f"{k} {v:.4f}" for k, v in state["loss_before"].items()))
    progress = EpochProgress(f.max_steps, label=f"{config['run_name']} steps", say=_say,
                             every_s=float(config.get("progress_every_s", PROGRESS_EVERY_S)), world=world)
    batches = _batches(ray.train.get_dataset_shard("train"), batch_size=f.batch_size,
                       seed=int(config["seed"]) * 1009 + rank)
    t0, loss_sum, rows = time.time(), 0.0, 0
    every = f.checkpoint_every or f.max_steps
    while state["step"] < f.max_steps:
        seqs, epoch = next(batches)
        loss = lm_train_step(model, collate(seqs, pad_id=pad_id), optimizer, scheduler, device=device,
                             grad_clip=f.grad_clip)
        state["step"] += 1
        loss_sum, rows = loss_sum + loss, rows + len(seqs)
        state["history"].append({"step": state["step"], "epoch": epoch, "train_loss": loss,
                                 "lr": float(scheduler.get_last_lr()[0])})
        if rank == 0:
            progress.update(state["step"], rows=rows, loss_sum=loss_sum)
        if state["step"] % every == 0 or state["step"] == f.max_steps:
            _checkpoint(model, optimizer, scheduler, state, f, rank=rank, final=state["step"] == f.max_steps,
                        losses=losses, seconds=time.time() - t0)


def _checkpoint(model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any], f: FinetuneLMConfig, *,
                rank: int, final: bool, losses: Any, seconds: float) -> None:
    """Rank 0 saves the weights (and the optimiser, for a resume) and reports; all ranks report."""
    import ray.train
    import torch

    from debias.training.model import unwrap

    recent = state["history"][-min(len(state["history"]), 10):]
    metrics = {"step": state["step"], "train_loss": sum(h["train_loss"] for h in recent) / len(recent),
               "seconds": seconds}
    if rank != 0:
        ray.train.report(metrics)
        return
    if final:
        state["loss_after"] = losses()
        _say("loss after: " + ", ".join(f"{k} {v:.4f}" for k, v in state["loss_after"].items()))
        metrics.update({f"{k}_after": v for k, v in state["loss_after"].items()})
    with tempfile.TemporaryDirectory() as tmp:
        unwrap(model).save_pretrained(tmp, safe_serialization=True)
        # The optimiser (twice the weights' size for AdamW) only where a restart could use it.
        extra = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()} if f.max_failures else {}
        torch.save({**extra, "state": state}, Path(tmp) / OPTIM_STATE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
    _say(f"step {state['step']}/{f.max_steps}: checkpoint saved (train loss {metrics['train_loss']:.4f})")


# ---------------------------------------------------------------- the job


def tokenize_batch(batch, *, model_dir: str, max_length: int):
    """Ray Data task: :class:`debias.lm.finetune.Tokenize` (one tokenizer per process)."""
    return _tokenizer(model_dir, max_length)(batch)


@functools.lru_cache(maxsize=4)
def _tokenizer(model_dir: str, max_length: int):
    from debias.lm.finetune import Tokenize

    return Tokenize(model_dir, max_length=max_length)


def _eval_sequences(plan: dict[str, Any], f: FinetuneLMConfig) -> dict[str, list[list[int]]]:
    """A seeded sample of training texts (originals and counterfactuals alike) and of held-out texts."""
    tok = _tokenizer(plan["model_dir"], f.max_length)
    out = {}
    for name, df in (("train", plan["train_rows"]), ("heldout", plan["heldout"])):
        if len(df):
            df = df.sample(n=min(f.eval_texts, len(df)), random_state=plan["seed"]).sort_index()
            out[name] = tok.encode(df["text"].tolist())
    return out


def fit(cfg: PipelineConfig, run_dir: str, plan: dict[str, Any], *,
        progress_every_s: float = PROGRESS_EVERY_S) -> dict[str, Any]:
    """Tokenise with Ray Data and run the TorchTrainer; returns the result and the run's settings."""
    import ray.data
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from jobs.ray_session import quiet_ray_data

    f = _cfg(cfg)
    quiet_ray_data()
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    fs, base = resolve_fs(run_dir)
    local = isinstance(fs, pafs.LocalFileSystem)
    fs.create_dir(join(base, CHECKPOINT_DIR), recursive=True)
    # a unique name: Ray Train resumes silently from a run folder of the same name
    run_name = f"{cfg.name}-lm-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    t0 = time.time()
    train = ray.data.from_pandas(plan["train_rows"][["id", "text"]]).random_shuffle(seed=plan["seed"])
    train = train.map_batches(tokenize_batch, fn_kwargs={"model_dir": plan["model_dir"], "max_length": f.max_length},
                              batch_format="pandas").select_columns(["input_ids"]).materialize()
    tok = _tokenizer(plan["model_dir"], f.max_length).tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    c = plan["counts"]
    _say(f"run {run_name}: {c['train']:,} texts + {c['counterfactual']:,} counterfactuals, {c['heldout']:,} "
         f"held out; {f.max_steps} steps of {f.batch_size} x {f.num_workers} worker(s); "
         f"tokenised in {time.time() - t0:.1f}s")
    resources = {"CPU": f.cpus_per_worker, **({"GPU": 1} if f.use_gpu else {})}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"finetune_lm": f.model_dump(), "model_dir": plan["model_dir"], "seed": plan["seed"],
                           "pad_id": int(pad_id), "eval": _eval_sequences(plan, f), "run_name": run_name,
                           "progress_every_s": progress_every_s},
        scaling_config=ScalingConfig(num_workers=f.num_workers, use_gpu=f.use_gpu, resources_per_worker=resources),
        run_config=RunConfig(name=run_name, storage_path=stage_path(run_dir, CHECKPOINT_DIR) if local
                             else join(base, CHECKPOINT_DIR), storage_filesystem=None if local else fs,
                             failure_config=FailureConfig(max_failures=f.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
        datasets={"train": train},
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError("fine-tuning produced no checkpoint")
    return {"result": result, "run_name": run_name, "fit_seconds": time.time() - t0}


def _export(plan: dict[str, Any], fitted: dict[str, Any], f: FinetuneLMConfig, out: Path) -> dict[str, Any]:
    """The last checkpoint as an HF model folder with the tokenizer and the card; returns the card."""
    import json
    import shutil

    import torch
    from transformers import AutoTokenizer

    with fitted["result"].checkpoint.as_directory() as d:
        shutil.copytree(d, out, ignore=shutil.ignore_patterns(OPTIM_STATE))
        state = torch.load(Path(d) / OPTIM_STATE, map_location="cpu", weights_only=True)["state"]
    AutoTokenizer.from_pretrained(plan["model_dir"]).save_pretrained(out)
    src = Path(plan["model_dir"]) / "generation_config.json"
    if src.is_file() and not (out / "generation_config.json").is_file():
        shutil.copy(src, out / "generation_config.json")
    card = {"base_model": Path(plan["model_dir"]).name, "method": f"counterfactual data augmentation ({f.augment})",
            "axes": f.axes, "corpus": f.corpus, "rows": plan["counts"], "seed": plan["seed"], "steps": state["step"],
            "run_name": fitted["run_name"], "loss_before": state["loss_before"], "loss_after": state.get("loss_after"),
            "config": f.model_dump(), "history": state["history"]}
    (out / CARD).write_text(json.dumps(card, indent=2))
    return card


def run(cfg: PipelineConfig, run_dir: str, *, plan: dict[str, Any] | None = None,
        progress_every_s: float = PROGRESS_EVERY_S) -> dict[str, Any]:
    """Fine-tune on ``plan`` (default: :func:`preflight`'s), export ``RUN_DIR/finetune_lm/model``; returns a
    summary. Call inside :func:`jobs.ray_session.ray_session`."""
    f = _cfg(cfg)
    plan = plan or preflight(cfg)
    with stage_output(run_dir, STAGE, config=f, inputs=[f.corpus, plan["model_dir"]], seed=plan["seed"]) as w:
        fitted = fit(cfg, run_dir, plan, progress_every_s=progress_every_s)
        if isinstance(w.fs, pafs.LocalFileSystem):
            card = _export(plan, fitted, f, Path(w.path) / "model")
        else:  # object store: export locally, then copy into the stage's temp folder
            with tempfile.TemporaryDirectory() as tmp:
                card = _export(plan, fitted, f, Path(tmp) / "model")
                pafs.copy_files(str(Path(tmp) / "model"), w.sub("model"),
                                source_filesystem=pafs.LocalFileSystem(), destination_filesystem=w.fs)
        summary = {"run_name": fitted["run_name"], "steps": card["steps"], "loss_before": card["loss_before"],
                   "loss_after": card["loss_after"], "fit_seconds": round(fitted["fit_seconds"], 1)}
        w.manifest.update({"rows": plan["counts"], "finetune_lm": summary})
    _say(f"done: model in {join(run_dir, STAGE, 'model')}")
    return {**summary, "model_dir": stage_path(run_dir, STAGE, "model")}


def main(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    """CLI entry: preflight (the corpus built, before Ray starts), then a Ray session with the
    dashboard (Train V2 queries its state API)."""
    from jobs.ray_session import ray_session

    plan = preflight(cfg)
    with ray_session(cfg.ray, dashboard=True):
        run(cfg, args.run_dir, plan=plan)
    return 0
