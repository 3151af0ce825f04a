"""The Serve application through real HTTP on a local Ray, with the tiny random BERT.

One ``serve.run`` for the whole module (startup costs seconds); tests read deltas of the
service-wide monitor, so their order does not matter, except that the replica-kill test runs
last. The monitor is updated after a response is sent, so counts are polled until they settle.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration

APP = "debias"  # the name `debias serve` deploys under
MAX_TEXTS = 16
MAX_CHARS = 200
MAX_BODY = 64 * 1024
MAX_VARIANTS = 12
CARD = {"version": "tiny-test-1", "class_names": ["fine", "abusive"], "training_data": {"rows": 10, "source": "unit fixture",
                                                   "path": "/home/someone/private/corpus.csv"},
        "plots": {"pareto": "data:image/png;base64,iVBORw0KGgo="},
        "losses": [{"name": "cross_entropy", "weight": 1.0}],
        "val_fairness": {"selection_rate_difference": 0.12}}
GROUP_TEXTS = ["My sister is a nurse.", "The woman spoke to the man.", "He is a muslim teacher.",
               "what a lovely day", "Old people and young people.", "she is gay and proud"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, what: str, timeout_s: float = 60.0, every_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory) -> Path:
    rd = tmp_path_factory.mktemp("run")
    shutil.copytree(tiny_model_dir, rd / "train" / "model")
    (rd / "train" / "model" / "model_card.json").write_text(json.dumps(CARD))
    return rd


# Larger than every text this module sends (the soak included), so the window never rolls and
# test_monitor_counts_add_up can count its own texts in it; rolling is tested in test_monitor.py.
MONITOR_WINDOW = 1_000_000


@pytest.fixture(scope="module")
def cfg(run_dir):
    from debias.config import load_config

    serve_cfg = {"port": _free_port(), "max_batch_size": 8, "batch_wait_timeout_s": 0.05,
                 "max_ongoing_requests": 64, "min_replicas": 1, "max_replicas": 1,
                 "num_cpus_per_replica": 0.5, "torch_threads": 1, "max_texts": MAX_TEXTS,
                 "max_chars": MAX_CHARS, "monitor_window": MONITOR_WINDOW, "monitor_min_count": 1,
                 "max_body_bytes": MAX_BODY, "max_variants": MAX_VARIANTS, "auth_token_env": None}
    return load_config(base={"data": {"path": "unused-by-serve"}, "serve": serve_cfg})


@pytest.fixture(scope="module")
def settings(cfg, run_dir):
    from serve.app import settings_from_pipeline

    return settings_from_pipeline(cfg, run_dir)


@pytest.fixture(scope="module")
def url(ray_local, cfg, run_dir):
    """`debias serve` without blocking: the model comes from RUN_DIR/train/model."""
    from ray import serve

    from jobs.serve import run

    run(cfg, str(run_dir), blocking=False)
    yield f"http://127.0.0.1:{cfg.serve.port}"
    serve.shutdown()


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=60.0) as c:
        yield c


@pytest.fixture(scope="module")
def offline(settings):
    """The same model, cleaning and lexicons outside Serve: the oracle for the service."""
    from debias.corpus.clean import clean_texts
    from debias.evaluation.predict import Predictor
    from debias.identity.annotate import IdentityAnnotator
    from debias.identity.lexicon import load_lexicon
    from debias.identity.swaps import available_swap_axes, load_swaps

    axes = settings.annotate.axes
    lex = load_lexicon(axes)
    swaps = load_swaps([a for a in axes if a in available_swap_axes()])
    return {"predictor": Predictor(settings.model_dir, batch_size=8, num_threads=1),
            "clean": lambda ts: clean_texts(ts, params=settings.clean),
            "annotator": IdentityAnnotator(lex), "lexicon": lex, "swaps": swaps}


def _snapshot(client, path: str = "/v1/monitor") -> dict:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.json()


def _quiet_snapshot(client) -> dict:
    """A snapshot once the monitor has stopped changing: replicas send their decisions every
    MONITOR_FLUSH_S, so an earlier test's last batch may still be on its way."""
    from serve.app import MONITOR_FLUSH_S

    prev = _snapshot(client)
    while True:
        time.sleep(3 * MONITOR_FLUSH_S)
        cur = _snapshot(client)
        if cur["texts_total"] == prev["texts_total"] and cur["batch_sizes"] == prev["batch_sizes"]:
            return cur
        prev = cur


