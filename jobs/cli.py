"""`debias <command>`: one entry point, locally (embedded Ray) and under `ray job submit`.

    debias preprocess --config configs/demo.yaml --run-dir runs/demo [--set a.b=c ...]
    debias train      ...  [--resume]
    debias evaluate   ...  [--gate "bnsp_auc.min>=0.9" ...] [--compare MODEL_A MODEL_B]
    debias export     ...  --optimize {int8,onnx,onnx-int8} [--model SRC] [--out DIR] [--no-parity]
    debias report     --run-dir OUT RUN_A [RUN_B ...]
    debias pipeline   ...  (preprocess, train, evaluate, report)
    debias serve      ...
    debias sweep      ...  (train.sweep_terms x train.sweep_weights -> RUN_DIR/sweep/pareto.*)
    debias audit-lm   ...  [--gate ...]  (generative LM: CrowS-Pairs, StereoSet, BBQ, counterfactual)
    debias finetune-lm ... (counterfactual data augmentation fine-tuning of a causal LM on Ray Train)
    debias demo-data  --out FILE [--rows N]
    debias config     --defaults | --schema | --reference   (the config's keys, from its models)
    debias --version

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


def _parser() -> argparse.ArgumentParser:
    from debias import __version__

    p = argparse.ArgumentParser(prog="debias", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action="version", version=f"debias {__version__}")
    p.add_argument("--verbose", action="store_true",
                   help="keep Ray's own log lines (core worker messages) in the output")
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
        if name == "sweep":
            sp.add_argument("--x", default="val_auc", help="accuracy metric to maximise")
            sp.add_argument("--y", default="val_eo_difference", help="fairness gap to minimise")
        if name in ("evaluate", "pipeline"):
            sp.add_argument("--gate", action="append", default=[], metavar="EXPR",
                            help='fail (exit 1) unless the metric condition holds, e.g. "bnsp_auc.min>=0.9"')
        if name == "evaluate":
            sp.add_argument("--compare", nargs=2, metavar=("MODEL_A", "MODEL_B"), default=None,
                            help="fairness parity of model B against model A on the suites "
                                 "(RUN_DIR/compare/metrics.json; exit 1 when a bias metric gets worse)")
    sp = sub.add_parser("export", help="an optimised copy of a model (int8, ONNX) with a parity check")
    common(sp)
    sp.add_argument("--optimize", required=True, choices=["int8", "onnx", "onnx-int8"])
    sp.add_argument("--model", default=None, help="source model dir (default: evaluate.model or RUN_DIR/train/model)")
    sp.add_argument("--out", default=None, help="output dir (default: RUN_DIR/export/<method>)")
    sp.add_argument("--no-parity", action="store_true", help="skip the fairness parity check")
    sp.add_argument("--overwrite", action="store_true", help="replace a non-empty output dir")
    sp = sub.add_parser("audit-lm", help="bias audit of a generative LM (CrowS-Pairs, StereoSet, BBQ, counterfactual)")
    common(sp)
    sp.add_argument("--gate", action="append", default=[], metavar="EXPR",
                    help='fail (exit 1) unless the condition holds, e.g. "crows_pairs:stereotype_deviation<=10"')
    sp = sub.add_parser("finetune-lm", help="counterfactual data augmentation fine-tuning of a causal LM")
    common(sp)
    sp = sub.add_parser("report", help="write the HTML report for one or more runs")
    common(sp)
    sp.add_argument("runs", nargs="*", help="run directories to compare (default: --run-dir)")
    sp = sub.add_parser("config", help="print the default config, its JSON schema or a Markdown reference")
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--defaults", action="store_true", help="every key with its default, as YAML")
    what.add_argument("--schema", action="store_true", help="the JSON schema (for editors and validators)")
    what.add_argument("--reference", action="store_true", help="a Markdown table per section (docs/CONFIG.md)")
    sp = sub.add_parser("demo-data", help="write the synthetic demo corpus")
    sp.add_argument("--out", required=True)
    sp.add_argument("--rows", type=int, default=20000)
    sp.add_argument("--seed", type=int, default=0)
    return p


NO_CONFIG = ("no --config given. Commands that read a corpus or train run from a config file; to try the "
             "project, run `make demo` (or `debias pipeline --config configs/demo.yaml --run-dir runs/demo`), "
             "and see `debias config --defaults` for every key")


def _load(args: argparse.Namespace) -> PipelineConfig:
    base: dict[str, Any] | None = None
    if not args.config:
        # report, export, serve, audit-lm (its model by --set) and evaluate --compare read no corpus
        if not (args.command in ("report", "export", "serve", "audit-lm", "finetune-lm")
                or getattr(args, "compare", None)):
            raise ConfigError(NO_CONFIG)
        base = {"data": {"path": f"unused-by-{args.command}"}}
    return load_config(args.config, args.overrides, base=base)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verbose:
        os.environ["DEBIAS_VERBOSE"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if args.command == "demo-data":
            from debias.corpus.demo import write_demo_corpus

            write_demo_corpus(Path(args.out), n_rows=args.rows, seed=args.seed)
            print(args.out)
            return 0
        if args.command == "config":
            from debias import config_docs

            print(config_docs.defaults_yaml() if args.defaults else
                  config_docs.schema_json() if args.schema else config_docs.reference_markdown(), end="")
            return 0
        cfg = _load(args)
        return _dispatch(args, cfg)
    except (ConfigError, ValueError, FileNotFoundError, ImportError) as e:  # ImportError: a missing extra
        print(f"debias {args.command}: error: {e}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    from jobs import pipeline

    if args.command == "serve":
        from jobs import serve

        serve.run(cfg, args.run_dir, blocking=True)
        return 0
    if args.command == "audit-lm":
        from jobs import audit_lm

        return audit_lm.main(args, cfg)
    if args.command == "finetune-lm":
        from jobs import finetune_lm

        return finetune_lm.main(args, cfg)
    if args.command == "report":  # reads files only: no Ray needed
        from jobs import report

        print(f"\nReport: {report.run(cfg, args.runs or [args.run_dir], out_run_dir=args.run_dir)}")
        return 0
    if args.command == "export" or getattr(args, "compare", None) is not None:
        from jobs import compare

        return compare.main(cfg, args.run_dir, compare=getattr(args, "compare", None),
                            method=getattr(args, "optimize", None), source=getattr(args, "model", None),
                            out=getattr(args, "out", None), parity=not getattr(args, "no_parity", False),
                            overwrite=getattr(args, "overwrite", False))
    gates = getattr(args, "gate", [])
    cfg = pipeline.preflight(args.command, cfg, args.run_dir, gates=gates)
    return pipeline.run(args.command, cfg, args.run_dir, gates=gates, resume=getattr(args, "resume", False),
                        sweep_axes=(getattr(args, "x", "val_auc"), getattr(args, "y", "val_eo_difference")))


if __name__ == "__main__":
    sys.exit(main())
