"""`debias train`: fairness-regularised fine-tuning on Ray Train (V2 TorchTrainer, DDP).

1. Preflight on the driver (no cluster work): the model dir, the preprocess splits, their
   columns, the loss terms (validated against the groups present).
2. Ray Data reads ``RUN_DIR/preprocess/{train,val}``, attaches counterfactual partners when
   counterfactual logit pairing is on, tokenises (unpadded) and materialises once, before the
   workers take every CPU. Each worker gets an equal streaming shard of train; it cuts windows
   of ``bucket_window`` batches, sorts each window by length and pads every batch only to its
   own longest row (:func:`debias.training.data.bucket_batches`).
3. ``train_loop_per_worker``: the model, losses and the epoch of steps from ``debias``
   (``debias.training.module`` and ``step``); DDP via
   ``prepare_model`` (gloo on CPU, nccl + bf16 autocast on GPU); group statistics in the
   penalties are all-reduced inside the loss. Rank 0 validates after each epoch and
   checkpoints (weights as safetensors, optimiser, scheduler, DRO weights, early stopping);
   ``FailureConfig`` restarts a failed worker group from the last checkpoint.
4. The best checkpoint by the validation objective is exported to ``RUN_DIR/train/model/``
   (HF format + ``model_card.json``) inside the atomically renamed stage folder.

Checkpoints live in ``RUN_DIR/train_checkpoints/<run name>/``; every run gets a unique name,
so a fresh run never picks up an old one; ``--resume`` continues the latest run on purpose.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from debias.config import PipelineConfig, TrainConfig
from debias.runs import join, resolve_fs, stage_output, stage_path

log = logging.getLogger("debias.train")
CHECKPOINT_DIR = "train_checkpoints"
LATEST = "LATEST"  # file in CHECKPOINT_DIR naming the most recent finished run
RUN_CONFIG = ".config.json"  # CHECKPOINT_DIR/<run>.config.json: what a --resume must not change
# The training settings a resumed run must share with its checkpoints: a different model, loss,
# global batch or tokenisation would silently continue another experiment.
RESUME_KEYS = ("model", "losses", "batch_size", "num_workers", "max_length", "padding")
PROGRESS_EVERY_S = 60.0  # within-epoch progress lines from rank 0: about one a minute


def train_seed(cfg: PipelineConfig) -> int:
    """``train.seed`` when set, else the run's seed."""
    return cfg.train.seed if cfg.train.seed is not None else cfg.seed


def _say(msg: str) -> None:
    """One progress line. Written to the process's own stdout (``sys.__stdout__``): in a Ray
    Train worker ``sys.stdout`` is wrapped so that each print reaches the driver twice."""
    print(f"[debias train] {msg}", file=sys.__stdout__ or sys.stdout, flush=True)


# ---------------------------------------------------------------- preflight (driver, no Ray)


def _split_columns(path: str) -> tuple[list[str], int]:
    import pyarrow.dataset as pds

    fs, p = resolve_fs(path)
    from pyarrow import fs as pafs

    if fs.get_file_info(p).type == pafs.FileType.NotFound:
        raise ValueError(f"training input {path} not found; run `debias preprocess` first")
    dataset = pds.dataset(p, filesystem=fs, format="parquet")
    return list(dataset.schema.names), int(dataset.count_rows())


