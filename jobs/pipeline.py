"""The order of the pipeline: what each command checks before Ray starts, and which stages it runs.

    preprocess -> train -> evaluate -> report        (``debias pipeline``)

Each stage reads the previous stage's output folder under the run directory and writes its own
(see docs/ARCHITECTURE.md). Everything that can fail without a cluster (config, input, model dir,
gates) fails in :func:`preflight`, before :func:`run` starts or joins Ray.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from debias.config import PipelineConfig

DEMO_PREFIX = "demo:"

STAGES = {  # command -> the stages it runs, in order
    "preprocess": ("preprocess",),
    "train": ("train",),
    "evaluate": ("evaluate",),
    "sweep": ("sweep",),
    "pipeline": ("preprocess", "train", "evaluate", "report"),
}


def materialise_demo_data(cfg: PipelineConfig, run_dir: str) -> PipelineConfig:
    """``data.path: demo:N`` generates the project's synthetic corpus into the run directory."""
    if not cfg.data.path.startswith(DEMO_PREFIX):
        return cfg
    from debias.corpus.demo import write_demo_corpus

    n = int(cfg.data.path[len(DEMO_PREFIX):] or 20000)
    name = f"demo-{n}-seed{cfg.seed}.parquet"
    if "://" in str(run_dir):  # an object-store run: generate locally, then put it beside the stages
        import tempfile

        import pyarrow.fs as pafs

        from debias.runs import resolve_fs, stage_path

        uri = stage_path(run_dir, "data", name)
        fs, path = resolve_fs(uri)
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            with tempfile.TemporaryDirectory() as tmp:
                write_demo_corpus(Path(tmp) / name, n_rows=n, seed=cfg.seed)
                fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
                pafs.copy_files(str(Path(tmp) / name), path, source_filesystem=pafs.LocalFileSystem(),
                                destination_filesystem=fs)
            print(f"[debias] wrote the demo corpus ({n:,} rows) to {uri.split('?')[0]}", file=sys.stderr)
        cfg.data.path = uri
        return cfg
    out = Path(run_dir) / "data" / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        write_demo_corpus(out, n_rows=n, seed=cfg.seed)
        print(f"[debias] wrote the demo corpus ({n:,} rows) to {out}", file=sys.stderr)
    cfg.data.path = str(out)
    return cfg


def preflight(command: str, cfg: PipelineConfig, run_dir: str, *, gates: list[str]) -> PipelineConfig:
    """Check what ``command`` needs before Ray starts; returns the config with demo data resolved."""
    stages = STAGES[command]
    if "preprocess" in stages:
        cfg = materialise_demo_data(cfg, run_dir)
        from jobs import preprocess

        preprocess.preflight(cfg)
    if stages == ("train",):
        from jobs import train

        train.preflight(cfg, run_dir)
    if stages == ("evaluate",):
        from jobs import evaluate

        evaluate.preflight(cfg, run_dir, gates=gates)
    if command == "pipeline":  # later stages' inputs do not exist yet: check what can be checked
        from debias.evaluation.gates import parse_gates

        parse_gates([*cfg.evaluate.gates, *gates], suites=[s.name for s in cfg.evaluate.suites])
    return cfg


def run(command: str, cfg: PipelineConfig, run_dir: str, *, gates: list[str], resume: bool = False,
        sweep_axes: tuple[str, str] = ("val_auc", "val_eo_difference")) -> int:
    """Run ``command``'s stages on one Ray session; 1 if a gate failed, else 0."""
    from jobs.ray_session import ray_session

    stages = STAGES[command]
    failed: list[dict[str, Any]] = []
    with ray_session(cfg.ray, dashboard=command in ("train", "sweep", "pipeline")):
        for stage in stages:
            if stage == "preprocess":
                from jobs import preprocess

                preprocess.run(cfg, run_dir)
            elif stage == "sweep":
                from jobs import sweep

                sweep.run(cfg, run_dir, x=sweep_axes[0], y=sweep_axes[1])
            elif stage == "train":
                from jobs import train

                train.run(cfg, run_dir, resume=resume)
            elif stage == "evaluate":
                from jobs import evaluate

                manifest = evaluate.run(cfg, run_dir, gates=gates)
                failed = [g for g in manifest.get("gates", []) if not g.get("passed")]
            elif stage == "report":
                from jobs import report

                print(f"\nReport: {report.run(cfg, [run_dir], out_run_dir=run_dir)}")
    for g in failed:
        print(f"gate FAILED: {g.get('expr')} (value {g.get('value')})", file=sys.stderr)
    return 1 if failed else 0
