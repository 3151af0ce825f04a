"""A text-pair corpus (``data.text_pair_col``) through the real jobs on a tiny model and a local
Ray: preprocess cleans and annotates both texts and swaps both in its counterfactuals, training
tokenises pairs (counterfactual logit pairing on pair partners), evaluation scores pairs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from debias.config import load_config

pytestmark = pytest.mark.integration

PEOPLE = ["woman", "man", "muslim", "christian", "girl", "boy"]


def _corpus(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        who = rng.choice(PEOPLE)
        premise = f"the {who} fixed the old car on day {i}"
        ask_about = who if i % 2 else rng.choice(PEOPLE)
        rows.append({"id": f"p{i}", "premise": premise, "hypothesis": f"a {ask_about} fixed a car",
                     "label": int(ask_about == who)})
    return pd.DataFrame(rows)


def test_pair_corpus_preprocess_train_evaluate(ray_local, tmp_path, tiny_model_dir, capsys):
    from jobs import evaluate, preprocess, train

    df = _corpus(240)
    df.loc[3, "hypothesis"] = None  # a row without its second text: a reject with a reason
    df.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    cfg = load_config(base={
        "data": {"path": str(tmp_path / "pairs.jsonl"), "id_col": "id", "text_col": "premise",
                 "text_pair_col": "hypothesis", "class_names": ["not entailed", "entailed"]},
        "seed": 2, "split": {"train": 0.7, "val": 0.15, "test": 0.15},
        "annotate": {"axes": ["gender", "religion"]},
        "augment": {"mode": "append", "axes": ["gender"]},
        "train": {"model": str(tiny_model_dir), "epochs": 1, "batch_size": 16, "max_length": 40,
                  "max_steps_per_epoch": 4, "num_workers": 1, "val_min_group_size": 1,
                  "losses": [{"name": "cross_entropy"}, {"name": "counterfactual_logit_pairing", "weight": 0.5}]},
        "evaluate": {"batch_size": 16, "n_boot": 10, "min_group_size": 2, "explain_top_k": 2,
                     "suites": [{"name": "test", "kind": "test_split"},
                                {"name": "counterfactual", "kind": "counterfactual_pairs"}]}})
    run = tmp_path / "run"
    pre = preprocess.run(cfg, str(run))
    assert pre["rows"]["read"] == 240 and pre["rows"]["rejected"] == 1
    rejects = pd.read_parquet(run / "preprocess" / "rejects")
    assert rejects["reject_reason"].tolist() == ["null_text_pair"]
    kept = pd.concat([pd.read_parquet(run / "preprocess" / s) for s in ("train", "val", "test")])
    src = df.set_index("id")
    orig = kept[~kept["is_augmented"]].set_index("id")
    assert (orig["text_pair"] == src.loc[orig.index, "hypothesis"]).all()
    # groups are the union of both sides, and the sides are kept
    for _, row in orig.head(30).iterrows():
        assert set(row["groups"]) == set(row["groups_text"]) | set(row["groups_pair"])
    # a counterfactual swaps both texts with the same mapping
    aug = kept[kept["is_augmented"]].set_index("pair_id")
    assert len(aug) > 0
    woman = next(pid for pid in aug.index if "the woman fixed" in src.loc[pid, "premise"]
                 and "woman" in src.loc[pid, "hypothesis"])
    assert "the man fixed" in aug.loc[woman, "text"] and "a man fixed" in aug.loc[woman, "text_pair"]

    train.run(cfg, str(run))
    assert (run / "train" / "model" / "config.json").exists()

    capsys.readouterr()
    evaluate.run(cfg, str(run))
    err = capsys.readouterr().err
    # progress while scoring and measuring, with an ETA; the explanations are skipped for pairs, saying so
    assert "[evaluate] scoring: " in err and "texts, " in err and "ETA" in err
    assert err.count("[evaluate] metrics (10 bootstrap draws): ") == 2 and "suite counterfactual done" in err
    assert "explanations: not computed for text-pair inputs" in err
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text())
    assert set(metrics["suites"]) == {"test", "counterfactual"}
    pred = pd.read_parquet(run / "evaluate" / "predictions" / "test")
    assert "text_pair" in pred.columns and pred["text_pair"].notna().all()
    # the job's scores are the Predictor's pair scores
    from debias.evaluation.predict import Predictor

    p = Predictor(run / "train" / "model", max_length=cfg.evaluate.max_length)
    head = pred.head(8)
    want = p.predict_texts(head["text"].tolist(), head["text_pair"].tolist())
    assert np.allclose(head["y_score"].to_numpy(), want, atol=1e-5)
    cf = pd.read_parquet(run / "evaluate" / "predictions" / "counterfactual")
    assert cf["text_pair"].notna().all() and cf["pair_id"].notna().all()