def _settled(client, key, target, path: str = "/v1/monitor") -> dict:
    return _wait(lambda: (s := _snapshot(client, path)) and key(s) >= target and s, f"monitor {target}")


def test_model_dir_resolution_errors_name_the_fix(tmp_path, tiny_model_dir):
    from debias.config import ServeConfig
    from serve.app import resolve_model_dir

    with pytest.raises(ValueError, match="set serve.model"):
        resolve_model_dir(ServeConfig(), None)
    with pytest.raises(ValueError, match="no trained model at"):
        resolve_model_dir(ServeConfig(), tmp_path)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(tiny_model_dir / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="safetensors"):
        resolve_model_dir(ServeConfig(model=str(pickled)), None)
    assert resolve_model_dir(ServeConfig(model=str(tiny_model_dir)), tmp_path) == str(tiny_model_dir.resolve())


def test_build_app_refuses_unknown_arguments(tiny_model_dir):
    from serve.app import build_app

    with pytest.raises(ValueError, match="unknown argument"):
        build_app({"model": str(tiny_model_dir), "batch": 3})
    with pytest.raises(ValueError, match="max_ongoing_requests"):
        build_app({"model": str(tiny_model_dir), "max_batch_size": "64", "max_ongoing_requests": "5"})
    assert build_app({"model": str(tiny_model_dir), "threshold": "0.3"}) is not None


