"""Online inference: the Ray Serve service vs a plain per-request server vs the offline ceiling.

    .venv/bin/python bench/serve.py                      # all phases, 1500 requests each
    .venv/bin/python bench/serve.py --requests 600 --skip-autoscale

Real texts: tweets from ../shared/data/davidson-hate-offensive/labeled_data.csv (column
``tweet``), cleaned as the service cleans them, a seeded sample in a fixed order. The model is
the packaged MiniLM (``default_model_dir()``; its classification head is untrained, which
does not change the cost). Side by side, one run, same texts:

* ``offline``: the ceiling, one process, :class:`debias.evaluation.predict.Predictor` over all texts in
  length-sorted batches of 64 (a plain torch loop, no HTTP);
* ``served32_padded`` / ``served32_split``: the best a batching server can do, in one process:
  the texts in arrival order cut into batches of 32 (what ``@serve.batch`` sees under full
  load), each padded to its longest text or cut by ``padding_aware_batches``;
* ``plain``: FastAPI + uvicorn in a subprocess, the model called once per request;
* the service, max_batch_size 32 or 1, in two layouts on the 2 cores: one replica with two
  torch threads (``serve_batched``: our greedy batcher; ``serve_rbatch``: Ray's
  ``@serve.batch``; ``serve_batch1``) and two replicas with one thread each
  (``serve_batched_2r``, ``serve_batch1_2r``);
* ``autoscale``: the service with 1..2 replicas under load, then idle: replica counts over time.

Load comes from a second process on 127.0.0.1: ``--concurrency`` clients, each sending
single-text requests back to back until ``--requests`` are done (a fixed amount, then it
stops); the first ``--warmup`` requests are not measured. Ray is shut down while the plain
server and the offline loop run, so they do not share the 2 cores with idle Ray processes;
Ray's workers run at nice 0 here (Ray's default is 15), the same priority as the baselines.
Prints one table and writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "davidson-hate-offensive" / "labeled_data.csv"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray starts its worker processes (Serve replicas, the HTTP proxy) at nice 15 by default. On a
# machine shared with other work that starves them against the nice-0 baselines; start them
# at nice 0 so that every contender runs at the same priority.
os.environ.setdefault("RAY_worker_niceness", "0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_texts(n: int, *, seed: int = 0) -> list[str]:
    import pandas as pd

    from debias.corpus.clean import clean_texts

    tweets = pd.read_csv(DATA, usecols=["tweet"])["tweet"].dropna().astype(str)
    sample = tweets.sample(n=min(n, len(tweets)), random_state=seed).tolist()
    return clean_texts(sample)


# ------------------------------------------------------------------------------------------
# The load client (run as a separate process: `bench/serve.py --client ...`).

async def _load(url: str, texts: list[str], *, path: str, concurrency: int, warmup: int,
                seconds: float | None) -> dict:
    """Closed-loop load: ``concurrency`` clients, each sending one request after another.

    aiohttp, not httpx: against a no-op FastAPI server on this machine, httpx's client cost
    8.2 ms of CPU per request and topped out at 114 requests/s (a whole core), aiohttp 0.45 ms
    and 1,368 requests/s; with httpx the load generator itself took the cores the server needs.
    The client's CPU time is reported (``client_cpu_ms_per_request``) so this stays visible.
    """
    import resource

    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as client:
        async def one(text: str | list[str]) -> tuple[float, bool]:
            batch = text if isinstance(text, list) else [text]  # a client-side batch: `texts` list
            t0 = time.perf_counter()
            try:
                async with client.post(path, json={"texts": batch}) as r:
                    ok = r.status == 200 and len((await r.json())["scores"]) == len(batch)
            except Exception:  # noqa: BLE001 - every failure is counted as an error
                ok = False
            return time.perf_counter() - t0, ok

        async def run(items: list[str], stop_at: float | None) -> list[tuple[float, bool]]:
            queue: asyncio.Queue[str] = asyncio.Queue()
            for t in items:
                queue.put_nowait(t)
            out: list[tuple[float, bool]] = []

            async def worker() -> None:
                i = 0
                while True:
                    if stop_at is not None:
                        if time.perf_counter() >= stop_at:
                            return
                        text = items[i % len(items)]
                        i += 1
                    else:
                        try:
                            text = queue.get_nowait()
                        except asyncio.QueueEmpty:
                            return
                    out.append(await one(text))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return out

        await run(texts[:warmup], None)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        stop_at = t0 + seconds if seconds else None
        res = await run(texts[warmup:], stop_at)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    lat = sorted(x for x, ok in res if ok)
    return {"wall_s": wall, "requests": len(res), "ok": len(lat), "errors": len(res) - len(lat),
            "client_cpu_ms_per_request": 1000 * cpu / max(1, len(res)), "latencies": lat}


def client_main(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts_file).read_text())
    k = args.texts_per_request
    if k > 1:  # requests of k texts each (warm-up counts requests too)
        texts = [texts[i:i + k] for i in range(0, len(texts) - k + 1, k)]
    res = asyncio.run(_load(args.client, texts, path="/v1/classify", concurrency=args.concurrency,
                            warmup=args.warmup, seconds=args.seconds))
    Path(args.result_file).write_text(json.dumps(res))


def run_client(url: str, texts_file: Path, *, concurrency: int, warmup: int,
               seconds: float | None = None, texts_per_request: int = 1) -> dict:
    import numpy as np

    out = texts_file.with_suffix(".result.json")
    cmd = [sys.executable, __file__, "--client", url, "--texts-file", str(texts_file),
           "--result-file", str(out), "--concurrency", str(concurrency), "--warmup", str(warmup),
           "--texts-per-request", str(texts_per_request)]
    if seconds:
        cmd += ["--seconds", str(seconds)]
    load_before = os.getloadavg()[0]
    subprocess.run(cmd, check=True)
    res = json.loads(out.read_text())
    res["loadavg_1m"] = [load_before, os.getloadavg()[0]]  # other work on the machine
    lat = np.asarray(res.pop("latencies"))
    res["texts_per_request"] = texts_per_request
    res["throughput"] = res["ok"] * texts_per_request / res["wall_s"]  # texts/s
    for q in (50, 95, 99):
        res[f"p{q}_ms"] = float(np.percentile(lat, q) * 1000) if len(lat) else float("nan")
    return res


# ------------------------------------------------------------------------------------------
# The plain per-request server (uvicorn factory: `uvicorn bench.serve:plain_app --factory`).

class PlainBody(BaseModel):
    texts: list[str]


def plain_app():
    """FastAPI app that calls the model once per request (what one writes without batching)."""
    from fastapi import FastAPI

    from debias.evaluation.predict import Predictor

    predictor = Predictor(os.environ["DEBIAS_BENCH_MODEL"], batch_size=1,
                          num_threads=int(os.environ.get("DEBIAS_BENCH_THREADS", "2")))
    app = FastAPI()

    @app.post("/v1/classify")
    def classify(body: PlainBody) -> dict:  # sync: FastAPI runs it in its thread pool
        scores = predictor.predict_texts(body.texts)
        return {"scores": scores.tolist(), "labels": [int(s >= 0.5) for s in scores]}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app


def _wait_http(url: str, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not come up in {timeout_s} s")


def bench_plain(model_dir: str, texts_file: Path, args: argparse.Namespace) -> dict:
    port = _free_port()
    env = dict(os.environ, DEBIAS_BENCH_MODEL=model_dir, DEBIAS_BENCH_THREADS=str(args.threads),
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.serve:plain_app", "--factory",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             "--no-access-log"], cwd=ROOT, env=env)
    try:
        _wait_http(f"http://127.0.0.1:{port}")
        return run_client(f"http://127.0.0.1:{port}", texts_file, concurrency=args.concurrency,
                          warmup=args.warmup, texts_per_request=args.texts_per_request)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_served_batches(model_dir: str, texts: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """What a batching server can reach at best: the texts in arrival order, cut into batches of
    ``max_batch_size`` as ``@serve.batch`` sees them under full load, each scored in one process
    (no HTTP) either as one padded batch or cut by :func:`padding_aware_batches`."""
    from debias.evaluation.predict import Predictor

    out = {}
    measured = texts[args.warmup:]
    for key, aware in (("served32_padded", False), ("served32_split", True)):
        p = Predictor(model_dir, batch_size=32, num_threads=args.threads, padding_aware=aware)
        p.predict_texts(texts[: args.warmup])
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        for i in range(0, len(measured), 32):
            p.predict_texts(measured[i:i + 32])
        wall = time.perf_counter() - t0
        out[key] = {"wall_s": wall, "requests": len(measured), "ok": len(measured), "errors": 0,
                    "throughput": len(measured) / wall, "loadavg_1m": [load_before, os.getloadavg()[0]]}
    return out


def bench_offline(model_dir: str, texts: list[str], args: argparse.Namespace) -> dict:
    from debias.evaluation.predict import Predictor

    p = Predictor(model_dir, batch_size=64, num_threads=args.threads)
    p.predict_texts(texts[: args.warmup])
    measured = texts[args.warmup:]
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    p.predict_texts(measured)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "requests": len(measured), "ok": len(measured), "errors": 0,
            "throughput": len(measured) / wall, "loadavg_1m": [load_before, os.getloadavg()[0]]}


# ------------------------------------------------------------------------------------------
# The service.

def _settings(model_dir: str, port: int, **over):
    from debias.config import ServeConfig
    from serve.schemas import AppSettings

    base = dict(model=model_dir, port=port, max_batch_size=32, batch_wait_timeout_s=0.01,
                max_ongoing_requests=64, min_replicas=1, max_replicas=1, num_cpus_per_replica=1,
                torch_threads=2, max_length=128)
    base.update(over)
    return AppSettings(model_dir=model_dir, serve=ServeConfig(**base))


# (result key, ServeConfig overrides): one replica using both cores through torch threads, and
# one replica per core with one thread each; Ray's @serve.batch beside our greedy batcher.
ONE, PER_CORE = {"min_replicas": 1, "max_replicas": 1, "torch_threads": 2}, \
    {"min_replicas": 2, "max_replicas": 2, "torch_threads": 1}
SERVICE_VARIANTS = [
    ("serve_batch1", {**ONE, "max_batch_size": 1}),
    ("serve_rbatch", {**ONE, "batcher": "serve_batch"}),
    ("serve_batched", {**ONE, "batcher": "greedy"}),
    ("serve_batch1_2r", {**PER_CORE, "max_batch_size": 1}),
    ("serve_batched_2r", {**PER_CORE, "batcher": "greedy"}),
]


def _replicas() -> dict[str, int]:
    from ray import serve

    st = serve.status().applications["bench"].deployments["Classifier"]
    return {k.value if hasattr(k, "value") else str(k): v for k, v in st.replica_states.items()}


def bench_service(model_dir: str, texts_file: Path, args: argparse.Namespace) -> dict[str, dict]:
    import httpx
    import ray
    from ray import serve

    from serve.app import deploy

    out: dict[str, dict] = {}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        for name, over in SERVICE_VARIANTS:
            if args.variants and name not in args.variants:
                continue
            deploy(_settings(model_dir, port, **over), name="bench")
            before = httpx.get(url + "/v1/monitor", timeout=30).json()["batch_sizes"]
            out[name] = run_client(url, texts_file, concurrency=args.concurrency, warmup=args.warmup,
                                   texts_per_request=args.texts_per_request)
            time.sleep(1.0)
            after = httpx.get(url + "/v1/monitor", timeout=30).json()["batch_sizes"]
            sizes = {int(k): v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
            out[name]["batch_sizes"] = sizes
            out[name]["mean_batch"] = sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values()))
            serve.delete("bench")
        if not args.skip_autoscale:
            out["autoscale"] = bench_autoscale(model_dir, port, texts_file, args)
    finally:
        serve.shutdown()
        ray.shutdown()
    return out


def bench_autoscale(model_dir: str, port: int, texts_file: Path, args: argparse.Namespace) -> dict:
    import threading

    from serve.app import deploy

    deploy(_settings(model_dir, port, min_replicas=1, max_replicas=2, target_ongoing_requests=8,
                     upscale_delay_s=2, downscale_delay_s=10), name="bench")
    timeline: list[tuple[float, int]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def poll() -> None:
        while not stop.is_set():
            timeline.append((round(time.monotonic() - t0, 1), _replicas().get("RUNNING", 0)))
            stop.wait(1.0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    load = run_client(f"http://127.0.0.1:{port}", texts_file, concurrency=args.concurrency,
                      warmup=0, seconds=args.autoscale_seconds)
    load_end = time.monotonic() - t0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # idle: wait for the extra replica to go
        time.sleep(1.0)
        if timeline and timeline[-1][1] == 1 and max(n for _, n in timeline) > 1:
            break
    stop.set()
    poller.join()
    peak = max(n for _, n in timeline)
    up = next((t for t, n in timeline if n > 1), None)
    down = next((t for t, n in timeline if t > load_end and n == 1), None)
    return {"load": {k: v for k, v in load.items()}, "peak_replicas": peak,
            "first_upscale_s": up, "load_end_s": round(load_end, 1), "back_to_1_s": down,
            "final_replicas": timeline[-1][1], "timeline": timeline}


# ------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1500, help="measured requests per phase")
    ap.add_argument("--warmup", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads everywhere")
    ap.add_argument("--model", default=None, help="model dir; default: packaged MiniLM")
    ap.add_argument("--autoscale-seconds", type=float, default=40.0)
    ap.add_argument("--skip-autoscale", action="store_true")
    ap.add_argument("--texts-per-request", type=int, default=1,
                    help="texts per request (client-side batching); --requests counts texts")
    ap.add_argument("--variants", nargs="+", default=None, choices=[k for k, _ in SERVICE_VARIANTS],
                    help="service layouts to run (default: all)")
    ap.add_argument("--skip-plain", action="store_true", help="no plain per-request server")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.json"))
    # client mode (internal)
    ap.add_argument("--client", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--texts-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client_main(args)
        return
    if not DATA.is_file():
        print(f"skipped: {DATA} is not present (the benchmark reads real tweets from it)")
        return

    from debias.training.model import default_model_dir

    model_dir = args.model or default_model_dir()
    texts = load_texts(args.requests + args.warmup)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    texts_file = out_path.with_name("serve_texts.tmp.json")
    texts_file.write_text(json.dumps(texts))

    t_start = time.time()
    results: dict[str, dict] = {}
    print("offline ceiling ...", flush=True)
    results["offline"] = bench_offline(model_dir, texts, args)
    results.update(bench_served_batches(model_dir, texts, args))
    if not args.skip_plain:
        print("plain FastAPI + uvicorn ...", flush=True)
        results["plain"] = bench_plain(model_dir, texts_file, args)
    print("Ray Serve (" + ", ".join(k for k, _ in SERVICE_VARIANTS) + ", autoscaling) ...", flush=True)
    results.update(bench_service(model_dir, texts_file, args))
    texts_file.unlink(missing_ok=True)
    texts_file.with_suffix(".result.json").unlink(missing_ok=True)

    ceiling = results["offline"]["throughput"]
    rows = [("offline", "offline ceiling (length-sorted batches of 64)"),
            ("served32_padded", "offline, arrival-order batches of 32, padded"),
            ("served32_split", "offline, arrival-order 32s, padding-aware cut"),
            ("plain", "plain FastAPI + uvicorn, model per request"),
            ("serve_batch1", "Serve 1x2 threads, max_batch_size 1"),
            ("serve_rbatch", "Serve 1x2 threads, @serve.batch 32"),
            ("serve_batched", "Serve 1x2 threads, greedy batcher 32"),
            ("serve_batch1_2r", "Serve 2 replicas x1 thread, batch 1"),
            ("serve_batched_2r", "Serve 2 replicas x1 thread, greedy 32")]
    print(f"\n{args.requests} texts in requests of {args.texts_per_request}, {args.concurrency} concurrent clients, "
          f"{args.threads} torch threads, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<46} {'texts/s':>8} {'x ceil':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'client CPU ms/req':>17} {'load 1m':>11}")
    for key, label in rows:
        if key not in results:
            continue
        r = results[key]
        print(f"{label:<46} {r['throughput']:8.1f} {r['throughput'] / ceiling:7.2f} "
              f"{r.get('p50_ms', float('nan')):8.0f} {r.get('p95_ms', float('nan')):8.0f} "
              f"{r.get('p99_ms', float('nan')):8.0f} {r['errors']:6d} "
              f"{r.get('client_cpu_ms_per_request', float('nan')):17.2f} "
              f"{r['loadavg_1m'][0]:5.1f}-{r['loadavg_1m'][1]:<5.1f}")
    plain_tp = results["plain"]["throughput"] if "plain" in results else float("nan")
    for key in ("serve_rbatch", "serve_batched", "serve_batched_2r"):
        if key not in results:
            continue
        b = results[key]
        print(f"{key} vs plain: {b['throughput'] / max(plain_tp, 1e-9):.2f}x; "
              f"vs offline ceiling: {b['throughput'] / ceiling:.2f}; "
              f"mean batch {b['mean_batch']:.1f}; batch sizes {dict(sorted(b['batch_sizes'].items()))}")
    if "autoscale" in results:
        a = results["autoscale"]
        print(f"autoscale 1..2: peak {a['peak_replicas']} replicas (first at {a['first_upscale_s']} s), "
              f"load ended {a['load_end_s']} s, back to 1 at {a['back_to_1_s']} s; "
              f"{a['load']['throughput']:.1f} texts/s, p99 {a['load']['p99_ms']:.0f} ms, "
              f"errors {a['load']['errors']}")
    meta = {"requests": args.requests, "texts_per_request": args.texts_per_request, "concurrency": args.concurrency, "threads": args.threads,
            "model_dir": model_dir, "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_avg_end": os.getloadavg(), "wall_s": time.time() - t_start}
    out_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
