"""CDA fine-tuning pieces without Ray: corpus reading, counts, counterfactual copies, tokens, loss, step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from debias.identity.tools import swaps_for
from debias.lm.finetune import (
    Tokenize,
    augment_texts,
    collate,
    lm_loss,
    lm_train_step,
    mean_loss,
    prepare_texts,
    read_corpus,
)


def test_read_corpus_files_folders_and_demo(tmp_path):
    (tmp_path / "a.txt").write_text("He is a nurse.\n\nShe is a pilot.\n")
    pd.DataFrame({"bio": ["His sister is a doctor."]}).to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "notes.md").write_text("skipped")
    df = read_corpus(str(tmp_path / "a.txt"))
    assert df.to_dict("list") == {"id": ["a/0", "a/1"], "text": ["He is a nurse.", "She is a pilot."]}
    with pytest.raises(ValueError, match="missing text column 'text'.*columns present: bio"):
        read_corpus(str(tmp_path))
    (tmp_path / "a.txt").unlink()
    assert read_corpus(str(tmp_path), text_col="bio")["id"].tolist() == ["b/0"]
    demo = read_corpus("demo:50", seed=1)
    assert len(demo) == 50 and demo.equals(read_corpus("demo:50", seed=1))
    for bad in ("demo:x", str(tmp_path / "missing.txt"), str(tmp_path / "notes.md")):
        with pytest.raises(ValueError, match="corpus"):
            read_corpus(bad)


def test_prepare_texts_accounts_for_every_row_and_holds_out_disjoint_texts():
    texts = [f"Text number {i} about a nurse." for i in range(40)] + ["", None, "Text number 3 about a nurse."]
    df = pd.DataFrame({"id": range(len(texts)), "text": texts})
    train, held, c = prepare_texts(df, max_texts=30, heldout_fraction=0.2, seed=0)
    assert c == {"read": 43, "empty": 2, "duplicate": 1, "unsampled": 10, "train": 24, "heldout": 6}
    assert c["read"] == c["empty"] + c["duplicate"] + c["unsampled"] + c["train"] + c["heldout"]
    assert not set(train["text"]) & set(held["text"])
    again = prepare_texts(df, max_texts=30, heldout_fraction=0.2, seed=0)
    assert again[0].equals(train) and again[1].equals(held)
    assert len(prepare_texts(df, heldout_fraction=0.0)[1]) == 0
    with pytest.raises(ValueError, match="missing column 'text'"):
        prepare_texts(pd.DataFrame({"id": [1], "body": ["x"]}))


def test_augment_appends_one_counterfactual_per_changed_text():
    df = pd.DataFrame({"id": ["a", "b"], "text": ["He is a nurse and his mother is proud.", "The weather is fine."]})
    out = augment_texts(df, table=swaps_for(["gender"]), seed=0)
    assert out["id"].tolist() == ["a", "b", "a~cf"]
    assert out["text"].iloc[2] == "She is a nurse and her father is proud."
    assert out["is_augmented"].tolist() == [False, False, True] and out["pair_id"].iloc[2] == "a"
    assert augment_texts(df, table=swaps_for(["gender"]), mode="none")["id"].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="augment must be"):
        augment_texts(df, table=swaps_for(["gender"]), mode="replace")


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama_dir), Tokenize(str(tiny_llama_dir), max_length=8)


def test_tokenize_wraps_and_cuts_each_text(tiny):
    _, tok = tiny
    ids = tok.encode(["hello world", "one two three four five six seven eight nine ten"])
    body = tok.tokenizer("hello world", add_special_tokens=False).input_ids
    assert ids[0] == [tok.start_id, *body, tok.eos_id]
    assert len(ids[1]) == 8 and ids[1][0] == tok.start_id and ids[1][-1] == tok.eos_id
    out = tok(pd.DataFrame({"text": ["hello world"], "k": [1]}))
    assert out["n_tokens"].tolist() == [len(ids[0])] and out["k"].tolist() == [1]


def test_collate_masks_padding_out_of_the_loss():
    b = collate([[5, 6, 7], [8]], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["labels"].tolist() == [[5, 6, 7], [8, -100, -100]]


def test_loss_matches_hand_computed_nll_and_ignores_padding(tiny):
    model, tok = tiny
    seqs = tok.encode(["the nurse said hello", "a doctor", "he walked home today"])
    nll, n = 0.0, 0
    with torch.no_grad():
        for s in seqs:  # one unpadded pass per text, log-softmax by hand
            logp = torch.log_softmax(model(input_ids=torch.tensor([s])).logits[0].double(), -1)
            nll -= sum(float(logp[j - 1, s[j]]) for j in range(1, len(s)))
            n += len(s) - 1
    pad = tok.tokenizer.pad_token_id
    assert mean_loss(model, seqs, pad_id=pad, batch_size=2) == pytest.approx(nll / n, rel=1e-4)
    assert mean_loss(model, seqs, pad_id=pad, batch_size=1) == pytest.approx(nll / n, rel=1e-4)
    with torch.no_grad():
        assert float(lm_loss(model, collate(seqs, pad_id=pad), reduction="sum")) == pytest.approx(nll, rel=1e-4)
    assert np.isnan(mean_loss(model, [], pad_id=pad))


def test_train_steps_lower_the_loss_on_their_batch(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    from debias.training.step import make_optimizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tok = Tokenize(str(tiny_llama_dir), max_length=16)
    seqs = tok.encode(["she is a nurse", "he is a nurse", "the engineer fixed it"])
    opt, sched = make_optimizer(model, lr=5e-3, weight_decay=0.0, total_steps=10)
    pad = tok.tokenizer.pad_token_id
    before = mean_loss(model, seqs, pad_id=pad)
    losses = [lm_train_step(model, collate(seqs, pad_id=pad), opt, sched) for _ in range(10)]
    assert losses[0] == pytest.approx(before, rel=1e-4)  # the first step's loss is the model's before it
    assert mean_loss(model, seqs, pad_id=pad) < before - 0.5 and model.training


def test_cli_fails_before_ray_on_a_bad_corpus(tmp_path, capsys):
    from jobs.cli import main

    rc = main(["finetune-lm", "--run-dir", str(tmp_path / "run"), "--set",
               f"finetune_lm.corpus={tmp_path / 'missing.txt'}"])
    assert rc == 2 and "corpus must be 'demo:N' or an existing file" in capsys.readouterr().err
    rc = main(["finetune-lm", "--run-dir", str(tmp_path / "run"), "--set", "finetune_lm.axes=[planets]"])
    assert rc == 2 and "planets" in capsys.readouterr().err
