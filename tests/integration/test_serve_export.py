"""An int8 export behind the same Serve API, scored through real HTTP on a local Ray.

The oracle is the same export loaded outside Serve (``Predictor``) on the same cleaned texts
in the same batches: dynamic int8 quantises activations per batch, so a text's score depends
on its batch mates, and the comparison is exact only batch for batch. A random tiny BERT scores
every text at about 0.5, so its head is scaled up here: the int8 and fp32 scores then differ by
~0.01, and a service that had loaded the fp32 weights instead would fail the check.
"""

from __future__ import annotations

import socket
import time

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration

TEXTS = ["My sister is a nurse.", "The woman spoke to the man.", "He is a muslim teacher.",
         "what a lovely day", "Old people and young people.", "she is gay and proud",
         "go away you idiot", "what a terrible, terrible idea that was and it is long long long"]
MAX_BATCH = 8
HEAD_SCALE = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from debias.serving.export import export_optimized

    root = tmp_path_factory.mktemp("serve-export")
    model = BertForSequenceClassification.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.classifier.weight.mul_(HEAD_SCALE)
    model.save_pretrained(root / "fp32")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(root / "fp32")
    return {"fp32": root / "fp32", "int8": export_optimized(root / "fp32", root / "int8", method="int8")}


@pytest.fixture(scope="module")
def cfg(models):
    from debias.config import load_config

    serve_cfg = {"model": str(models["int8"]), "port": _free_port(), "max_batch_size": MAX_BATCH,
                 "batch_wait_timeout_s": 0.05, "max_ongoing_requests": 64, "min_replicas": 1,
                 "max_replicas": 1, "num_cpus_per_replica": 0.5, "torch_threads": 1,
                 "monitor_window": 1000, "monitor_min_count": 1}
    return load_config(base={"data": {"path": "unused-by-serve"}, "serve": serve_cfg})


@pytest.fixture(scope="module")
def client(ray_local, cfg):
    from ray import serve

    from jobs.serve import run

    run(cfg, None, blocking=False)
    with httpx.Client(base_url=f"http://127.0.0.1:{cfg.serve.port}", timeout=60.0) as c:
        yield c
    serve.shutdown()


@pytest.fixture(scope="module")
def oracle(cfg, models):
    from debias.corpus.clean import clean_texts
    from debias.evaluation.predict import Predictor

    texts = clean_texts(TEXTS, params=cfg.clean)
    int8 = Predictor(models["int8"], batch_size=MAX_BATCH, num_threads=1)
    fp32 = Predictor(models["fp32"], batch_size=MAX_BATCH, num_threads=1)
    return {"single": np.array([int8.predict_texts([t])[0] for t in texts]),
            "batch": int8.predict_texts(texts),
            "fp32_single": np.array([fp32.predict_texts([t])[0] for t in texts])}


def _batch_sizes(client) -> dict[str, int]:
    r = client.get("/v1/monitor")
    assert r.status_code == 200, r.text
    return r.json()["batch_sizes"]


def test_the_service_reports_the_export(client, models):
    import json

    card = json.loads((models["int8"] / "model_card.json").read_text())
    body = client.get("/v1/model").json()
    assert body["model_version"] == card["version"] and body["model_version"].endswith("+int8")


def test_single_text_requests_score_as_the_int8_model(client, oracle):
    assert np.abs(oracle["single"] - oracle["fp32_single"]).max() > 1e-3  # the check can tell them apart
    got = []
    for t in TEXTS:  # one at a time: each request is a batch of one, as in the oracle
        r = client.post("/v1/classify", json={"texts": [t]})
        assert r.status_code == 200, r.text
        got.append(r.json()["scores"][0])
    np.testing.assert_allclose(got, oracle["single"], atol=1e-6)


def test_a_texts_list_is_one_batch_scored_as_the_int8_model(client, oracle):
    before = _batch_sizes(client)
    r = client.post("/v1/classify", json={"texts": TEXTS})
    assert r.status_code == 200, r.text
    body = r.json()
    np.testing.assert_allclose(body["scores"], oracle["batch"], atol=1e-6)
    assert body["labels"] == [int(s >= body["threshold"]) for s in body["scores"]]
    deadline = time.monotonic() + 30
    while (after := _batch_sizes(client)).get(str(len(TEXTS)), 0) <= before.get(str(len(TEXTS)), 0):
        assert time.monotonic() < deadline, f"no batch of {len(TEXTS)} in the monitor: {after}"
        time.sleep(0.2)
