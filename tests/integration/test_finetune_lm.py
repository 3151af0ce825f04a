"""`debias finetune-lm` end to end on a local Ray: CDA fine-tuning of the tiny Llama, then the written
model audited by `debias audit-lm` (with self-debiasing, so the mitigation runs through Ray Data too)."""

from __future__ import annotations

import json

import pytest

from debias.config import load_config
from debias.lm.audit import resolve_data_dir
from debias.lm.config import AuditLMConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = resolve_data_dir(AuditLMConfig())

TEXTS = [f"{who} works as a {job} and {pron} likes the {thing}." for who, pron in
         (("He", "he"), ("She", "she"), ("My brother", "he"), ("Her mother", "she"))
         for job in ("nurse", "pilot", "teacher", "engineer")
         for thing in ("job", "team", "city")]


def test_cda_finetune_writes_an_auditable_model_whose_loss_went_down(ray_local, tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from jobs import audit_lm, finetune_lm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    run_dir = str(tmp_path / "run")
    cfg = load_config(None, [f"finetune_lm.model={tiny_llama_dir}", f"finetune_lm.corpus={corpus}",
                             "finetune_lm.max_steps=12", "finetune_lm.batch_size=8", "finetune_lm.lr=0.003",
                             "finetune_lm.cpus_per_worker=1", "finetune_lm.heldout_fraction=0.1",
                             "finetune_lm.max_length=24", "finetune_lm.checkpoint_every=6"],
                      base={"data": {"path": "unused"}})
    summary = finetune_lm.run(cfg, run_dir, progress_every_s=0.0)
    out = tmp_path / "run" / "finetune_lm"
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["rows"]
    assert rows["read"] == len(TEXTS) == rows["train"] + rows["heldout"]
    # every text names a gendered person, so every training text has its counterfactual
    assert rows["counterfactual"] == rows["train"] and rows["heldout"] == 5
    card = json.loads((out / "model" / "finetune_lm_card.json").read_text())
    assert card["steps"] == summary["steps"] == 12 and len(card["history"]) == 12
    assert summary["loss_after"]["train_loss"] < summary["loss_before"]["train_loss"] - 0.5
    assert summary["loss_after"] == card["loss_after"]
    assert not (out / "model" / finetune_lm.OPTIM_STATE).exists()  # weights only in the model folder
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.num_hidden_layers == 2

    if not all((DATA / d).is_dir() for d in ("crows-pairs", "bbq", "winobias", "winogender")):
        pytest.skip(f"shared data sets not found under {DATA}: the audit half is skipped")
    # the fine-tuned folder is audited like any model: intrinsic, BBQ and the translation suite
    acfg = load_config(None, [f"audit_lm.model={out / 'model'}", "audit_lm.suites=[crows_pairs,bbq,translation]",
                              "audit_lm.limit=3", "audit_lm.n_boot=10", "audit_lm.bbq_max_new_tokens=2",
                              "audit_lm.translation.languages=[de]", "audit_lm.translation.max_new_tokens=4",
                              "audit_lm.cpus_per_actor=1", "audit_lm.mitigation=self_debias"],
                       base={"data": {"path": "unused"}})
    audit_lm.run(acfg, run_dir)
    metrics = json.loads((tmp_path / "run" / "audit_lm" / "metrics.json").read_text())
    assert metrics["mitigation"] == "self_debias" and metrics["model"] == str(out / "model")
    assert metrics["suites"]["crows_pairs"]["by_bias_type"][0]["n"] == 3
    assert set(metrics["suites"]) == {"crows_pairs", "bbq_mc", "bbq_generate", "translation"}
    de = [r for r in metrics["suites"]["translation"]["by_language"] if r["lang"] == "de" and r["source"] == "all"]
    assert de and de[0]["n"] == 3  # every drawn sentence translated and counted, readable or not
