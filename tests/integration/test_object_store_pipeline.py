"""preprocess -> train -> evaluate with an ``s3://`` run dir, against a real S3 API (moto's
server on 127.0.0.1, pyarrow's S3 filesystem): every stage commits on the object store, the
checkpoints live there, and evaluation loads the trained model from it."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.fs as pafs
import pytest

from debias.config import load_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = ["women are great engineers", "the muslim family next door is kind", "you are an idiot",
         "I hate you, stupid man", "what a lovely day", "old people are wise", "shut up, you worthless girl",
         "the gay couple hosted dinner", "go to hell, christian", "she said her idea was brilliant"]
TOXIC = {2, 3, 6, 8}


def _read_json(fs: pafs.FileSystem, path: str) -> dict:
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def test_pipeline_on_an_s3_run_dir(ray_local, s3_server, tmp_path, tiny_model_dir, monkeypatch):
    from debias.runs import resolve_fs
    from jobs import evaluate, preprocess, train

    monkeypatch.setenv("DEBIAS_CACHE", str(tmp_path / "cache"))
    rows = [{"id": f"r{i}", "text": f"{TEXTS[i % len(TEXTS)]} #{i}", "label": int(i % len(TEXTS) in TOXIC)}
            for i in range(300)]
    corpus = tmp_path / "corpus.csv"
    pd.DataFrame(rows).to_csv(corpus, index=False)
    cfg = load_config(base={
        "data": {"path": str(corpus), "id_col": "id"}, "seed": 1,
        "split": {"train": 0.7, "val": 0.15, "test": 0.15},
        "train": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 16, "max_length": 32,
                  "max_steps_per_epoch": 4, "num_workers": 1, "val_min_group_size": 1},
        "evaluate": {"batch_size": 16, "n_boot": 10, "min_group_size": 2, "explain_top_k": 0,
                     "suites": [{"name": "test", "kind": "test_split"}, {"name": "val", "kind": "val_split"},
                                {"name": "templates", "kind": "identity_templates", "limit": 60}]}})
    run = s3_server("runs/e2e")
    fs, base = resolve_fs(run)

    pre = preprocess.run(cfg, run)
    assert pre["rows"]["read"] == 300 and pre["rows"]["read"] == pre["rows"]["kept"] + pre["rows"]["rejected"]
    out = train.run(cfg, run)
    assert out["model_dir"].startswith("s3://") and "endpoint_override" in out["model_dir"]
    man = _read_json(fs, f"{base}/train/manifest.json")
    assert man["stage"] == "train" and man["rows"]["val"] > 0
    ckpts = fs.get_file_info(pafs.FileSelector(f"{base}/train_checkpoints/{out['run_name']}", recursive=True))
    assert any(i.base_name.startswith("checkpoint") for i in ckpts), "Ray Train checkpoints on the object store"
    assert fs.get_file_info(f"{base}/train/model/model.safetensors").type == pafs.FileType.File

    ev = evaluate.run(cfg, run)
    assert set(ev["rows"]) == {"test", "val", "templates"} and ev["rows"]["templates"] == 60
    metrics = _read_json(fs, f"{base}/evaluate/metrics.json")
    assert metrics["model_dir"].startswith(str(tmp_path / "cache"))  # the committed model, copied once
    with fs.open_input_file(f"{base}/evaluate/predictions/test/part-0.parquet") as f:
        pred = pd.read_parquet(f)
    assert len(pred) == ev["rows"]["test"] and pred["y_score"].between(0, 1).all()
    # Nothing half-written is left behind: only committed stages and the checkpoints.
    top = {i.base_name for i in fs.get_file_info(pafs.FileSelector(base))}
    assert top == {"preprocess", "train", "train_checkpoints", "evaluate"}, top
