"""A small OpenAI-compatible HTTP server around a local causal LM (tests, benchmarks, demos).

Implements the two routes the audit's :class:`debias.lm.endpoint.EndpointClient` uses:
``POST /v1/completions`` (``echo`` + ``logprobs`` with ``max_tokens=0`` for scoring; otherwise
a plain continuation) and ``POST /v1/chat/completions``; plus ``GET /v1/models`` and
``GET /stats`` (requests served per route, so a test can prove that a cached re-run sends none).
One forward pass at a time (a lock): it is a reference server, not a fast one.

    python -m debias.lm.openai_server --model smollm2 --port 8011
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from typing import Any

__all__ = ["build_app", "serve_in_thread"]


def build_app(model: Any = None, *, model_name: str = "local", fail_first: int = 0) -> Any:
    """A FastAPI app serving ``model`` (a dir, ``"smollm2"`` or a ``(model, tokenizer)`` pair).

    ``fail_first``: answer the first N requests with HTTP 503 (to test client retries).
    """
    import torch
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse

    from debias.lm.scorer import LMGenerator, LMScorer, token_logprobs

    scorer = LMScorer(model)
    pair = (scorer.model, scorer.tokenizer)
    tok = scorer.tokenizer
    lock = threading.Lock()
    counts: Counter = Counter()
    failures = {"left": fail_first}
    app = FastAPI(title="debias test LLM server")

    def _maybe_fail(route: str) -> JSONResponse | None:
        counts[route] += 1
        if failures["left"] > 0:
            failures["left"] -= 1
            return JSONResponse({"error": "injected failure"}, status_code=503)
        return None

    def _echo_logprobs(prompt: str) -> dict:
        enc = tok(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids = [scorer.start_id, *enc.input_ids]
        t = torch.tensor([ids])
        with lock:
            lp = token_logprobs(scorer.model, t, torch.ones_like(t))[0].tolist()
        tokens = [prompt[a:b] for a, b in enc.offset_mapping]
        return {"tokens": tokens, "token_logprobs": lp, "text_offset": [a for a, _ in enc.offset_mapping],
                "top_logprobs": None}

    def _generate(prompts: list[str], body: dict, chat: bool) -> tuple[list[str], list[int]]:
        gen = LMGenerator(pair, batch_size=8, max_new_tokens=int(body.get("max_tokens") or 16),
                          temperature=float(body.get("temperature") or 0.0), top_p=float(body.get("top_p") or 1.0),
                          seed=int(body.get("seed") or 0), chat=chat)
        with lock:
            res = gen.generate(prompts)
        return res["completion"].tolist(), res["n_generated"].astype(int).tolist()

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model"}]}

    @app.get("/stats")
    def stats() -> dict:
        return dict(counts)

    @app.post("/v1/completions")
    def completions(body: dict) -> Any:
        if (fail := _maybe_fail("completions")) is not None:
            return fail
        prompts = body.get("prompt")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise HTTPException(400, "prompt must be a string or a list of strings")
        max_tokens = int(body.get("max_tokens", 16) or 0)
        choices = []
        if max_tokens == 0:
            for i, p in enumerate(prompts):
                choices.append({"index": i, "text": p if body.get("echo") else "", "finish_reason": "length",
                                "logprobs": _echo_logprobs(p) if body.get("logprobs") is not None else None})
            used = 0
        else:
            texts, n = _generate(prompts, body, chat=False)
            choices = [{"index": i, "text": t, "finish_reason": "stop", "logprobs": None} for i, t in enumerate(texts)]
            used = sum(n)
        return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "model": model_name,
                "choices": choices, "usage": {"completion_tokens": used}}

    @app.post("/v1/chat/completions")
    def chat_completions(body: dict) -> Any:
        if (fail := _maybe_fail("chat")) is not None:
            return fail
        msgs = body.get("messages") or []
        user = [m.get("content", "") for m in msgs if m.get("role") == "user"]
        if not user:
            raise HTTPException(400, "messages needs at least one user message")
        texts, n = _generate([user[-1]], body, chat=True)
        return {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": texts[0]},
                             "finish_reason": "stop"}],
                "usage": {"completion_tokens": n[0]}}

    return app


def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, threading.Thread, int]:
    """Start uvicorn in a daemon thread; ``(server, thread, port)``. Stop: ``server.should_exit = True``."""
    import socket

    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError(f"the test LLM server did not start on {host}:{port}")
        time.sleep(0.05)
    return server, thread, port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--name", default="local")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8011)
    a = p.parse_args(argv)
    import uvicorn

    uvicorn.run(build_app(a.model, model_name=a.name), host=a.host, port=a.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
