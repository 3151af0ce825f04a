"""Label shapes beyond binary through the real jobs: a 3-class corpus (preprocess -> train ->
evaluate on a tiny model, local Ray) and a score-label corpus (preprocess keeps the raw score)."""

from __future__ import annotations

import json
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


def test_serve_refuses_a_three_class_model_before_ray(tmp_path, tiny_model_dir):
    import shutil

    from jobs.serve import check_binary_model

    d = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    check_binary_model(str(d))  # binary: fine
    conf = json.loads((d / "config.json").read_text())
    conf.update(num_labels=3, id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2})
    (d / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ValueError, match="has 3 classes"):
        check_binary_model(str(d))
