"""Ray Data preprocess pipeline vs the same stage functions in one pandas process.

    .venv/bin/python bench/preprocess.py --rows 2000000            # ray and plain side by side
    .venv/bin/python bench/preprocess.py --rows 1000000 2000000 4000000 --modes ray   # scaling
    .venv/bin/python bench/preprocess.py --rows 1000000 --modes plain --probe        # 2-core bound
    .venv/bin/python bench/preprocess.py --rows 2000000 --repeat 3   # 3 rounds, ABBA order

Each (mode, N) runs in its own subprocess so that peak RSS is that run's alone. For the Ray mode
the RSS reported is the driver's (the workers stream the data); for the plain mode it is the one
process doing all the work. Prints one table and writes bench/results/preprocess.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHASES = ["read_clean_annotate", "rejects_dedup", "audit_plan", "balance_augment_write"]


def _config(corpus: Path, *, strategy: str, augment: str) -> dict:
    from debias.config import load_config

    return load_config(base={"data": {"path": str(corpus), "text_col": "text", "label_col": "toxic",
                                      "id_col": "id"}},
                       overrides=[f"balance.strategy={strategy}", f"augment.mode={augment}",
                                  "ray.num_cpus=2"])


def make_corpus(n: int, out_dir: Path, *, shards: int = 8) -> Path:
    """N rows of the demo corpus generator (repeated with fresh ids past its own size), in shards."""

    from debias.corpus.demo import generate_demo_corpus

    folder = out_dir / f"corpus-{n}"
    if (folder / "_DONE").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    base = generate_demo_corpus(min(n, 200_000), seed=0)
    per = -(-n // shards)
    for s in range(shards):
        lo, hi = s * per, min(n, (s + 1) * per)
        idx = [i % len(base) for i in range(lo, hi)]
        part = base.iloc[idx].reset_index(drop=True)
        # Repeats get fresh ids and a varying suffix so they are not all exact duplicates.
        part["id"] = [f"b{i}" for i in range(lo, hi)]
        rep = [i // len(base) for i in range(lo, hi)]
        part["text"] = [t if r == 0 or t is None else f"{t} #{r}" for t, r in zip(part["text"], rep, strict=True)]
        part.to_parquet(folder / f"part-{s:03d}.parquet", index=False)
    (folder / "_DONE").write_text("")
    return folder


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes; /proc/stat)."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return float("nan")
    idle = f[3] + (f[4] if len(f) > 4 else 0)  # idle + iowait
    return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _self_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(mode: str, corpus: Path, run_dir: Path, strategy: str, augment: str) -> dict:
    cfg = _config(corpus, strategy=strategy, augment=augment)
    t0 = time.perf_counter()
    busy0, self0 = _busy_cpu_seconds(), _self_cpu_seconds()
    if mode == "plain":
        import pandas as pd

        from debias.corpus.local import run_local

        df = pd.read_parquet(corpus)
        df["path"] = str(corpus)
        timings: dict[str, float] = {}
        res = run_local(df, cfg=cfg.model_dump(), timings=timings)
        t_write = time.perf_counter()
        run_dir.mkdir(parents=True, exist_ok=True)
        res["output"].to_parquet(run_dir / "out.parquet")
        timings["balance_augment_write"] += time.perf_counter() - t_write
        rows = {"read": res["n_read"], "output": len(res["output"])}
        busy1, self1 = _busy_cpu_seconds(), _self_cpu_seconds()
    else:
        from jobs import preprocess
        from jobs.ray_session import ray_session

        with ray_session(cfg.ray, dashboard=False):  # as `debias preprocess` starts it
            t0 = time.perf_counter()  # Ray's start-up is reported apart
            busy0, self0 = _busy_cpu_seconds(), _self_cpu_seconds()
            manifest = preprocess.run(cfg, str(run_dir))
            busy1, self1 = _busy_cpu_seconds(), _self_cpu_seconds()
        timings = manifest["timings_seconds"]
        rows = manifest["rows"]
    total = time.perf_counter() - t0
    # Where the cores went: the machine's busy CPU seconds over the run (every process, Ray's
    # workers, raylet and GCS included) and this process's own (the driver, for Ray).
    return {"mode": mode, "rows": rows, "seconds": total, "phases": timings,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "machine_busy_cpu_s": busy1 - busy0, "driver_cpu_s": self1 - self0}


def _probe_child(shard: Path, strategy: str, augment: str) -> float:
    """CPU microseconds per row of ``prepare_batch`` (the heaviest stage) on one shard."""
    import pandas as pd

    from debias.corpus.prepare import prepare_batch

    c = _config(shard.parent, strategy=strategy, augment=augment).model_dump()
    df = pd.read_parquet(shard)
    df["path"] = str(shard)
    prepare_batch(df.iloc[:2000], cfg=c)  # lexicon compilation and imports, not timed
    t0 = time.process_time()
    prepare_batch(df, cfg=c)
    return 1e6 * (time.process_time() - t0) / len(df)


def parallel_probe(corpus: Path, args: argparse.Namespace, repeats: int = 3) -> dict:
    """How much two processes slow each other down on this machine's two cores.

    The same stage function on a shard, in one process alone and in two processes at once
    (interleaved, ``repeats`` times). With no overhead at all, a two-process pipeline can go
    at most 2 x (alone / together) times as fast as one process: the bound on the speed-up.
    """
    shards = sorted(corpus.glob("part-*.parquet"))

    def launch(shard: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, __file__, "--strategy", args.strategy, "--augment",
                                 args.augment, "--_probe", str(shard)], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def result(p: subprocess.Popen) -> float:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"probe child failed (exit {p.returncode})")
        return float(out.strip().splitlines()[-1])

    alone, together = [], []
    for r in range(repeats):
        alone.append(result(launch(shards[(2 * r) % len(shards)])))
        pair = [launch(shards[(2 * r + i) % len(shards)]) for i in (0, 1)]
        together.extend(result(p) for p in pair)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"alone_us_per_row": alone, "together_us_per_row": together,
            "alone_median": med(alone), "together_median": med(together),
            "max_speedup_2_processes": 2 * med(alone) / med(together)}


def _run_child(mode: str, n: int, args: argparse.Namespace, work: Path) -> dict:
    """One (mode, N) run in its own process, so that its peak RSS is its own."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    p = subprocess.run([sys.executable, __file__, "--rows", str(n), "--strategy", args.strategy,
                        "--augment", args.augment, "--work", str(work), "--_child", mode, str(n)],
                       capture_output=True, text=True, env=env)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode or not line:
        print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{mode} at {n} rows failed (exit {p.returncode})")
    return json.loads(line[0][7:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[200_000])
    ap.add_argument("--modes", nargs="+", default=["plain", "ray"], choices=["plain", "ray"])
    ap.add_argument("--strategy", default="reweight")
    ap.add_argument("--augment", default="append")
    ap.add_argument("--work", default=str(ROOT / "bench" / "results" / "preprocess-work"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "preprocess.json"))
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds per row count; the modes alternate order each round (plain, ray, ray, "
                         "plain, ...) so a drift in the machine's speed falls on both, and each round "
                         "gives its own ratio")
    ap.add_argument("--probe", action="store_true",
                    help="also measure how two processes slow each other (the bound on any 2-core speed-up)")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_probe", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work)
    if args._probe:
        print(f"{_probe_child(Path(args._probe), args.strategy, args.augment):.3f}")
        return
    if args._child:
        mode, n = args._child[0], int(args._child[1])
        res = run_one(mode, make_corpus(n, work), work / f"run-{mode}-{n}", args.strategy, args.augment)
        print("RESULT " + json.dumps(res))
        return
    results = []
    for n in args.rows:
        make_corpus(n, work)
        for rnd in range(args.repeat):
            for mode in (args.modes if rnd % 2 == 0 else args.modes[::-1]):
                results.append({**_run_child(mode, n, args, work), "n": n, "round": rnd})
    hdr = f"{'rows':>10} {'round':>5} {'mode':>6} " + " ".join(f"{p[:14]:>15}" for p in PHASES) + \
          f" {'end-to-end':>12} {'us/row':>7} {'peak RSS MB':>12} {'cores busy':>10} {'driver CPU s':>12}"
    print("\nrows/s per phase (phase rows: read for the first two, kept after dedup for the rest)")
    print(hdr)
    for r in results:
        n = r["n"]
        rates = " ".join(f"{n / r['phases'][p]:>15,.0f}" if r["phases"].get(p) else f"{'-':>15}"
                         for p in PHASES)
        print(f"{n:>10,} {r['round']:>5} {r['mode']:>6} {rates} {n / r['seconds']:>12,.0f} "
              f"{1e6 * r['seconds'] / n:>7.1f} {r['peak_rss_mb']:>12,.0f} "
              f"{r['machine_busy_cpu_s'] / r['seconds']:>10.2f} {r['driver_cpu_s']:>12.1f}")
    ratios = {}
    for n in args.rows:
        per_round = []
        for rnd in range(args.repeat):
            by = {r["mode"]: r for r in results if r["n"] == n and r["round"] == rnd}
            if {"plain", "ray"} <= by.keys():
                per_round.append(by["plain"]["seconds"] / by["ray"]["seconds"])
        if per_round:
            ratios[n] = per_round
            med = statistics.median(per_round)
            each = f" (rounds: {', '.join(f'{x:.2f}' for x in per_round)})" if len(per_round) > 1 else ""
            print(f"{n:,} rows: ray / plain end-to-end throughput = {med:.2f}x"
                  + (" median" if len(per_round) > 1 else "") + each)
    probe = None
    if args.probe:
        probe = parallel_probe(make_corpus(args.rows[0], work), args)
        print(f"prepare_batch CPU us/row, one process alone: {probe['alone_median']:.1f} "
              f"(runs {', '.join(f'{x:.1f}' for x in probe['alone_us_per_row'])}); two at once: "
              f"{probe['together_median']:.1f} (runs {', '.join(f'{x:.1f}' for x in probe['together_us_per_row'])})"
              f" -> any 2-process pipeline is at most {probe['max_speedup_2_processes']:.2f}x one process")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results,
                                          "ratio_plain_s_over_ray_s": ratios, "parallel_probe": probe}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