def preflight(cfg: PipelineConfig, run_dir: str) -> dict[str, Any]:
    """Check everything a run needs before any cluster work; return the plan."""
    from debias.schema import membership_columns
    from debias.training.losses import FairnessObjective
    from debias.training.model import check_model_dir, default_model_dir
    from debias.training.selection import VAL_METRICS, parse_objective

    tc = cfg.train
    model_dir = str(check_model_dir(tc.model or default_model_dir()))
    train_path = stage_path(run_dir, "preprocess", "train")
    val_path = stage_path(run_dir, "preprocess", "val")
    cols, n_train = _split_columns(train_path)
    need = {"text", "label"}
    missing = need - set(cols)
    if missing:
        raise ValueError(f"{train_path} lacks columns {sorted(missing)}; columns present: {', '.join(cols)}")
    if n_train == 0:
        raise ValueError(f"{train_path} has no rows; nothing to train on")
    group_cols = membership_columns(cols)
    objective = FairnessObjective(tc.losses, n_groups=len(group_cols))  # validates the terms
    if objective.needs_counterfactuals and not {"id", "pair_id", "is_augmented"} <= set(cols):
        raise ValueError("counterfactual_logit_pairing needs id, pair_id and is_augmented columns "
                         "(augment.mode=pairs or append); found: " + ", ".join(cols))
    parse_objective(tc.selection_metric, known=VAL_METRICS)  # a typo fails now, not after epoch 1
    try:
        val_cols, n_val = _split_columns(val_path)
    except ValueError:
        val_cols, n_val = [], 0
    if n_val == 0:
        if not tc.allow_no_val:
            raise ValueError(f"no validation rows at {val_path}: the best checkpoint and the selection metric "
                             f"{tc.selection_metric!r} need them. Give split.val a fraction above 0 and rerun "
                             "`debias preprocess`, or set train.allow_no_val=true to select by training loss")
        log.warning("no val split at %s: train.allow_no_val is set, so the best checkpoint is the one of "
                    "lowest training loss (selection_metric %r is not used)", val_path, tc.selection_metric)
    if tc.padding == "fixed" and tc.bucket_window != 1:
        log.info("fixed padding: length bucketing is off")
    read_cols = [c for c in ["id", "text", "text_pair", "label", "sample_weight", "pair_id", "is_augmented",
                             *group_cols] if c in cols]
    return {"model_dir": model_dir, "train_path": train_path, "val_path": val_path,
            "n_train": n_train, "n_val": n_val, "group_cols": group_cols, "read_cols": read_cols,
            "val_cols": [c for c in read_cols if c in val_cols],
            "counterfactuals": objective.needs_counterfactuals,
            "n_classes": cfg.data.n_classes, "focus": cfg.focus_id}


