"""Label shapes beyond binary through the real jobs: a 3-class corpus (preprocess -> train ->
evaluate on a tiny model, local Ray), a score-label corpus (preprocess keeps the raw score), and
a 3-class model behind `debias serve`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from debias.config import load_config

pytestmark = pytest.mark.integration

CLASSES = ["hate", "offensive", "neither"]
WORDS = ["women", "men", "muslims", "christians", "gay people", "old people"]


def _corpus(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)],
                         "text": [f"the {rng.choice(WORDS)} over there are {rng.choice(['nice', 'awful', 'rude'])} #{i}"
                                  for i in range(n)],
                         "label": [CLASSES[i % 3] for i in range(n)]})


def test_three_classes_preprocess_train_evaluate(ray_local, tmp_path, tiny_model_dir):
    from jobs import evaluate, preprocess, train

    df = _corpus(300)
    df.loc[5, "label"] = "spam"  # one unknown label: a reject, not a failed corpus
    df.to_csv(tmp_path / "k3.csv", index=False)
    cfg = load_config(base={
        "data": {"path": str(tmp_path / "k3.csv"), "id_col": "id", "class_names": CLASSES}, "seed": 1,
        "split": {"train": 0.7, "val": 0.15, "test": 0.15},
        "train": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 16, "max_length": 32,
                  "max_steps_per_epoch": 4, "num_workers": 1, "val_min_group_size": 1,
                  "losses": [{"name": "cross_entropy"}, {"name": "group_loss_parity", "weight": 0.5}]},
        "evaluate": {"batch_size": 16, "n_boot": 10, "min_group_size": 2, "explain_top_k": 0, "focus_class": "hate",
                     "suites": [{"name": "test", "kind": "test_split"},
                                {"name": "counterfactual", "kind": "counterfactual_pairs"},
                                {"name": "templates", "kind": "identity_templates", "limit": 40}]}})
    run = str(tmp_path / "run")
    pre = preprocess.run(cfg, run)
    assert pre["rows"]["read"] == 300 and pre["rows"]["rejected"] == 1
    kept = pd.concat([pd.read_parquet(tmp_path / "run" / "preprocess" / s) for s in ("train", "val", "test")])
    assert set(kept["label"]) == {0, 1, 2}
    rejects = pd.read_parquet(tmp_path / "run" / "preprocess" / "rejects")
    assert rejects["reject_reason"].tolist() == ["unknown_label"]

    out = train.run(cfg, run)
    conf = json.loads((tmp_path / "run" / "train" / "model" / "config.json").read_text())
    assert conf["id2label"] == {"0": "hate", "1": "offensive", "2": "neither"}
    assert out["model_dir"]

    evaluate.run(cfg, run)
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    test = metrics["suites"]["test"]
    mc = test["multiclass"]
    assert mc["classes"] == CLASSES and [c["class"] for c in mc["criteria"]] == [*CLASSES, "max"]
    overall = next(r for r in mc["by_group"] if r["group"] == "overall")
    pred = pd.read_parquet(tmp_path / "run" / "evaluate" / "predictions" / "test")
    p = np.stack(pred["y_proba"].to_numpy())
    assert p.shape == (len(pred), 3) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # the binary reading is the focus class (hate, id 0) against the rest
    assert np.allclose(pred["y_score"], p[:, 0])
    assert (pred["y_true"] == (pred["y_class"] == 0)).all()
    assert overall["accuracy"] == pytest.approx(float((p.argmax(axis=1) == pred["y_class"]).mean()))
    assert "counterfactual" in metrics["suites"]["counterfactual"]["multiclass"]


def test_score_labels_keep_the_score(ray_local, tmp_path):
    from jobs import preprocess

    rng = np.random.default_rng(3)
    df = _corpus(200).assign(label=np.round(rng.uniform(0, 1, 200), 3).astype(object))
    df.loc[7, "label"] = "n/a"
    df.to_csv(tmp_path / "scores.csv", index=False)
    cfg = load_config(base={"data": {"path": str(tmp_path / "scores.csv"), "id_col": "id", "label_threshold": 0.5},
                            "seed": 2})
    run = str(tmp_path / "run")
    pre = preprocess.run(cfg, run)
    assert pre["rows"]["rejected"] == 1
    kept = pd.concat([pd.read_parquet(tmp_path / "run" / "preprocess" / s) for s in ("train", "val", "test")])
    src = df.drop(index=7).set_index("id")["label"].astype(float)
    got = kept.set_index("id")
    assert np.allclose(got["label_score"], src.loc[got.index])
    assert (got["label"] == (src.loc[got.index] >= 0.5).astype(int)).all()


def test_wrong_class_names_fail_before_ray(tmp_path):
    from jobs import preprocess

    _corpus(50).to_csv(tmp_path / "k3.csv", index=False)
    cfg = load_config(base={"data": {"path": str(tmp_path / "k3.csv")}})  # binary default class names
    with pytest.raises(ValueError, match=r"map to no class: .*'hate'"):
        preprocess.preflight(cfg)


SERVE_TEXTS = ["My sister is a nurse.", "<b>the old man</b> is rude", "what a lovely day",
               "the muslim teacher is nice", "go away", "they fixed the car"]
SERVE_PAIRS = ["a woman is a nurse", "he is rude", "the gay couple agrees", "a teacher is nice",
               "you go away", "the Christian boy fixed it"]


def _three_class_model(src: Path, out: Path) -> Path:
    """The tiny BERT's body with a fresh 3-class head, scaled so the argmax varies across texts."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    conf = BertConfig.from_pretrained(src)
    conf.num_labels = 3
    conf.id2label = dict(enumerate(CLASSES))
    conf.label2id = {c: i for i, c in enumerate(CLASSES)}
    torch.manual_seed(3)
    model = BertForSequenceClassification(conf).eval()
    tok = AutoTokenizer.from_pretrained(src)
    with torch.no_grad():  # a random body maps every text to about the same point: centre, then spread
        model.classifier.weight.mul_(300.0)
        logits = model(**tok(SERVE_TEXTS + SERVE_PAIRS, padding=True, return_tensors="pt")).logits
        model.classifier.bias.sub_(logits.mean(dim=0))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "model_card.json").write_text(json.dumps({"version": "k3", "focus_class": "hate"}))
    return out


