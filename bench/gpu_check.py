"""GPU check, prepared for when a GPU machine is lent: batched vs unbatched, fp32 vs fp16/bf16.

    .venv/bin/python bench/gpu_check.py [--model DIR] [--rows 4000] [--unbatched-rows 500]

Well under 5 minutes on one GPU (MiniLM-L6: a few seconds per mode). On the same Davidson
tweets (../shared/data/davidson-hate-offensive; a fixed phrase list when absent), the model
scores texts in length-sorted batches of 64 (``Predictor``) and one at a time, in fp32 and in
half precision (weights cast to fp16, and Predictor's bf16 autocast), and reports texts/s, the
speed-up of batching and of half precision, and max |score - fp32 score|. Without CUDA it says
so and exits 0 (``--cpu`` runs the same code on the CPU, a smoke test of the script).
Prints one table and writes bench/results/gpu_check.json.
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def texts(n: int) -> list[str]:
    if DATA.is_file():
        import pandas as pd

        t = pd.read_csv(DATA, usecols=["tweet"])["tweet"].astype(str).tolist()
    else:
        t = ["you are great", "go away, nobody wants you here", "what a lovely day in the park"]
    return [t[i % len(t)] for i in range(n)]


def timed(fn, sync) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model dir (fp32); default: packaged MiniLM")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--unbatched-rows", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (smoke test of this script)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_check.json"))
    args = ap.parse_args()
    import numpy as np
    import torch

    from debias.evaluation.predict import Predictor
    from debias.training.model import default_model_dir

    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device (torch.cuda.is_available() is False): GPU check skipped; --cpu for a smoke run")
        return 0
    device = "cpu" if args.cpu else "cuda"
    model_dir = args.model or default_model_dir()
    batched, single = texts(args.rows), texts(args.unbatched_rows)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows, ref = [], {}
    for precision in ("fp32", "fp16", "bf16-autocast"):
        if device == "cpu" and precision != "fp32":
            continue  # half precision on this CPU path is not what the check is for
        p = Predictor(model_dir, batch_size=args.batch_size, device=device)
        p.autocast = precision == "bf16-autocast"  # fp32 and fp16: the weights' own dtype
        if precision == "fp16":
            p.model.half()

        def run(ts, bs, _p=p):
            _p.batch_size = bs
            return _p.predict_texts(ts)

        run(batched[:256], args.batch_size)  # warm-up (CUDA context, kernels)
        for mode, ts, bs in (("batched", batched, args.batch_size), ("unbatched", single, 1)):
            secs, s = timed(lambda ts=ts, bs=bs: run(ts, bs), sync)
            key = (mode,)
            if precision == "fp32":
                ref[key] = s
            drift = float(np.abs(np.asarray(s) - ref[key]).max()) if key in ref else float("nan")
            rows.append({"precision": precision, "mode": mode, "rows": len(ts), "seconds": round(secs, 3),
                         "texts_per_s": round(len(ts) / secs, 1), "max_abs_diff_vs_fp32": drift})
        del p
    base = {r["mode"]: r["texts_per_s"] for r in rows if r["precision"] == "fp32"}
    print(f"\nGPU check on {torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'}, {model_dir}")
    print(f"{'precision':<16}{'mode':<11}{'rows':>6}{'texts/s':>10}{'vs fp32':>9}{'max|d|':>9}")
    for r in rows:
        print(f"{r['precision']:<16}{r['mode']:<11}{r['rows']:>6}{r['texts_per_s']:>10.1f}"
              f"{r['texts_per_s'] / base[r['mode']]:>8.2f}x{r['max_abs_diff_vs_fp32']:>9.4f}")
    b = {(r["precision"], r["mode"]): r["texts_per_s"] for r in rows}
    print(f"batching speed-up (fp32): {b[('fp32', 'batched')] / b[('fp32', 'unbatched')]:.1f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": device, "model_dir": model_dir, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