def steps_per_epoch(n_rows: int, *, workers: int, batch_size: int, bucket_window: int,
                    max_steps: int | None = None) -> int:
    """Optimiser steps per epoch, identical on every rank (DDP needs the same count).

    Each of ``workers`` shards holds ``n_rows // workers`` rows (equal split); a window of
    ``batch_size * bucket_window`` rows yields ``bucket_window`` batches, a last partial window
    ``ceil(rest / batch_size)``.
    """
    rows = n_rows // workers
    if rows == 0:
        raise ValueError(f"{n_rows} training rows cannot feed {workers} workers")
    win = batch_size * bucket_window
    steps = (rows // win) * bucket_window + math.ceil((rows % win) / batch_size)
    return min(steps, max_steps) if max_steps else steps


def _new_run_name(cfg: PipelineConfig) -> str:
    return f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def resume_settings(cfg: PipelineConfig, model_dir: str) -> dict[str, Any]:
    """The settings in :data:`RESUME_KEYS` (the model as its resolved folder)."""
    tc = cfg.train.model_dump(mode="json")
    return {k: (str(model_dir) if k == "model" else tc[k]) for k in RESUME_KEYS}


def _latest_started(fs: pafs.FileSystem, root: str) -> str | None:
    """The most recently started run that Ray Train got to create (newest ``<run>.config.json``
    with its run folder); ``LATEST`` for checkpoints written before those files existed."""
    sel = pafs.FileSelector(root, allow_not_found=True)
    found = [(i.mtime_ns or 0, i.base_name[:-len(RUN_CONFIG)]) for i in fs.get_file_info(sel)
             if i.type == pafs.FileType.File and i.base_name.endswith(RUN_CONFIG)]
    for _, name in sorted(found, reverse=True):
        if _exists(fs, join(root, name)):
            return name
    if _exists(fs, join(root, LATEST)):
        with fs.open_input_stream(join(root, LATEST)) as f:
            return f.read().decode().strip() or None
    return None


def check_resume(fs: pafs.FileSystem, root: str, name: str, settings: dict[str, Any]) -> None:
    """Refuse a --resume whose settings differ from those its run started with, naming each."""
    path = join(root, name + RUN_CONFIG)
    if not _exists(fs, path):
        log.warning("--resume %s: no %s beside the checkpoints (an older run); settings not checked", name, RUN_CONFIG)
        return
    with fs.open_input_stream(path) as f:
        saved = json.loads(f.read().decode())
    diff = [f"train.{k}: checkpoint {saved.get(k)!r}, config now {settings[k]!r}"
            for k in RESUME_KEYS if k in saved and saved[k] != settings[k]]
    if diff:
        raise ValueError(f"--resume {name}: the config differs from the one this run started with; "
                         + "; ".join(diff) + ". Restore those settings, or train a new run without --resume")


def write_run_config(fs: pafs.FileSystem, root: str, name: str, settings: dict[str, Any]) -> None:
    with fs.open_output_stream(join(root, name + RUN_CONFIG)) as f:
        f.write(json.dumps(settings, indent=2).encode())


def resolve_run_name(cfg: PipelineConfig, ckpt_root: str, *, resume: bool) -> str:
    """A fresh unique name; with ``resume`` the configured or latest started run, which must exist.

    ``ckpt_root`` is ``RUN_DIR/train_checkpoints`` (a local path or a filesystem URI).
    """
    tc = cfg.train
    fs, root = resolve_fs(ckpt_root)
    if resume:
        name = tc.run_name or _latest_started(fs, root)
        if not name or not _exists(fs, join(root, name)):
            raise ValueError(f"--resume: no earlier training run found in {ckpt_root}"
                             + (f" named {name!r}" if name else ""))
        return name
    if tc.run_name:
        if _exists(fs, join(root, tc.run_name)):
            raise ValueError(f"train.run_name {tc.run_name!r} already exists in {ckpt_root}; pass "
                             "--resume to continue it on purpose, or choose a new name")
        return tc.run_name
    return _new_run_name(cfg)


# ---------------------------------------------------------------- the worker loop


def _quiet_worker() -> None:
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@dataclass
class _Worker:
    """What one Ray Train worker holds from epoch to epoch."""

    tc: TrainConfig
    config: dict[str, Any]  # the train_loop_config: plan, steps_per_epoch, seed, run_name, fault
    rank: int
    world: int
    device: Any
    module: Any  # the DDP-prepared FairClassifier
    objective: Any
    optimizer: Any
    scheduler: Any
    pad_id: int
    token_types: bool
    stopper: Any
    val_df: Any = None  # rank 0 only, when there is a val split
    start_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    run_started: float = 0.0

    @property
    def plan(self) -> dict[str, Any]:
        return self.config["plan"]


def _setup_worker(config: dict[str, Any]) -> _Worker:
    """Build model + objective + optimiser on this rank, resume from Ray's checkpoint if any,
    and (rank 0) load the validation split."""
    import pandas as pd
    import ray.train
    import ray.train.torch

    from debias.training.module import build_module
    from debias.training.selection import EarlyStopping
    from debias.training.step import make_optimizer

    tc = TrainConfig.model_validate(config["train"])
    plan, steps = config["plan"], int(config["steps_per_epoch"])
    ctx = ray.train.get_context()
    device = ray.train.torch.get_device()
    # seed: identical heads on every rank (DDP also broadcasts rank 0's)
    module, objective, _, pad_id, token_types = build_module(
        plan["model_dir"], losses=tc.losses, n_groups=len(plan["group_cols"]), n_classes=plan.get("n_classes", 2),
        freeze_embeddings=tc.freeze_embeddings, freeze_layers=tc.freeze_layers, seed=int(config["seed"]))
    module = ray.train.torch.prepare_model(module)
    optimizer, scheduler = make_optimizer(module, lr=tc.lr, weight_decay=tc.weight_decay,
                                          total_steps=steps * tc.epochs, warmup_ratio=tc.warmup_ratio)
    w = _Worker(tc=tc, config=config, rank=ctx.get_world_rank(), world=ctx.get_world_size(), device=device,
                module=module, objective=objective, optimizer=optimizer, scheduler=scheduler, pad_id=pad_id,
                token_types=token_types, stopper=EarlyStopping(tc.early_stopping_patience))
    _resume(w, ray.train.get_checkpoint())
    if w.rank == 0 and plan["n_val"] > 0:
        w.val_df = pd.concat(list(ray.train.get_dataset_shard("val").iter_batches(
            batch_size=4096, batch_format="pandas")), ignore_index=True)
    w.run_started = time.time()
    return w


def _resume(w: _Worker, ckpt: Any) -> None:
    """Restore weights, optimiser, scheduler, loss state, history and early stopping."""
    from debias.training.model import unwrap
    from debias.training.state import load_training_state

    if ckpt is None:
        return
    with ckpt.as_directory() as d:
        extra = load_training_state(d, unwrap(w.module), optimizer=w.optimizer, scheduler=w.scheduler,
                                    objective=w.objective)
    w.start_epoch, w.global_step, w.history = extra["epoch"] + 1, extra["global_step"], extra["history"]
    w.stopper.load_state_dict(extra["early_stopping"])
    if w.rank == 0:
        _say(f"resumed from epoch {extra['epoch'] + 1} (step {w.global_step})")
    if extra.get("stopped"):
        w.start_epoch = w.tc.epochs


def _maybe_fail(fault: dict[str, Any] | None, *, rank: int, global_step: int) -> None:
    """Tests only: a hard worker death (as on a lost node) at ``fault``'s rank and step, once."""
    if fault and rank == fault["rank"] and global_step == fault["step"] and not os.path.exists(fault["marker"]):
        Path(fault["marker"]).write_text(str(os.getpid()))
        os._exit(1)


def _train_one_epoch(w: _Worker, epoch: int) -> dict[str, Any]:
    """This rank's shard, cut into (bucketed) batches, through :func:`debias.training.step.train_epoch`."""
    import ray.train

    from debias.training.data import iter_train_batches
    from debias.training.step import EpochProgress, train_epoch

    tc, seed, rank = w.tc, int(w.config["seed"]), w.rank
    dynamic = tc.padding == "dynamic"
    window_rows = tc.batch_size * (tc.bucket_window if dynamic else 1)
    windows = ray.train.get_dataset_shard("train").iter_batches(
        batch_size=window_rows, batch_format="pandas", local_shuffle_buffer_size=window_rows,
        local_shuffle_seed=seed * 7919 + epoch * 31 + rank)
    batches = iter_train_batches(
        windows, batch_size=tc.batch_size, dynamic=dynamic, seed=seed * 1_000_003 + epoch * 10_007 + rank * 101,
        group_cols=w.plan["group_cols"], pad_id=w.pad_id, token_type_ids=w.token_types,
        pad_to=tc.max_length if tc.padding == "fixed" else None, counterfactuals=w.plan["counterfactuals"])
    steps = int(w.config["steps_per_epoch"])
    progress = None if rank != 0 else EpochProgress(
        steps, label=f"{w.config['run_name']} epoch {epoch + 1}/{tc.epochs}", say=_say,
        every_s=PROGRESS_EVERY_S, world=w.world)
    start = w.global_step

    def on_step(done: int) -> None:
        w.global_step = start + done
        _maybe_fail(w.config.get("fault"), rank=rank, global_step=w.global_step)

    res = train_epoch(w.module, batches, w.objective, w.optimizer, w.scheduler, steps=steps, device=w.device,
                      grad_clip=tc.grad_clip, progress=progress, on_step=on_step, who=f"rank {rank}")
    return {"epoch": epoch + 1, "global_step": w.global_step, **res.means(),
            "samples_per_s": res.rows * w.world / max(res.seconds, 1e-9), "epoch_seconds": res.seconds}


def _judge_epoch(w: _Worker, epoch: int, record: dict[str, Any]) -> tuple[list[bool], Any]:
    """Rank 0: validate, score the epoch into ``record`` and decide ``[improved, stop]``; other
    ranks return ``[False, False]`` and follow rank 0's decision (:func:`_agree`)."""
    from debias.training.data import membership_matrix
    from debias.training.model import unwrap
    from debias.training.selection import epoch_score, predict_frame, validation_metrics

    if w.rank != 0:
        return [False, False], None
    tc, by_group, overall = w.tc, None, None
    if w.val_df is not None:
        focus = int(w.plan.get("focus", 1))  # K classes: the focus class against the rest
        scores = predict_frame(unwrap(w.module).model, w.val_df, pad_id=w.pad_id, token_type_ids=w.token_types,
                               batch_size=max(tc.batch_size, 64), device=w.device, focus=focus)
        y_val = w.val_df["label"].to_numpy()
        overall, by_group = validation_metrics(
            (y_val == focus).astype(int), scores, membership_matrix(w.val_df, w.plan["group_cols"]),
            w.plan["group_cols"], threshold=tc.val_threshold, min_group_size=tc.val_min_group_size)
        record.update(overall)
    record["selection_score"] = epoch_score(overall, objective=tc.selection_metric,
                                            train_loss=record.get("train_loss", 0.0))
    decision = list(w.stopper.update(record["selection_score"], epoch + 1))
    record["best_epoch"] = w.stopper.best_epoch_
    _say_epoch(w, epoch, record)
    return decision, by_group


def _say_epoch(w: _Worker, epoch: int, record: dict[str, Any]) -> None:
    from debias.training.step import fmt_eta

    tc = w.tc
    eta = (time.time() - w.run_started) / (epoch + 1 - w.start_epoch) * (tc.epochs - epoch - 1)
    terms = " ".join(f"{k[6:]}={v:.4f}" for k, v in record.items() if k.startswith("train_"))
    val = " ".join(f"{k}={record[k]:.4f}" for k in ("val_auc", "val_accuracy", "val_eo_difference") if k in record)
    _say(f"{w.config['run_name']} epoch {epoch + 1}/{tc.epochs} step {w.global_step} | {terms} | "
         f"{val} score={record['selection_score']:.4f} | {record['samples_per_s']:.1f} samples/s | "
         f"ETA {fmt_eta(eta)}")


def _agree(w: _Worker, record: dict[str, Any], decision: list[bool]) -> tuple[dict[str, Any], bool]:
    """Rank 0's record and early-stopping decision on every rank; returns ``(record, stop)``."""
    if w.world > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(decision, src=0)  # identical early-stopping decision everywhere
        holder = [record]
        dist.broadcast_object_list(holder, src=0)
        record = holder[0]
    return record, bool(decision[1])


def _checkpoint_and_report(w: _Worker, epoch: int, record: dict[str, Any], by_group: Any, *, stop: bool) -> None:
    """Rank 0 saves the state (and the per-group table) as the epoch's checkpoint; all report."""
    import ray.train

    from debias.training.model import unwrap
    from debias.training.state import save_training_state

    if w.rank != 0:
        ray.train.report(_reportable(record))
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_training_state(tmp, unwrap(w.module), optimizer=w.optimizer, scheduler=w.scheduler,
                            objective=w.objective,
                            extra={"epoch": epoch, "global_step": w.global_step, "history": w.history,
                                   "early_stopping": w.stopper.state_dict(), "stopped": bool(stop)})
        if by_group is not None:
            (Path(tmp) / "val_by_group.json").write_text(by_group.to_json(orient="records"))
        ray.train.report(_reportable(record), checkpoint=ray.train.Checkpoint.from_directory(tmp))


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker: build, (resume), then per epoch train, judge on rank 0, agree, checkpoint."""
    _quiet_worker()
    w = _setup_worker(config)
    for epoch in range(w.start_epoch, w.tc.epochs):
        record = _train_one_epoch(w, epoch)
        decision, by_group = _judge_epoch(w, epoch, record)
        record, stop = _agree(w, record, decision)
        w.history.append(record)
        _checkpoint_and_report(w, epoch, record, by_group, stop=stop)
        if stop and epoch + 1 != w.tc.epochs:  # the last epoch ends the run anyway
            if w.rank == 0:
                _say(f"early stopping after epoch {epoch + 1}; best epoch {w.stopper.best_epoch_}")
            break


def _reportable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in record.items()}


# ---------------------------------------------------------------- the job


def tokenize_batch(batch, *, model_dir: str, max_length: int):
    """Ray Data task: :class:`debias.training.data.Tokenize` with the tokenizer cached per process."""
    return _tokenizer(model_dir, max_length)(batch)


@functools.lru_cache(maxsize=4)
def _tokenizer(model_dir: str, max_length: int):
    from debias.training.data import Tokenize

    return Tokenize(model_dir, max_length=max_length)


def _datasets(plan: dict[str, Any], tc: TrainConfig, seed: int):
    import pyarrow.parquet as pq
    import ray.data

    from debias.training.data import add_partner_text, partner_texts

    fs, train_p = resolve_fs(plan["train_path"])
    tok_kwargs = {"model_dir": plan["model_dir"], "max_length": tc.max_length}
    train = ray.data.read_parquet(train_p, filesystem=fs, columns=plan["read_cols"])
    if plan["counterfactuals"]:
        # The pair table is small (paired rows only); the partner texts travel with the tasks.
        second = [c for c in ["text_pair"] if c in plan["read_cols"]]
        pairs = pq.read_table(train_p, filesystem=fs, columns=["id", "pair_id", "text", *second, "is_augmented"]
                              ).to_pandas()
        train = train.map_batches(add_partner_text, batch_format="pandas", fn_kwargs={
            "partners": partner_texts(pairs),
            "pair_partners": partner_texts(pairs, text_col="text_pair") if second else None})
    # One global shuffle (seeded, though Ray Data does not promise the same order on a rerun):
    # the preprocess output is in file order (a supplement corpus or
    # the appended counterfactual rows come last), and the workers' local shuffle only mixes
    # within a window, so a run that stops early (max_steps_per_epoch) would never see the tail.
    # Per epoch the workers' local shuffle then reorders within windows.
    if tc.shuffle == "global":
        train = train.random_shuffle(seed=seed)
    # Materialised before fit(): the workers then hold every CPU, and a plan still running at
    # that point would wait for one.
    train = train.map_batches(tokenize_batch, fn_kwargs=tok_kwargs, batch_format="pandas").materialize()
    datasets = {"train": train}
    if plan["n_val"] > 0:
        fs_v, val_p = resolve_fs(plan["val_path"])
        val = ray.data.read_parquet(val_p, filesystem=fs_v, columns=plan["val_cols"])
        datasets["val"] = val.map_batches(tokenize_batch, fn_kwargs=tok_kwargs,
                                          batch_format="pandas").materialize()
    return datasets


def fit(cfg: PipelineConfig, run_dir: str, *, resume: bool = False,
        fault: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run Ray Train and return ``{"result", "run_name", "plan", "steps_per_epoch", ...}``.

    ``fault`` (tests only): ``{"rank", "step", "marker"}`` makes that rank's process exit hard
    at that global step once (the marker file records that it happened).
    """
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from jobs.ray_session import quiet_ray_data

    tc = cfg.train
    plan = preflight(cfg, run_dir)
    fs, base = resolve_fs(run_dir)
    # Checkpoints beside the stages: on an object store Ray Train gets the filesystem itself
    # (the run dir's URI query, an endpoint or region, does not survive a path join).
    ckpt_root = stage_path(run_dir, CHECKPOINT_DIR)
    local = isinstance(fs, pafs.LocalFileSystem)
    fs.create_dir(join(base, CHECKPOINT_DIR), recursive=True)
    run_name = resolve_run_name(cfg, ckpt_root, resume=resume)
    settings = resume_settings(cfg, plan["model_dir"])
    if resume:
        check_resume(fs, join(base, CHECKPOINT_DIR), run_name, settings)
    else:
        write_run_config(fs, join(base, CHECKPOINT_DIR), run_name, settings)
    quiet_ray_data()
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    t0 = time.time()
    datasets = _datasets(plan, tc, train_seed(cfg))
    n_train = datasets["train"].count()
    steps = steps_per_epoch(n_train, workers=tc.num_workers, batch_size=tc.batch_size,
                            bucket_window=tc.bucket_window if tc.padding == "dynamic" else 1,
                            max_steps=tc.max_steps_per_epoch)
    prep_seconds = time.time() - t0
    _say(f"run {run_name}: {n_train:,} train rows, {plan['n_val']:,} val rows, {len(plan['group_cols'])} "
         f"groups, {tc.num_workers} worker(s), {steps} steps/epoch x {tc.epochs} epochs; "
         f"tokenised in {prep_seconds:.1f}s")
    resources = {"CPU": tc.cpus_per_worker}
    if tc.use_gpu:
        resources["GPU"] = 1
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"train": tc.model_dump(), "plan": plan, "steps_per_epoch": steps,
                           "seed": train_seed(cfg), "run_name": run_name, "fault": fault},
        scaling_config=ScalingConfig(num_workers=tc.num_workers, use_gpu=tc.use_gpu,
                                     resources_per_worker=resources),
        run_config=RunConfig(
            name=run_name, storage_path=ckpt_root if local else join(base, CHECKPOINT_DIR),
            storage_filesystem=None if local else fs,
            failure_config=FailureConfig(max_failures=tc.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=tc.checkpoints_to_keep,
                                               checkpoint_score_attribute="selection_score",
                                               checkpoint_score_order="max"),
        ),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result = trainer.fit()
    with fs.open_output_stream(join(base, CHECKPOINT_DIR, LATEST)) as f:  # only once the fit has finished
        f.write(run_name.encode())
    return {"result": result, "run_name": run_name, "plan": plan, "steps_per_epoch": steps,
            "n_train": n_train, "prep_seconds": prep_seconds, "fit_seconds": time.time() - t0 - prep_seconds,
            "checkpoint_root": stage_path(run_dir, CHECKPOINT_DIR, run_name)}


