"""The endpoint client against a real OpenAI-compatible HTTP server on 127.0.0.1 (tiny Llama)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from debias.lm.endpoint import EndpointClient, EndpointError
from debias.lm.openai_server import build_app, serve_in_thread
from debias.lm.scorer import LMScorer

PREFIXES = ["", "The question was", ""]
TEXTS = ["the nurse said hello", " who came first", "a doctor walked home"]


@pytest.fixture(scope="module")
def server(tiny_llama_dir):
    srv, thread, port = serve_in_thread(build_app(str(tiny_llama_dir), model_name="tiny", fail_first=2))
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def _stats(url):
    return httpx.get(f"{url}/stats").json()


def test_scores_match_local_scorer_retries_and_cache(server, tiny_llama_dir, tmp_path):
    c = EndpointClient(f"{server}/v1", "tiny", cache_dir=tmp_path / "cache", backoff_s=0.01, concurrency=2)
    got = c.score_pairs(PREFIXES, TEXTS)       # the server fails its first 2 requests: retried
    assert c.stats.retries == 2 and c.stats.failed == 0
    local = LMScorer(str(tiny_llama_dir)).score_pairs(PREFIXES, TEXTS)
    # the server tokenises prefix+text together; these texts split at a word boundary, as locally
    np.testing.assert_allclose(got["logprob_sum"], local["logprob_sum"], rtol=1e-4, atol=1e-4)
    assert got["n_tokens"].tolist() == local["n_tokens"].tolist()
    gen = c.generate(["Tell me about nurses", "Hello"], max_tokens=5)
    assert len(gen) == 2 and (gen["n_generated"] <= 5).all()
    before = _stats(server)
    # a second client on the same cache (an interrupted audit re-run) asks nothing
    c2 = EndpointClient(f"{server}/v1", "tiny", cache_dir=tmp_path / "cache")
    again = c2.score_pairs(PREFIXES, TEXTS)
    gen2 = c2.generate(["Tell me about nurses", "Hello"], max_tokens=5)
    assert c2.stats.sent == 0 and c2.stats.cache_hits == 5
    assert _stats(server) == before
    assert again.equals(got) and gen2.equals(gen)
    # different parameters are a different key
    c2.generate(["Hello"], max_tokens=4)
    assert c2.stats.sent == 1


def test_client_errors(server, tmp_path):
    c = EndpointClient(f"{server}/v1", "tiny", max_retries=1, backoff_s=0.01, timeout_s=5)
    with pytest.raises(EndpointError, match="HTTP 4"):
        c._run("/completions", [{"prompt": 3, "max_tokens": 0}])
    dead = EndpointClient("http://127.0.0.1:9/v1", "tiny", max_retries=1, backoff_s=0.01, timeout_s=1)
    with pytest.raises(EndpointError, match="after 2 attempts"):
        dead.score_pairs([""], ["x"])
    with pytest.raises(ValueError, match="concurrency"):
        EndpointClient("http://x", "m", concurrency=0)
