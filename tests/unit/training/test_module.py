"""debias.training.module: the fair classifier's joined counterfactual forward and the one
assembly of model + objective (build_module), on the tiny random BERT."""

from __future__ import annotations

import torch

from debias.schema import membership_columns
from debias.training.data import make_batch
from debias.training.model import load_classifier
from debias.training.module import FairClassifier, build_module

TERMS = [{"name": "cross_entropy"}, {"name": "adversarial", "weight": 0.1}]


def test_counterfactual_rows_do_not_change_the_batch_logits(tiny_model_dir, tokenised):
    model, tok = load_classifier(tiny_model_dir)
    module = FairClassifier(model, pad_id=tok.pad_token_id).eval()
    b = make_batch(tokenised, group_cols=membership_columns(tokenised.columns), pad_id=tok.pad_token_id,
                   counterfactuals=True)
    with torch.no_grad():
        alone, _, _ = module(b.inputs)
        joined, cf, _ = module(b.inputs, b.cf_inputs)
    torch.testing.assert_close(alone, joined, atol=1e-5, rtol=1e-5)
    assert cf.shape == (4, 2)


def test_build_module_assembles_objective_adversary_and_freezing(tiny_model_dir, tokenised):
    built = build_module(tiny_model_dir, losses=TERMS, n_groups=3, freeze_embeddings=True,
                         freeze_layers=1, seed=0)
    assert built.pad_id == built.tokenizer.pad_token_id
    assert built.token_type_ids is True  # BERT tokenizer
    assert built.objective.adversary_params is not None and built.module.adversary is not None
    bert = built.module.model.bert
    assert not any(p.requires_grad for p in bert.embeddings.parameters())
    assert not any(p.requires_grad for p in bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in bert.encoder.layer[1].parameters())
    b = make_batch(tokenised, group_cols=membership_columns(tokenised.columns), pad_id=built.pad_id)
    logits, cf, group_logits = built.module(b.inputs)
    assert logits.shape == (8, 2) and cf is None and group_logits.shape == (8, 3)


def test_build_module_seed_gives_identical_heads(tiny_model_dir):
    # DDP ranks must start from the same freshly drawn adversary head
    a = build_module(tiny_model_dir, losses=TERMS, n_groups=3, seed=7).module
    b = build_module(tiny_model_dir, losses=TERMS, n_groups=3, seed=7).module
    c = build_module(tiny_model_dir, losses=TERMS, n_groups=3, seed=8).module
    for (name, p), (_, q) in zip(a.adversary.state_dict().items(), b.adversary.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    assert any(not torch.equal(p, q) for p, q in zip(a.adversary.state_dict().values(),
                                                      c.adversary.state_dict().values(), strict=True))
    assert build_module(tiny_model_dir, losses=[{"name": "cross_entropy"}], n_groups=3).module.adversary is None
