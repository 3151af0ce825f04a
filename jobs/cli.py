"""`debias <command>`: one entry point, locally (embedded Ray) and under `ray job submit`.

    debias preprocess --config configs/demo.yaml --run-dir runs/demo [--set a.b=c ...]
    debias train      ...  [--resume]
    debias evaluate   ...  [--gate "bnsp_auc.min>=0.9" ...]
    debias report     --run-dir OUT RUN_A [RUN_B ...]
    debias pipeline   ...  (preprocess, train, evaluate, report)
    debias serve      ...
    debias sweep      ...  (train.sweep_terms x train.sweep_weights -> RUN_DIR/sweep/pareto.*)
    debias demo-data  --out FILE [--rows N]

The config is validated, and the input checked, before Ray starts: a bad key, value, path or
column fails in a second with a message that names it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from debias.config import ConfigError, PipelineConfig, load_config

DEMO_PREFIX = "demo:"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="debias", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", help="YAML config file")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=2 (repeatable)")
        sp.add_argument("--run-dir", default=os.environ.get("DEBIAS_RUN_DIR", "runs/default"),
                        help="run directory: local path or filesystem URI (s3://...)")

    for name, help_ in [("preprocess", "clean, annotate, audit, balance, augment, split"),
                        ("train", "fine-tune with fairness-regularised losses on Ray Train"),
                        ("evaluate", "batch inference and fairness metrics on every suite"),
                        ("pipeline", "preprocess, train, evaluate and report in order"),
                        ("serve", "serve the model on Ray Serve"),
                        ("sweep", "Ray Train runs over fairness weights; writes the Pareto front")]:
        sp = sub.add_parser(name, help=help_)
        common(sp)
        if name in ("train", "pipeline"):
            sp.add_argument("--resume", action="store_true", help="resume the latest training run on purpose")
        if name in ("evaluate", "pipeline"):
            sp.add_argument("--gate", action="append", default=[], metavar="EXPR",
                            help='fail (exit 1) unless the metric condition holds, e.g. "bnsp_auc.min>=0.9"')
    sp = sub.add_parser("report", help="write the HTML report for one or more runs")
    common(sp)
    sp.add_argument("runs", nargs="*", help="run directories to compare (default: --run-dir)")
    sp = sub.add_parser("demo-data", help="write the synthetic demo corpus")
    sp.add_argument("--out", required=True)
    sp.add_argument("--rows", type=int, default=20000)
    sp.add_argument("--seed", type=int, default=0)
    return p


def materialise_demo_data(cfg: PipelineConfig, run_dir: str) -> PipelineConfig:
    """``data.path: demo:N`` generates the project's synthetic corpus into the run directory."""
    if not cfg.data.path.startswith(DEMO_PREFIX):
        return cfg
    from debias.corpus.demo import write_demo_corpus

    n = int(cfg.data.path[len(DEMO_PREFIX):] or 20000)
    out = Path(run_dir) / "data" / f"demo-{n}-seed{cfg.seed}.parquet"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        write_demo_corpus(out, n_rows=n, seed=cfg.seed)
        print(f"[debias] wrote the demo corpus ({n:,} rows) to {out}", file=sys.stderr)
    cfg.data.path = str(out)
    return cfg


def _load(args: argparse.Namespace) -> PipelineConfig:
    base: dict[str, Any] | None = None
    if not args.config:
        base = {"data": {"path": "demo:20000", "text_col": "text", "label_col": "toxic", "id_col": "id"}}
    return load_config(args.config, args.overrides, base=base)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if args.command == "demo-data":
            from debias.corpus.demo import write_demo_corpus

            write_demo_corpus(Path(args.out), n_rows=args.rows, seed=args.seed)
            print(args.out)
            return 0
        cfg = _load(args)
        return _dispatch(args, cfg)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"debias {args.command}: error: {e}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    from jobs.ray_session import ray_session

    run_dir = args.run_dir
    cmd = args.command
    if cmd in ("preprocess", "pipeline"):
        cfg = materialise_demo_data(cfg, run_dir)
        from jobs import preprocess

        preprocess.preflight(cfg)  # before Ray starts
    # What can fail without a cluster fails before Ray starts.
    if cmd == "train":
        from jobs import train

        train.preflight(cfg, run_dir)
    if cmd == "evaluate":
        from jobs import evaluate

        evaluate.preflight(cfg, run_dir, gates=args.gate)
    if cmd == "pipeline":
        from debias.evaluation.gates import parse_gates

        parse_gates([*cfg.evaluate.gates, *args.gate], suites=[s.name for s in cfg.evaluate.suites])
    if cmd == "serve":
        from serve import app

        app.run(cfg, run_dir, blocking=True)
        return 0
    if cmd == "report":  # reads files only: no Ray needed
        from jobs import report

        path = report.run(cfg, args.runs or [run_dir], out_run_dir=run_dir)
        print(f"\nReport: {path}")
        return 0
    with ray_session(cfg.ray, dashboard=cmd in ("train", "sweep", "pipeline")):
        if cmd in ("preprocess", "pipeline"):
            from jobs import preprocess

            preprocess.run(cfg, run_dir)
        if cmd == "sweep":
            from jobs import sweep

            sweep.run(cfg, run_dir)
        if cmd in ("train", "pipeline"):
            from jobs import train

            train.run(cfg, run_dir, resume=getattr(args, "resume", False))
        failed: list[dict[str, Any]] = []
        if cmd in ("evaluate", "pipeline"):
            from jobs import evaluate

            manifest = evaluate.run(cfg, run_dir, gates=args.gate)
            failed = [g for g in manifest.get("gates", []) if not g.get("passed")]
        if cmd == "pipeline":
            from jobs import report

            path = report.run(cfg, [run_dir], out_run_dir=run_dir)
            print(f"\nReport: {path}")
        if failed:
            for g in failed:
                print(f"gate FAILED: {g.get('expr')} (value {g.get('value')})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