def test_serve_deploys_a_three_class_model_and_counts_classes_per_group(ray_local, tmp_path, tiny_model_dir):
    """`debias serve` on a 3-class model through real HTTP: probabilities in class-id order,
    argmax labels, scores of the card's focus class, text pairs, and the monitor's decisions per
    (group, class) against a direct count."""
    import socket

    import httpx
    from prometheus_client.parser import text_string_to_metric_families
    from ray import serve

    from debias.corpus.clean import clean_texts
    from debias.evaluation.predict import Predictor
    from debias.identity.annotate import IdentityAnnotator
    from debias.identity.lexicon import load_lexicon
    from jobs.serve import run

    model = _three_class_model(tiny_model_dir, tmp_path / "k3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = load_config(base={"data": {"path": "unused-by-serve"}, "serve": {
        "model": str(model), "port": port, "max_batch_size": 8, "batch_wait_timeout_s": 0.05,
        "min_replicas": 1, "max_replicas": 1, "num_cpus_per_replica": 0.5, "torch_threads": 1,
        "monitor_window": 1000, "monitor_min_count": 1, "auth_token_env": None}})
    texts, pairs = SERVE_TEXTS, SERVE_PAIRS
    run(cfg, None, blocking=False)  # no refusal: the 3-class model is checked and deployed
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as c:
            r = c.post("/v1/classify", json={"texts": texts[:3]})
            assert r.status_code == 200, r.text
            single = r.json()
            r = c.post("/v1/classify", json={"texts": texts, "text_pairs": pairs})
            assert r.status_code == 200, r.text
            paired = r.json()
            bad = c.post("/v1/classify", json={"texts": texts, "text_pairs": pairs[:2]})
            assert bad.status_code == 422 and "text_pairs: expected one entry per text (6); found 2" in bad.json()["error"]
            model_info = c.get("/v1/model").json()
            cf = c.post("/v1/counterfactual", json={"text": "the woman fixed the car", "text_pair": "a man fixed it"})
            assert cf.status_code == 200, cf.text
            deadline = time.monotonic() + 30
            while (snap := c.get("/v1/monitor").json())["texts_total"] < 3 + len(texts) + 1:
                assert time.monotonic() < deadline, "the monitor never counted the texts"
                time.sleep(0.2)
            prom = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
    finally:
        serve.shutdown()

    predictor = Predictor(model, batch_size=8, num_threads=1)
    clean = lambda ts: clean_texts(ts, params=cfg.clean)  # noqa: E731
    want1 = predictor.predict_proba(clean(texts[:3]))
    want2 = predictor.predict_proba(clean(texts), clean(pairs))
    for body, want in ((single, want1), (paired, want2)):
        np.testing.assert_allclose(body["probabilities"], want, atol=1e-5)
        assert body["labels"] == want.argmax(axis=1).tolist()  # argmax, not a threshold
        np.testing.assert_allclose(body["scores"], want[:, 0], atol=1e-5)  # the focus class, hate
        assert body["label_names"] == [CLASSES[y] for y in body["labels"]]
        assert body["class_names"] == CLASSES and body["score_class"] == "hate"
        assert body["decision_rule"] == "argmax" and body["threshold"] is None
    assert len(set(paired["labels"])) > 1, "the scaled head should not give one class to every text"
    assert not np.allclose(want2, predictor.predict_proba(clean(texts)))  # the pairs were scored as pairs
    assert model_info["class_names"] == CLASSES and model_info["decision_rule"]["constraint"] == "argmax"
    assert cf.json()["variants"] and all(v["text_pair"] for v in cf.json()["variants"])
    assert cf.json()["label"] == int(np.argmax(cf.json()["probabilities"]))

    # The monitor against a direct count: groups of both texts (union), decided classes.
    ann = IdentityAnnotator(load_lexicon(cfg.annotate.axes))
    cf_groups = sorted(set().union(*ann.detect_groups(clean(["the woman fixed the car", "a man fixed it"]))))
    groups = ([g for g in ann.detect_groups(clean(texts[:3]))]
              + [sorted(set(a) | set(b)) for a, b in zip(ann.detect_groups(clean(texts)),
                                                         ann.detect_groups(clean(pairs)), strict=True)]
              + [cf_groups])
    labels = single["labels"] + paired["labels"] + [cf.json()["label"]]
    # some rows mention a group in their second text only: the union is what is counted
    assert any(set(b) - set(a) for a, b in zip(ann.detect_groups(clean(texts)), ann.detect_groups(clean(pairs)),
                                               strict=True))
    ev = pd.DataFrame({"group": groups, "cls": labels}).explode("group").dropna()
    tab = pd.crosstab(ev["group"], ev["cls"]).reindex(columns=range(3), fill_value=0)
    assert snap["classes"] == CLASSES and snap["positive_class"] == "hate"
    assert snap["class_counts"]["by_group"] == {g: row.tolist() for g, row in tab.iterrows()}
    assert snap["class_counts"]["overall"] == np.bincount(labels, minlength=3).tolist()
    assert snap["decisions_total"] == np.bincount(labels, minlength=3).tolist()
    assert snap["counts"]["positives"] == labels.count(0) == snap["positives_total"]
    got = {(s.labels["group"], s.labels["class"]): s.value
           for s in prom["debias_monitor_group_class_decisions"].samples}
    assert got == {(g, CLASSES[k]): float(tab.loc[g, k]) for g in tab.index for k in range(3)}
    assert {s.labels["class"] for s in prom["debias_decisions"].samples} == set(CLASSES)