def test_health_and_model_card(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    m = client.get("/v1/model").json()
    assert m["model_version"] == "tiny-test-1"
    # the card as stored, less what would leak the serving machine's layout or embed files
    assert m["card"]["training_data"] == {**CARD["training_data"], "path": "corpus.csv"}
    assert m["card"]["plots"] == {"pareto": "(data URI omitted)"}
    assert m["card"]["val_fairness"] == CARD["val_fairness"] and "/home" not in r.text + json.dumps(m)


def test_classify_matches_offline_model(client, offline, settings):
    texts = ["you are wonderful", "<b>go away</b> http://x.example", "", "a" * MAX_CHARS]
    r = client.post("/v1/classify", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = offline["predictor"].predict_texts(offline["clean"](texts))
    np.testing.assert_allclose(body["scores"], expected, atol=1e-5)
    assert body["labels"] == [int(s >= settings.serve.threshold) for s in body["scores"]]
    assert body["label_names"] == [["fine", "abusive"][y] for y in body["labels"]]  # the card's names
    assert body["model_version"] == "tiny-test-1"
    # binary: probabilities beside the unchanged fields; scores are P(class 1) exactly
    assert [p[1] for p in body["probabilities"]] == body["scores"]
    np.testing.assert_allclose(np.sum(body["probabilities"], axis=1), 1.0, atol=1e-6)
    assert body["class_names"] == ["fine", "abusive"] and body["score_class"] == "abusive"
    assert body["threshold"] == settings.serve.threshold and body["decision_rule"] == "threshold"


def test_text_pairs_are_scored_as_pairs_and_swapped_together(client, offline):
    from debias.serving.counterfactual import pair_variants

    texts = ["the woman fixed the car", "<b>what a day</b>", "he is a teacher"]
    pairs = ["a man fixed a car", "it rained  all day", "the muslim teacher"]
    r = client.post("/v1/classify", json={"texts": texts, "text_pairs": pairs})
    assert r.status_code == 200, r.text
    want = offline["predictor"].predict_texts(offline["clean"](texts), offline["clean"](pairs))
    np.testing.assert_allclose(r.json()["scores"], want, atol=1e-5)
    assert not np.allclose(want, offline["predictor"].predict_texts(offline["clean"](texts)), atol=1e-6)
    r = client.post("/v1/counterfactual", json={"text": texts[0], "text_pair": pairs[0]})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = pair_variants(texts[0], pairs[0], lexicon=offline["lexicon"], table=offline["swaps"])
    assert [(v["text"], v["text_pair"]) for v in body["variants"]] == [(v["text"], v["text_pair"]) for v in expected]
    scores = offline["predictor"].predict_texts([texts[0]] + [v["text"] for v in expected],
                                                [pairs[0]] + [v["text_pair"] for v in expected])
    assert body["score"] == pytest.approx(scores[0], abs=1e-5)
    np.testing.assert_allclose([v["score"] for v in body["variants"]], scores[1:], atol=1e-5)
    assert {"female", "male"} <= set(body["groups"])


BAD = [
    (b'{"texts": []}', 422, "at least 1 text"),
    (json.dumps({"texts": ["x"] * (MAX_TEXTS + 1)}).encode(), 413, f"at most {MAX_TEXTS} texts"),
    (json.dumps({"texts": ["ok", "y" * (MAX_CHARS + 1)]}).encode(), 413, "texts[1]: at most"),
    (b'{"texts": ["fine", 5]}', 422, "texts[1]"),
    (b'{"texts": [null]}', 422, "texts[0]"),
    (b'{"texts": "one string"}', 422, "texts"),
    (b'{"txts": ["a"]}', 422, "texts: required"),
    (b'{"texts": ["a"], "extra": 1}', 422, "extra: unknown field"),
    (b'{"texts": ["a", "b"], "text_pairs": ["x"]}', 422, "text_pairs: expected one entry per text (2); found 1"),
    (b'{"texts": ["a"], "text_pairs": [3]}', 422, "text_pairs[0]"),
    (json.dumps({"texts": ["a", "b"], "text_pairs": ["x", "y" * (MAX_CHARS + 1)]}).encode(), 413,
     "text_pairs[1]: at most"),
    (b'["a", "b"]', 422, "body"),
    (b'{"texts": ["a"', 400, "not valid JSON"),
    (b"", 422, "required"),
]


@pytest.mark.parametrize("body,status,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_a_4xx_that_says_what_is_wrong(client, body, status, message):
    r = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_bad_input_leaves_the_replica_serving_and_is_counted(client):
    before = sum(_quiet_snapshot(client)["rejects"].values())
    for body, _, _ in BAD:
        client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    r = client.post("/v1/counterfactual", json={"text": 3})
    assert r.status_code == 422 and "text" in r.json()["error"]
    r = client.post("/v1/counterfactual", json={"text": "z" * (MAX_CHARS + 1)})
    assert r.status_code == 413
    _settled(client, lambda s: sum(s["rejects"].values()), before + len(BAD) + 2)
    assert client.post("/v1/classify", json={"texts": ["still here"]}).status_code == 200


LIMITS = [  # (body, content type, status, reason, words the message must hold)
    (b"x" * (MAX_BODY + 1), "application/json", 413, "body_too_large", "larger than"),
    (b'{"texts": ["a"]}', "text/plain", 415, "unsupported_media_type", "must be JSON"),
    (b'{"texts": ["a"]}', None, 415, "unsupported_media_type", "must be JSON"),
    (b'{"texts": ["caf\xe9"]}', "application/json", 400, "not_utf8", "UTF-8"),
    (b"[" * 100 + b"]" * 100, "application/json", 400, "too_deep", "deeper than"),
    (b'{"texts": [' + b"9" * 5000 + b"]}", "application/json", 400, "number_too_long", "digits"),
]


@pytest.mark.parametrize("body,ctype,status,reason,words", LIMITS, ids=[r for *_, r, _ in LIMITS])
def test_service_limits_refuse_before_parsing_and_count_the_reason(client, body, ctype, status, reason, words):
    before = _quiet_snapshot(client)["rejects"].get(reason, 0)
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/v1/classify", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and len(r.content) < 300  # short, and no echo of the body
    _settled(client, lambda s: s["rejects"].get(reason, 0), before + 1)


def test_a_chunked_body_over_the_cap_is_cut_off_while_reading(client):
    def chunks():  # no Content-Length: the cap is enforced on the bytes as they arrive
        yield b'{"texts": ["'
        for _ in range(MAX_BODY // 1024 + 8):
            yield b"a" * 1024
        yield b'"]}'

    r = client.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]


def test_error_details_are_capped(client):
    r = client.post("/v1/classify", json={"texts": list(range(MAX_TEXTS * 10))})
    assert r.status_code == 422
    body = r.json()
    assert len(body["details"]) == 21 and body["details"][-1] == {"loc": "body", "type": "truncated",
                                                                  "more": MAX_TEXTS * 10 - 20}
    assert "more)" in body["error"] and len(r.content) < 4000


def test_unknown_routes_and_methods_are_counted_4xx_in_the_error_shape(client):
    before = _quiet_snapshot(client)["rejects"]
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and "no endpoint" in r.json()["error"]
    r = client.get("/v1/classify")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]
    _settled(client, lambda s: s["rejects"].get("not_found", 0), before.get("not_found", 0) + 1)
    _settled(client, lambda s: s["rejects"].get("method_not_allowed", 0), before.get("method_not_allowed", 0) + 1)


def test_counterfactual_variants_are_capped(client, offline):
    from debias.identity.swaps import counterfactual_variants

    text = ("The Muslim woman, the Christian man, the Jewish girl, the gay boy and the old lady "
            "met the Hindu priest.")
    n = len(counterfactual_variants(offline["clean"]([text])[0], lexicon=offline["lexicon"],
                                    table=offline["swaps"]))
    assert n > MAX_VARIANTS
    r = client.post("/v1/counterfactual", json={"text": text})
    assert r.status_code == 413 and f"at most {MAX_VARIANTS} counterfactual variants" in r.json()["error"]
    assert "Muslim" not in r.text


def test_bearer_token_auth_as_a_second_application(url, settings, ray_local, monkeypatch):
    """A token in $DEBIAS_API_TOKEN at deploy time: every endpoint but /healthz needs it."""
    from ray import serve

    from serve.app import auth_digest, build_application

    monkeypatch.setenv("DEBIAS_API_TOKEN", "tok-" + "x" * 40)
    cfg2 = settings.serve.model_copy(update={"auth_token_env": "DEBIAS_API_TOKEN"})
    s2 = settings.model_copy(update={"serve": cfg2, "auth_digest": auth_digest(cfg2)})
    assert s2.auth_digest and "tok-" not in json.dumps(s2.model_dump())  # the token never travels
    serve.run(build_application(s2), name="auth", route_prefix="/auth")
    try:
        with httpx.Client(base_url=url + "/auth", timeout=60.0) as c:
            assert c.get("/healthz").status_code == 200
            for path, kw in (("/v1/model", None), ("/metrics", None), ("/v1/classify", {"texts": ["hi"]})):
                r = c.post(path, json=kw) if kw else c.get(path)
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
                assert "missing bearer token" in r.json()["error"]
            bad = c.post("/v1/classify", json={"texts": ["hi"]}, headers={"authorization": "Bearer nope"})
            assert bad.status_code == 401 and "invalid" in bad.json()["error"]
            good = c.post("/v1/classify", json={"texts": ["hi"]},
                          headers={"authorization": "Bearer tok-" + "x" * 40})
            assert good.status_code == 200 and len(good.json()["scores"]) == 1
    finally:
        serve.delete("auth")


def _hand_rule():
    """A per-group rule worked by hand: texts about women always positive, texts naming no
    group never, every other group at the pooled threshold 0.5."""
    from debias.evaluation.thresholds import POOLED, GroupRule, GroupThresholds
    from debias.schema import NO_GROUP

    return GroupThresholds(constraint="equal_opportunity", threshold=0.5, source="hand-made", seed=7,
                           rules={"female": GroupRule([float("-inf")], [1.0]),
                                  NO_GROUP: GroupRule([float("inf")], [1.0]),
                                  POOLED: GroupRule([0.5], [1.0])})


def test_class_names_from_the_card_the_config_or_the_default(tmp_path, tiny_model_dir):
    from debias.schema import CLASS_NAMES
    from debias.serving.classes import class_names

    assert class_names(tiny_model_dir, {"class_names": ["neg", "pos"]}) == ["neg", "pos"]
    assert class_names(tiny_model_dir, {}) == list(CLASS_NAMES)  # id2label LABEL_0/LABEL_1 names nothing
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["id2label"] = {"0": "negative", "1": "positive"}
    (model / "config.json").write_text(json.dumps(cfg))
    assert class_names(model, {}) == ["negative", "positive"]


def test_decision_rule_comes_from_the_model_dir_or_the_config(settings, tmp_path):
    from serve.app import decision_rule

    assert decision_rule(settings).rules == {} and decision_rule(settings).threshold == settings.serve.threshold
    model = tmp_path / "model"
    shutil.copytree(settings.model_dir, model)
    _hand_rule().save(model)
    with_rule = settings.model_copy(update={"model_dir": str(model)})
    assert set(decision_rule(with_rule).rules) == set(_hand_rule().rules)
    off = with_rule.model_copy(update={"serve": settings.serve.model_copy(update={"decision_rule": "threshold"})})
    assert decision_rule(off).rules == {}


def test_per_group_thresholds_stored_with_the_model_decide_the_labels(url, settings, offline, ray_local, tmp_path):
    """A model dir holding group_thresholds.json (as `debias evaluate` stores it): served labels
    follow each text's group rule, counterfactual variants are decided by their own groups."""
    from ray import serve

    from serve.app import build_application

    model = tmp_path / "model"
    shutil.copytree(settings.model_dir, model)
    rule = _hand_rule()
    rule.save(model)
    serve.run(build_application(settings.model_copy(update={"model_dir": str(model)})), name="rule",
              route_prefix="/rule")
    try:
        with httpx.Client(base_url=url + "/rule", timeout=60.0) as c:
            texts = ["My sister is a nurse.", "what a lovely day", "He is a muslim teacher.", "she is gay and proud"]
            r = c.post("/v1/classify", json={"texts": texts})
            assert r.status_code == 200, r.text
            body = r.json()
            cleaned = offline["clean"](texts)
            groups = [list(g) for g in offline["annotator"].detect_groups(cleaned)]
            assert "female" in groups[0] and groups[1] == []
            want = rule.predict(np.asarray(body["scores"]), groups, keys=cleaned)
            assert body["labels"] == want.tolist() and body["decision_rule"] == "equal_opportunity"
            assert body["labels"][0] == 1 and body["labels"][1] == 0  # the hand rule, whatever the scores
            m = c.get("/v1/model").json()
            assert m["decision_rule"]["constraint"] == "equal_opportunity" and m["decision_rule"]["source"] == "hand-made"
            cf = c.post("/v1/counterfactual", json={"text": "My sister is a nurse."}).json()
            assert cf["label"] == 1 and cf["variants"]
            v_groups = [list(g) for g in offline["annotator"].detect_groups([v["text"] for v in cf["variants"]])]
            v_want = rule.predict(np.asarray([v["score"] for v in cf["variants"]]), v_groups,
                                  keys=[v["text"] for v in cf["variants"]])
            assert [v["label"] for v in cf["variants"]] == v_want.tolist()
            assert cf["label_flips"] == sum(v["label"] != 1 for v in cf["variants"])
    finally:
        serve.delete("rule")


def _replica_rss(app: str = APP) -> int:
    import psutil
    import ray
    from ray.util.state import list_actors

    # this test's own cluster, by address: other Ray instances may run on the machine
    address = ray.get_runtime_context().gcs_address
    actors = [a for a in list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000)
              if a.class_name == f"ServeReplica:{app}:Classifier"]
    assert len(actors) == 1, [a.class_name for a in actors]
    return psutil.Process(actors[0].pid).memory_info().rss


def test_soak_mixed_valid_and_malformed_requests_from_64_clients(client, url, record_property):
    """A bounded soak: 64 clients for a fixed time; no 5xx, every malformed request counted,
    the replica's memory flat (after a warm-up round of the same mix)."""
    bad = [(b'{"texts": [5]}', "application/json"), (b"[" * 100, "application/json"),
           (b'{"texts": ["a"]}', "text/plain"), (b'{"texts": ["caf\xe9"]}', "application/json"),
           (b"x" * (MAX_BODY + 1), "application/json")]

    async def soak(seconds: float) -> tuple[int, int, list[int]]:
        statuses: list[int] = []
        stop = time.monotonic() + seconds

        async def one_client(k: int, ac: httpx.AsyncClient) -> None:
            i = 0
            while time.monotonic() < stop:
                if (i + k) % 3:  # two valid requests in three
                    r = await ac.post("/v1/classify", json={"texts": [f"client {k} text {i}", "she is here"]})
                else:
                    body, ctype = bad[(i + k) % len(bad)]
                    r = await ac.post("/v1/classify", content=body, headers={"content-type": ctype})
                statuses.append(r.status_code)
                i += 1

        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as ac:
            await asyncio.gather(*(one_client(k, ac) for k in range(64)))
        return sum(s == 200 for s in statuses), sum(400 <= s < 500 for s in statuses), statuses

    asyncio.run(soak(3.0))  # warm-up: allocator pools, tokenizer caches, connection state
    rss0 = _replica_rss()
    before = sum(_quiet_snapshot(client)["rejects"].values())
    ok, refused, statuses = asyncio.run(soak(8.0))
    after = _settled(client, lambda s: sum(s["rejects"].values()), before + refused)
    rss1 = _replica_rss()
    figures = {"ok": ok, "refused": refused, "rss_growth_mib": round((rss1 - rss0) / 2**20, 1)}
    record_property("soak", json.dumps(figures))
    print("soak:", figures)
    assert all(s < 500 for s in statuses) and ok > 0 and refused > 0
    assert sum(after["rejects"].values()) - before == refused  # every malformed request counted, once
    assert rss1 - rss0 < 64 * 2**20, f"replica RSS grew {(rss1 - rss0) / 2**20:.1f} MiB in the soak"


def _fire(url: str, path: str, n: int) -> None:
    """``n`` single-text classify requests at once; all must succeed."""
    async def fire():
        async with httpx.AsyncClient(base_url=url, timeout=60.0) as ac:
            return await asyncio.gather(*(ac.post(path, json={"texts": [f"text number {i}"]})
                                          for i in range(n)))

    assert all(r.status_code == 200 for r in asyncio.run(fire()))


def test_batches_form_under_concurrency(client, url, record_property):
    before = _quiet_snapshot(client)
    n = 48
    _fire(url, "/v1/classify", n)
    after = _settled(client, lambda s: s["texts_total"], before["texts_total"] + n)
    delta = {int(k): v - before["batch_sizes"].get(k, 0) for k, v in after["batch_sizes"].items()}
    delta = {k: v for k, v in delta.items() if v}
    record_property("batch_sizes", json.dumps(delta))
    print("batch sizes seen (size: count):", delta)
    assert sum(k * v for k, v in delta.items()) == n  # every text in exactly one batch
    assert max(delta) > 1 and max(delta) <= 8  # batches formed, capped at max_batch_size


def test_serve_batch_batcher_also_batches(url, settings, ray_local):
    """``serve.batcher=serve_batch`` (Ray's @serve.batch) as a second application beside the first."""
    from ray import serve

    from serve.app import build_application

    s2 = settings.model_copy(update={"serve": settings.serve.model_copy(update={"batcher": "serve_batch"})})
    serve.run(build_application(s2), name="sb", route_prefix="/sb")
    try:
        n = 32
        _fire(url, "/sb/v1/classify", n)
        with httpx.Client(base_url=url, timeout=60.0) as c:
            snap = _settled(c, lambda s: s["texts_total"], n, path="/sb/v1/monitor")
        sizes = {int(k): v for k, v in snap["batch_sizes"].items()}
        assert sum(k * v for k, v in sizes.items()) == n and 1 < max(sizes) <= 8
    finally:
        serve.delete("sb")


def test_monitor_counts_add_up(client, offline, settings):
    before = _quiet_snapshot(client)
    r = client.post("/v1/classify", json={"texts": GROUP_TEXTS})
    assert r.status_code == 200
    labels = r.json()["labels"]
    after = _settled(client, lambda s: s["texts_total"], before["texts_total"] + len(GROUP_TEXTS))
    assert after["texts_total"] == before["texts_total"] + len(GROUP_TEXTS)
    assert after["positives_total"] - before["positives_total"] == sum(labels)
    assert after["counts"]["n"] < MONITOR_WINDOW, "the window rolled: raise MONITOR_WINDOW"
    assert after["counts"]["n"] - before["counts"]["n"] == len(GROUP_TEXTS)
    groups = offline["annotator"].detect_groups(offline["clean"](GROUP_TEXTS))
    assert any(groups), "the fixture texts should mention some identity group"
    expected: dict[str, list[int]] = {}
    for gs, y in zip(groups, labels, strict=True):
        for g in set(gs):
            n, p = expected.get(g, [0, 0])
            expected[g] = [n + 1, p + y]
    for g, (n, p) in expected.items():
        b = before["counts"]["by_group"].get(g, [0, 0])
        a = after["counts"]["by_group"][g]
        assert [a[0] - b[0], a[1] - b[1]] == [n, p], g
    # Decisions per (group, class): binary labels are classes 0/1, counted per group as above.
    for g, (n, p) in expected.items():
        b = before["class_counts"]["by_group"].get(g, [0, 0])
        a = after["class_counts"]["by_group"][g]
        assert [a[0] - b[0], a[1] - b[1]] == [n - p, p], g
    assert [x - y for x, y in zip(after["class_counts"]["overall"], before["class_counts"]["overall"],
                                  strict=True)] == [len(labels) - sum(labels), sum(labels)]
    assert after["classes"] == ["fine", "abusive"] and after["positive_class"] == "abusive"
    # The report's rest is the complement of the group in the window.
    for row in after["groups"]:
        assert row["n"] + row["rest_n"] == after["counts"]["n"]
        assert row["positives"] + row["rest_positives"] == after["counts"]["positives"]


def test_counterfactual_returns_every_variant(client, offline):
    text = "My sister and her husband are Muslim."
    r = client.post("/v1/counterfactual", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    from debias.identity.swaps import counterfactual_variants

    cleaned = offline["clean"]([text])[0]
    expected = counterfactual_variants(cleaned, lexicon=offline["lexicon"], table=offline["swaps"])
    assert len(expected) > 1
    got = [(v["axis"], v["source_group"], v["target_group"], v["text"]) for v in body["variants"]]
    assert got == [(v["axis"], v["source_group"], v["target_group"], v["text"]) for v in expected]
    scores = offline["predictor"].predict_texts([cleaned] + [v["text"] for v in expected])
    assert body["score"] == pytest.approx(scores[0], abs=1e-5)
    np.testing.assert_allclose([v["score"] for v in body["variants"]], scores[1:], atol=1e-5)
    gaps = [v["score"] - body["score"] for v in body["variants"]]
    np.testing.assert_allclose([v["gap"] for v in body["variants"]], gaps, atol=1e-9)
    assert body["max_gap"] == pytest.approx(max(abs(g) for g in gaps))
    assert set(body["groups"]) == set(offline["annotator"].detect_groups([cleaned])[0])


def test_metrics_endpoint_is_prometheus_text(client):
    from prometheus_client.parser import text_string_to_metric_families

    before = _snapshot(client)["texts_total"]
    assert client.post("/v1/classify", json={"texts": GROUP_TEXTS}).status_code == 200
    # Replicas send their decisions to the monitor every MONITOR_FLUSH_S: wait (bounded) until
    # this request's texts have arrived, so the test passes alone as well as after others.
    deadline = time.monotonic() + 30
    while _snapshot(client)["texts_total"] < before + len(GROUP_TEXTS):
        assert time.monotonic() < deadline, "the monitor never counted the request's texts"
        time.sleep(0.2)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    snap = _snapshot(client)
    texts = fams["debias_texts"].samples[0].value
    assert texts <= snap["texts_total"] and texts > 0
    group_texts = {s.labels["group"]: s.value for s in fams["debias_monitor_group_texts"].samples}
    assert set(group_texts) <= set(snap["counts"]["by_group"]) and group_texts
    assert {"debias_monitor_group_alert", "debias_batch_size", "debias_requests_rejected",
            "debias_model_info", "debias_decisions", "debias_monitor_window_class_decisions"} <= set(fams)
    by_class = {(s.labels["group"], s.labels["class"]) for s in fams["debias_monitor_group_class_decisions"].samples}
    assert {c for _, c in by_class} == {"fine", "abusive"} and {g for g, _ in by_class} == set(group_texts)


def test_no_request_text_reaches_the_logs(client, ray_local):
    marker = "zqxmarker" + str(time.time_ns())
    assert client.post("/v1/classify", json={"texts": [f"{marker} she is here"]}).status_code == 200
    assert client.post("/v1/counterfactual", json={"text": f"{marker} he is here"}).status_code == 200
    client.post("/v1/classify", json={"texts": [marker, 7]})  # a rejected body too
    time.sleep(1.0)  # let log files flush
    from ray._private.worker import global_worker

    logs = Path(global_worker.node.get_session_dir_path()) / "logs"
    hits = [p.name for p in logs.rglob("*") if p.is_file()
            and marker in p.read_text(encoding="utf-8", errors="ignore")]
    assert hits == []


@pytest.mark.slow
def test_replica_killed_under_load_recovers_and_failures_are_counted(client, url, ray_local, record_property):
    """Clients keep sending while the only replica is killed: every request is accounted for
    (answered or failed), the failures are reported, and requests after recovery all succeed."""
    import threading

    log: list[tuple[float, float, str]] = []  # (sent, done, outcome) per request
    stop = threading.Event()

    def load(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30.0) as c:
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = c.post("/v1/classify", json={"texts": [f"client {k} request {i}"]})
                    outcome = str(r.status_code)
                except httpx.HTTPError as e:
                    outcome = type(e).__name__
                log.append((t0, time.monotonic(), outcome))
                i += 1

    threads = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(4)]
    for th in threads:
        th.start()
    _wait(lambda: sum(o == "200" for _, _, o in log) >= 20, "load to be answered", timeout_s=60.0)
    old = client.get("/healthz").json()["replica"]
    actor = ray_local.get_actor(f"SERVE_REPLICA::{APP}#Classifier#{old}", namespace="serve")
    t_kill = time.monotonic()
    ray_local.kill(actor, no_restart=True)

    def answered_by_new_replica():
        try:
            r = client.get("/healthz", timeout=5.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json()["replica"] != old

    _wait(answered_by_new_replica, "a new replica", timeout_s=120.0, every_s=0.2)
    t_back = time.monotonic()
    time.sleep(3.0)  # keep the load on after recovery
    stop.set()
    for th in threads:
        th.join(timeout=60.0)
    assert not any(th.is_alive() for th in threads)

    during = [o for s, d, o in log if d >= t_kill and s <= t_back]
    after = [o for s, _, o in log if s > t_back + 0.5]
    failed = [o for o in during if o != "200"]
    summary = {"requests": len(log), "in_flight_or_sent_during_recovery": len(during),
               "failed_during_recovery": len(failed),
               "failure_kinds": {k: failed.count(k) for k in sorted(set(failed))},
               "recovery_s": round(t_back - t_kill, 2), "after_recovery": len(after),
               "failed_after_recovery": sum(o != "200" for o in after)}
    record_property("replica_kill", json.dumps(summary))
    print("replica killed under load:", summary)
    assert sum(o == "200" for _, d, o in log if d < t_kill) >= 20  # the load was really being served
    assert after and all(o == "200" for o in after), summary
