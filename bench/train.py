"""Training throughput, side by side in one run on the same data and model.

    .venv/bin/python bench/train.py                       # MiniLM, Davidson tweets, all parts
    .venv/bin/python bench/train.py --parts losses padding --steps 6 --rows 384

1. losses:  samples/s of plain cross-entropy vs cross-entropy plus each fairness term
            (one process, torch threads = --threads). Target: penalty terms at most +5% time;
            counterfactual logit pairing at most the cost of its extra forward pass (every
            row here gets a partner, the worst case: about 2x the rows through the encoder).
2. padding: dynamic padding with length bucketing vs fixed max_length=128 padding (CE only).
            Target: at least 2x on real tweets.
3. workers: 1 worker x 2 CPUs vs 2 workers x 1 CPU (gloo DDP) through jobs.train on a local
            Ray; samples/s as reported by the training loop (fit()'s fixed cost excluded).

Data: ../shared/data/davidson-hate-offensive (label 1 = hate or offensive), identity groups
from the project's lexicon, counterfactual partners from its gender swap list. Prints one table
and writes bench/results/train.json. Exits cleanly with a message if the data is absent.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = ROOT.parent / "shared" / "data" / "davidson-hate-offensive" / "labeled_data.csv"

LOSS_CONFIGS = {
    "cross_entropy": [],
    "+group_loss_parity": [{"name": "group_loss_parity", "weight": 0.5}],
    "+soft_demographic_parity": [{"name": "soft_demographic_parity", "weight": 0.5}],
    "+soft_equalized_odds": [{"name": "soft_equalized_odds", "weight": 0.5}],
    "+group_dro": [{"name": "group_dro", "weight": 0.5}],
    "+adversarial": [{"name": "adversarial", "weight": 0.1}],
    "+counterfactual_logit_pairing": [{"name": "counterfactual_logit_pairing", "weight": 0.5}],
}


def load_corpus(rows: int, seed: int):
    """A seeded sample of Davidson tweets with groups (g_*) and a gender-swapped partner per row."""
    import pandas as pd

    from debias.identity.annotate import IdentityAnnotator
    from debias.identity.lexicon import load_lexicon
    from debias.identity.swaps import load_swaps, swap_text

    raw = pd.read_csv(DATA)
    df = raw.sample(n=min(rows, len(raw)), random_state=seed).reset_index(drop=True)
    df = pd.DataFrame({"id": [f"d{i}" for i in range(len(df))], "text": df["tweet"].astype(str),
                       "label": (df["class"] != 2).astype("int64")})
    df = IdentityAnnotator(load_lexicon(["gender", "race_ethnicity", "religion", "sexual_orientation"]))(df)
    table = load_swaps(["gender"])
    df["cf_text"] = [swap_text(t, table) for t in df["text"]]  # unchanged text when nothing swaps
    df["sample_weight"] = 1.0
    return df


def tokenised(df, model_dir: str, max_length: int):
    from debias.training.data import Tokenize

    return Tokenize(model_dir, max_length=max_length)(df)


def _batches(df, *, batch_size: int, dynamic: bool, seed: int):
    from debias.training.data import window_batches

    return window_batches(df, batch_size=batch_size, dynamic=dynamic, seed=seed)


def time_config(model0, tok, df, group_cols, terms, *, batch_size, steps, dynamic, max_length, warmup=2,
                device="cpu"):
    """Samples/s of ``steps`` training steps (after ``warmup``) for one loss configuration."""
    import torch

    from debias.training.data import make_batch
    from debias.training.losses import FairnessObjective
    from debias.training.module import FairClassifier
    from debias.training.step import make_optimizer, train_step

    torch.manual_seed(0)
    model = copy.deepcopy(model0)
    objective = FairnessObjective([{"name": "cross_entropy"}, *terms], n_groups=len(group_cols))
    pad = tok.pad_token_id or 0
    module = FairClassifier(model, n_groups=len(group_cols), adversary=objective.adversary_params,
                            pad_id=pad).to(device)
    opt, sched = make_optimizer(module, lr=2e-5, weight_decay=0.01, total_steps=steps + warmup)
    batches = _batches(df, batch_size=batch_size, dynamic=dynamic, seed=0)[: steps + warmup]
    made = [make_batch(b, group_cols=group_cols, pad_id=pad, pad_to=None if dynamic else max_length,
                       counterfactuals=objective.needs_counterfactuals) for b in batches]
    for b in made[:warmup]:
        train_step(module, b, objective, opt, sched, device=device)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for b in made[warmup:]:
        n += train_step(module, b, objective, opt, sched, device=device)["n"]  # .item() syncs
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = sum(int(b.inputs["attention_mask"].numel()) for b in made[warmup:])
    # CPU seconds (all threads of this process) are what the work costs; wall time on a shared
    # machine also counts other people's jobs.
    return {"samples_per_s": n / seconds, "samples_per_cpu_s": n / cpu, "seconds": seconds,
            "cpu_seconds": cpu, "rows": n, "padded_tokens": tokens}


def objective_ms(df, group_cols, terms, *, batch_size, hidden=384, iters=200):
    """Milliseconds per step of the loss alone (forward + backward on a real batch's groups),
    without the encoder: a precise, load-insensitive bound on a term's own cost."""
    import torch

    from debias.training.data import make_batch
    from debias.training.losses import FairnessObjective, LossInputs

    torch.manual_seed(0)
    objective = FairnessObjective([{"name": "cross_entropy"}, *terms], n_groups=len(group_cols))
    b = make_batch(df.iloc[:batch_size], group_cols=group_cols, pad_id=0,
                   counterfactuals=objective.needs_counterfactuals)
    adv = None
    if objective.adversary_params is not None:
        from debias.training.losses import AdversaryHead

        adv = AdversaryHead(hidden, len(group_cols))
    n_cf = 0 if b.cf_index is None else len(b.cf_index)

    def once():
        logits = torch.randn(len(b), 2, requires_grad=True)
        pooled = torch.randn(len(b), hidden, requires_grad=True)
        cf = torch.randn(n_cf, 2, requires_grad=True) if n_cf else None
        total, _ = objective(LossInputs(logits=logits, y=b.y, membership=b.membership,
                                        sample_weight=b.sample_weight, cf_logits=cf, cf_index=b.cf_index,
                                        group_logits=adv(pooled) if adv is not None else None))
        total.backward()

    for _ in range(10):
        once()
    c0 = time.process_time()
    for _ in range(iters):
        once()
    return 1000.0 * (time.process_time() - c0) / iters


def part_losses(args, model0, tok, df, group_cols):
    res = {name: [] for name in LOSS_CONFIGS}
    for _ in range(args.repeats):  # round robin: machine load drifts alike for every config
        for name, terms in LOSS_CONFIGS.items():
            r = time_config(model0, tok, df, group_cols, terms, batch_size=args.batch_size, steps=args.steps,
                            dynamic=True, max_length=args.max_length, device=args.device)
            res[name].append(r)
            print(f"  losses {name:32s} {r['samples_per_s']:7.1f} samples/s "
                  f"{r['samples_per_cpu_s']:7.1f} samples/CPU-s", flush=True)
    out = _summarise(res, "cross_entropy")
    step_ms = 1000.0 * args.batch_size / out[0]["samples_per_cpu_s"]  # CPU ms of a plain CE step
    for row in out:
        terms = LOSS_CONFIGS[row["config"]]
        row["loss_cpu_ms"] = objective_ms(df, group_cols, terms, batch_size=args.batch_size)
        row["ce_step_cpu_ms"] = step_ms
    base = out[0]["loss_cpu_ms"]
    for row in out:
        row["term_overhead_pct_of_step"] = 100.0 * (row["loss_cpu_ms"] - base) / step_ms
    return out


def _summarise(res, base_name):
    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    base_wall, base_cpu = med(res[base_name], "samples_per_s"), med(res[base_name], "samples_per_cpu_s")
    out = []
    for name, rows in res.items():
        wall, cpu = med(rows, "samples_per_s"), med(rows, "samples_per_cpu_s")
        out.append({"config": name, "samples_per_s": wall, "samples_per_cpu_s": cpu,
                    "padded_tokens": rows[-1]["padded_tokens"], "runs": rows,
                    "wall_overhead_pct": 100.0 * (base_wall / wall - 1.0),
                    "cpu_overhead_pct": 100.0 * (base_cpu / cpu - 1.0),
                    "wall_speedup": wall / base_wall, "cpu_speedup": cpu / base_cpu})
    return out


def part_padding(args, model0, tok, df, group_cols):
    res = {"fixed_128": [], "dynamic_bucketed": []}
    for _ in range(args.repeats):
        for name, dynamic in (("fixed_128", False), ("dynamic_bucketed", True)):
            r = time_config(model0, tok, df, group_cols, [], batch_size=args.batch_size, steps=args.steps,
                            dynamic=dynamic, max_length=128, device=args.device)
            res[name].append(r)
            print(f"  padding {name:20s} {r['samples_per_s']:7.1f} samples/s "
                  f"{r['samples_per_cpu_s']:7.1f} samples/CPU-s", flush=True)
    return _summarise(res, "fixed_128")


def part_workers(args, df):
    import ray

    from debias.config import load_config
    from jobs import train

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        keep = ["id", "text", "label", "sample_weight"] + [c for c in df.columns if c.startswith("g_")]
        for split, part in (("train", df), ("val", df.head(64))):
            (run_dir / "preprocess" / split).mkdir(parents=True)
            part[keep].to_parquet(run_dir / "preprocess" / split / "part-0.parquet")
        ray.init(num_cpus=2, include_dashboard=True, logging_level="ERROR", log_to_driver=False)
        try:
            for workers, cpus in ((1, 2), (2, 1)):
                cfg = load_config(base={"data": {"path": "unused"}, "train": {
                    "model": args.model, "num_workers": workers, "cpus_per_worker": cpus, "epochs": 1,
                    "batch_size": args.batch_size, "max_length": args.max_length,
                    "max_steps_per_epoch": args.steps + 2, "max_failures": 0}})
                fitted = train.fit(cfg, str(run_dir))
                m = fitted["result"].metrics
                row = {"config": f"{workers} worker(s) x {cpus} CPU", "samples_per_s": m["samples_per_s"],
                       "epoch_seconds": m["epoch_seconds"], "fit_seconds": fitted["fit_seconds"]}
                out.append(row)
                print(f"  workers {row['config']:20s} {row['samples_per_s']:7.1f} samples/s", flush=True)
        finally:
            ray.shutdown()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", default=["losses", "padding", "workers"],
                   choices=["losses", "padding", "workers"])
    p.add_argument("--model", default=None, help="local HF model dir (default: packaged MiniLM)")
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "train.json"))
    args = p.parse_args(argv)
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (the shared data folder is not present)")
        return 0
    import torch

    from debias.schema import membership_columns
    from debias.training.model import default_model_dir, load_classifier

    torch.set_num_threads(args.threads)
    args.model = args.model or default_model_dir()
    t0 = time.time()
    df = load_corpus(args.rows, seed=0)
    group_cols = membership_columns(df.columns)
    df = tokenised(df, args.model, args.max_length)
    model0, tok = load_classifier(args.model)
    mean_tokens = float(df["n_tokens"].mean())
    paired = float((df["cf_text"] != df["text"]).mean())
    print(f"{len(df)} tweets, mean {mean_tokens:.1f} tokens, {len(group_cols)} group columns, "
          f"{paired:.0%} with a real swapped partner; model {args.model}", flush=True)
    results = {"args": vars(args), "rows": len(df), "mean_tokens": mean_tokens,
               "n_group_columns": len(group_cols), "torch_threads": torch.get_num_threads()}
    if "losses" in args.parts:
        results["losses"] = part_losses(args, model0, tok, df, group_cols)
    if "padding" in args.parts:
        results["padding"] = part_padding(args, model0, tok, df, group_cols)
    if "workers" in args.parts:
        results["workers"] = part_workers(args, df)
    results["wall_seconds"] = time.time() - t0

    print(f"\n{'part':8s} {'configuration':32s} {'samples/s':>10s} {'samples/CPU-s':>14s}  note")
    for row in results.get("losses", []):
        print(f"{'losses':8s} {row['config']:32s} {row['samples_per_s']:10.1f} {row['samples_per_cpu_s']:14.1f}  "
              f"overhead: wall {row['wall_overhead_pct']:+.1f}%, CPU {row['cpu_overhead_pct']:+.1f}%; "
              f"the term alone {row['loss_cpu_ms'] - results['losses'][0]['loss_cpu_ms']:.2f} ms = "
              f"{row['term_overhead_pct_of_step']:+.2f}% of a CE step")
    for row in results.get("padding", []):
        print(f"{'padding':8s} {row['config']:32s} {row['samples_per_s']:10.1f} {row['samples_per_cpu_s']:14.1f}  "
              f"vs fixed: wall {row['wall_speedup']:.2f}x, CPU {row['cpu_speedup']:.2f}x; "
              f"{row['padded_tokens']:,} padded tokens")
    for row in results.get("workers", []):
        print(f"{'workers':8s} {row['config']:32s} {row['samples_per_s']:10.1f} {'':>14s}  "
              f"fit() {row['fit_seconds']:.0f}s in all")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