def _best_checkpoint(result) -> Any:
    from debias.training.selection import best_checkpoint

    best = best_checkpoint(result.best_checkpoints or [])
    if best is None:
        if result.checkpoint is None:
            raise RuntimeError("training produced no checkpoint")
        return result.checkpoint
    return best


def export_best(cfg: PipelineConfig, fitted: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Load the best checkpoint on the driver and export the classifier with its model card."""
    import pandas as pd

    from debias.training.model import export_model
    from debias.training.module import build_module
    from debias.training.state import load_training_state, read_training_extra

    tc, plan = cfg.train, fitted["plan"]
    result = fitted["result"]
    ckpt = _best_checkpoint(result)
    with result.checkpoint.as_directory() as d:  # the latest holds the whole history
        history = read_training_extra(d)["history"]
    built = build_module(plan["model_dir"], losses=tc.losses, n_groups=len(plan["group_cols"]),
                         n_classes=plan.get("n_classes", 2), freeze_embeddings=tc.freeze_embeddings, freeze_layers=tc.freeze_layers)
    module, model, tok = built.module, built.module.model, built.tokenizer
    with ckpt.as_directory() as d:
        extra = load_training_state(d, module)
        by_group_path = Path(d) / "val_by_group.json"
        by_group = json.loads(by_group_path.read_text()) if by_group_path.is_file() else []
    best = extra["history"][-1]
    card = {
        # relative paths only: the folder travels (export, serve, a hub upload) without its run
        "base_model": Path(plan["model_dir"]).name,
        "task": ("binary sequence classification (label 1 = positive class)" if cfg.data.n_classes == 2 else
                 f"{cfg.data.n_classes}-class sequence classification"),
        "focus_class": cfg.data.class_names[cfg.focus_id],
        "class_names": list(cfg.data.class_names),
        "max_length": tc.max_length,
        "data": {"train": "preprocess/train", "val": "preprocess/val", "train_rows": fitted["n_train"],
                 "val_rows": plan["n_val"], "groups": [g[2:] for g in plan["group_cols"]]},
        "losses": [t.model_dump() for t in tc.losses],
        "config": {**tc.model_dump(), "model": Path(tc.model).name if tc.model else None},
        "seed": train_seed(cfg),
        "run_name": fitted["run_name"],
        "epoch": best["epoch"],
        "global_step": best["global_step"],
        "selection_metric": tc.selection_metric if plan["n_val"] else "train_loss (no val split: train.allow_no_val)",
        "validation": {k: v for k, v in best.items() if k.startswith("val_")},
        "validation_by_group": by_group,
        "history": history,
    }
    export_model(model, tok, out_dir, card=card)
    return {"card": card, "history": history, "by_group": pd.DataFrame(by_group)}


def run(cfg: PipelineConfig, run_dir: str, *, resume: bool = False,
        fault: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, pick the best epoch on the validation objective, export ``RUN_DIR/train/``.

    Call inside :func:`jobs.ray_session.ray_session`. Returns a summary dict (run name, best
    epoch, validation metrics, steps, timings).
    """
    from jobs.storage import check_run_dir_shared

    check_run_dir_shared(run_dir)
    inputs = [stage_path(run_dir, "preprocess", "train"), stage_path(run_dir, "preprocess", "val")]
    with stage_output(run_dir, "train", config=cfg, inputs=inputs, seed=train_seed(cfg)) as w:
        fitted = fit(cfg, run_dir, resume=resume, fault=fault)
        if isinstance(w.fs, pafs.LocalFileSystem):
            exported = export_best(cfg, fitted, Path(w.path) / "model")
        else:  # object store: export locally, then copy into the stage's temp folder
            with tempfile.TemporaryDirectory() as tmp:
                exported = export_best(cfg, fitted, Path(tmp) / "model")
                pafs.copy_files(str(Path(tmp) / "model"), w.sub("model"),
                                source_filesystem=pafs.LocalFileSystem(), destination_filesystem=w.fs)
        w.write_json("history.json", exported["history"])
        card = exported["card"]
        summary = {
            "run_name": fitted["run_name"],
            "checkpoints": fitted["checkpoint_root"],
            "best_epoch": card["epoch"],
            "global_step": card["history"][-1]["global_step"],  # steps run, not the best epoch's
            "epochs_run": len(card["history"]),
            "steps_per_epoch": fitted["steps_per_epoch"],
            "validation": card["validation"],
            "timings_seconds": {"tokenise": round(fitted["prep_seconds"], 2),
                                "fit": round(fitted["fit_seconds"], 2)},
        }
        w.manifest.update({"train": summary, "rows": {"train": fitted["n_train"], "val": fitted["plan"]["n_val"]}})
    _say(f"done: model in {join(run_dir, 'train', 'model')} (best epoch {card['epoch']})")
    return {**summary, "model_dir": stage_path(run_dir, "train", "model")}
