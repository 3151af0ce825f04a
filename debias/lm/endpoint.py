"""A client for OpenAI-compatible LLM servers (vLLM, TGI, a Ray Serve LLM app), with a disk cache.

* scoring: ``POST /v1/completions`` with ``echo=true, logprobs=1, max_tokens=0`` returns the
  prompt's token log-probabilities (vLLM and our test server support it; many hosted APIs do
  not). The text's log-likelihood is the sum over tokens that end after the prefix. Servers
  give the first prompt token no log-probability (``null``); such tokens are not counted.
* generation: ``POST /v1/chat/completions`` (one user turn), with ``seed`` where the server
  honours it.

Requests run on asyncio with at most ``concurrency`` in flight, a per-request timeout, and
retries with exponential backoff on transport errors, 429 and 5xx. Every response is cached on
disk under a key of (base_url, path, model, payload), written atomically, so an interrupted
audit re-run asks only what it had not asked yet (``stats.sent`` counts real requests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ResponseCache", "EndpointClient", "EndpointError", "ClientStats"]


class EndpointError(RuntimeError):
    """A request that failed after every retry (status and body in the message)."""


class ResponseCache:
    """JSON responses on disk, one file per key (``<dir>/<k[:2]>/<k>.json``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):  # a torn write from a killed run: ask again
            return None

    def put(self, key: str, value: Any) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f)
        os.replace(tmp, p)


@dataclass
class ClientStats:
    sent: int = 0
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0


class EndpointClient:
    """Async OpenAI-compatible client: :meth:`score_pairs` and :meth:`generate` (sync wrappers).

    Parameters
    ----------
    base_url : e.g. ``http://127.0.0.1:8000/v1``.
    model : the ``model`` field of each request.
    cache_dir : response cache folder (None: no cache).
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 4, backoff_s: float = 0.5,
                 cache_dir: str | Path | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1; found {concurrency}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.stats = ClientStats()

    async def _post(self, client: Any, sem: asyncio.Semaphore, path: str, payload: dict) -> dict:
        import httpx

        key = ResponseCache.key(self.base_url, path, self.model, payload)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit
        body = {"model": self.model, **payload}
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                async with sem:
                    self.stats.sent += 1
                    r = await client.post(f"{self.base_url}{path}", json=body)
            except (httpx.TransportError, httpx.TimeoutException) as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code >= 400:
                self.stats.failed += 1
                raise EndpointError(f"POST {path} -> HTTP {r.status_code}: {r.text[:300]}")
            out = r.json()
            if self.cache is not None:
                self.cache.put(key, out)
            return out
        self.stats.failed += 1
        raise EndpointError(f"POST {path} failed after {self.max_retries + 1} attempts; last error: {last}")

    async def _gather(self, path: str, payloads: Sequence[dict]) -> list[dict]:
        import httpx

        sem = asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=headers, limits=limits) as client:
            return await asyncio.gather(*(self._post(client, sem, path, p) for p in payloads))

    def _run(self, path: str, payloads: Sequence[dict]) -> list[dict]:
        return asyncio.run(self._gather(path, payloads))

    def score_pairs(self, prefixes: Sequence[str], texts: Sequence[str]) -> pd.DataFrame:
        """``logprob_sum, logprob_mean, n_tokens`` of each text given its prefix (echo + logprobs)."""
        prefixes = [p or "" for p in prefixes]
        payloads = [{"prompt": p + t, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0.0}
                    for p, t in zip(prefixes, texts, strict=True)]
        res = self._run("/completions", payloads)
        sums, ns = [], []
        for p, r in zip(prefixes, res, strict=True):
            lp = r["choices"][0]["logprobs"]
            total, n = 0.0, 0
            for tok, v, off in zip(lp["tokens"], lp["token_logprobs"], lp["text_offset"], strict=True):
                if v is None or off + len(tok) <= len(p):
                    continue
                total += float(v)
                n += 1
            sums.append(total)
            ns.append(n)
        s, n = np.asarray(sums, float), np.asarray(ns, np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        return pd.DataFrame({"logprob_sum": s, "logprob_mean": mean, "n_tokens": n})

    def generate(self, prompts: Sequence[str], *, max_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0) -> pd.DataFrame:
        """``completion, n_generated`` per prompt via chat completions."""
        payloads = [{"messages": [{"role": "user", "content": p}], "max_tokens": max_tokens,
                     "temperature": temperature, "top_p": top_p, "seed": seed} for p in prompts]
        res = self._run("/chat/completions", payloads)
        comps = [(r["choices"][0]["message"]["content"] or "").strip() for r in res]
        ntok = [int((r.get("usage") or {}).get("completion_tokens", 0)) for r in res]
        return pd.DataFrame({"completion": comps, "n_generated": ntok})
