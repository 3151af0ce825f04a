"""Evaluation inference throughput: the Ray Data job vs plain single-process torch loops.

    .venv/bin/python bench/evaluate.py --rows 100000 --cpus 2

Same model (packaged MiniLM-L6; the classification head is untrained, which does not change
the cost) and the same real tweets (../shared/data/davidson-hate-offensive, cycled when
--rows exceeds its 24,783 rows), side by side:

* ``plain fixed-128``: one process, 1 thread, every batch padded to max_length=128;
* ``plain dynamic``: one process, 1 thread, each batch padded to its longest text, input order;
* ``plain length-sorted``: one process, 1 thread, ``debias.evaluation.predict.Predictor`` (sorted by length);
* ``ray evaluate``: ``jobs.evaluate.score_texts`` (the evaluation job's inference) on a local
  Ray with ``--cpus`` CPUs, one 1-CPU Predictor actor per CPU; wall time includes starting the
  actors and loading the model in each, not ``ray.init``.

Targets (issue 5): ray >= 0.8 x plain length-sorted x cpus; length-sorted >= 2.5 x fixed-128.
Prints one table and writes bench/results/evaluate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "davidson-hate-offensive" / "labeled_data.csv"


def load_texts(n: int, seed: int = 0) -> list[str]:
    import numpy as np
    import pandas as pd

    tweets = pd.read_csv(DATA, usecols=["tweet"])["tweet"].astype(str).tolist()
    order = np.random.default_rng(seed).permutation(len(tweets))
    return [tweets[order[i % len(tweets)]] for i in range(n)]


def plain_loop(texts: list[str], model_dir: str, *, batch_size: int, max_length: int,
               pad_to: int | None) -> float:
    """A plain torch loop in input order (the alternative a user would write); returns seconds."""
    import torch

    from debias.evaluation.predict import positive_probability
    from debias.training.model import collate, encode, load_classifier, wants_token_type_ids

    model, tok = load_classifier(model_dir)
    model.eval()
    tt = wants_token_type_ids(tok)
    t0 = time.perf_counter()
    ids = encode(texts, tok, max_length=max_length)
    with torch.inference_mode():
        for i in range(0, len(ids), batch_size):
            b = collate(ids[i:i + batch_size], pad_id=tok.pad_token_id or 0, pad_to=pad_to, token_type_ids=tt)
            positive_probability(model(**b).logits)
    return time.perf_counter() - t0


def sorted_loop(texts: list[str], model_dir: str, *, batch_size: int, max_length: int) -> float:
    from debias.evaluation.predict import Predictor

    p = Predictor(model_dir, batch_size=batch_size, max_length=max_length)
    t0 = time.perf_counter()
    p.predict_texts(texts)
    return time.perf_counter() - t0


def ray_job(texts: list[str], model_dir: str, *, batch_size: int, max_length: int, cpus: int) -> float:
    import ray

    from debias.config import EvaluateConfig
    from jobs.evaluate import score_texts
    from jobs.ray_session import quiet_ray_data

    # address="local": always a fresh Ray of exactly `cpus` CPUs, never a cluster someone else
    # started on this machine with `ray start`.
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})
    quiet_ray_data()
    try:
        ev = EvaluateConfig(batch_size=batch_size, max_length=max_length, num_actors=cpus, cpus_per_actor=1)
        t0 = time.perf_counter()
        score_texts(texts, model_dir=model_dir, ev=ev)
        return time.perf_counter() - t0
    finally:
        ray.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--plain-rows", type=int, default=None,
                    help="rows for the single-process loops (default: --rows); they are the slow side")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs given to Ray")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--modes", nargs="+", default=["fixed", "dynamic", "sorted", "ray"],
                    choices=["fixed", "dynamic", "sorted", "ray"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "evaluate.json"))
    args = ap.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (the shared reference data is not present)")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from debias.training.model import default_model_dir

    torch.set_num_threads(1)  # the plain loops run on one core, as the target is stated
    model_dir = default_model_dir()
    texts = load_texts(args.rows)
    plain_n = min(args.plain_rows or args.rows, args.rows)
    plain = texts[:plain_n]
    kw = {"batch_size": args.batch_size, "max_length": args.max_length}
    rows = []
    modes = [
        ("fixed", "plain fixed-128, 1 thread", lambda: plain_loop(plain, model_dir, pad_to=args.max_length, **kw),
         plain_n),
        ("dynamic", "plain dynamic, 1 thread", lambda: plain_loop(plain, model_dir, pad_to=None, **kw), plain_n),
        ("sorted", "plain length-sorted, 1 thread", lambda: sorted_loop(plain, model_dir, **kw), plain_n),
        ("ray", f"ray evaluate, {args.cpus} x 1-CPU actors",
         lambda: ray_job(texts, model_dir, cpus=args.cpus, **kw), args.rows),
        # Measured again after Ray: on a shared machine the load drifts, and the target compares
        # Ray with the plain loop, so the plain loop is bracketed around it.
        ("sorted", "plain length-sorted, 1 thread (again)", lambda: sorted_loop(plain, model_dir, **kw), plain_n),
    ]
    for key, name, fn, n in modes:
        if key not in args.modes:
            continue
        load_before = os.getloadavg()[0]
        secs = fn()
        # The load average says how shared the machine was: figures under load are not comparable.
        load = round((load_before + os.getloadavg()[0]) / 2, 1)
        rows.append({"key": key, "mode": name, "rows": n, "seconds": round(secs, 2), "texts_per_s": round(n / secs, 1),
                     "load_avg_1min": load})
        print(f"  {name}: {n} rows in {secs:.1f} s (load average {load})", flush=True)
    def rate(key: str) -> float:
        vals = [r["texts_per_s"] for r in rows if r["key"] == key]
        return sum(vals) / len(vals) if vals else float("nan")

    fixed, srt, ray_r = rate("fixed"), rate("sorted"), rate("ray")
    target = 0.8 * srt * args.cpus
    print(f"\nEvaluation inference, MiniLM-L6, real tweets, batch {args.batch_size}, max_length {args.max_length}, "
          f"{os.cpu_count()} cores on the machine")
    print(f"{'mode':<40}{'rows':>8}{'seconds':>10}{'texts/s':>10}{'vs fixed-128':>14}{'load avg':>10}")
    for r in rows:
        print(f"{r['mode']:<40}{r['rows']:>8}{r['seconds']:>10.1f}{r['texts_per_s']:>10.1f}"
              f"{r['texts_per_s'] / fixed:>13.2f}x{r['load_avg_1min']:>10.1f}")
    print(f"\nlength-sorted / fixed-128 = {srt / fixed:.2f}x (target >= 2.5x)")
    print(f"ray / (plain length-sorted x {args.cpus} cpus) = {ray_r / (srt * args.cpus):.2f} "
          f"(target >= 0.8; {ray_r:.1f} vs {target:.1f} texts/s)")
    out = {"cpu_count": os.cpu_count(), "cpus_for_ray": args.cpus, "batch_size": args.batch_size,
           "max_length": args.max_length, "results": rows,
           "bucketing_speedup": round(srt / fixed, 2), "ray_vs_plain_per_cpu": round(ray_r / (srt * args.cpus), 3)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
