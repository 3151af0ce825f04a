"""The single-process pipeline."""

import pandas as pd
from corpus_batches import _cfg, _raw

from debias.corpus.local import run_local


def test_run_local_accounts_for_every_row():
    raw = pd.concat([_raw()] * 3, ignore_index=True)
    res = run_local(raw, cfg=_cfg(**{"balance.strategy": "reweight"}))
    kept = len(raw) - res["n_rejected"] - res["n_duplicates"]
    assert res["n_read"] == len(raw) and res["n_rejected"] == 6
    assert len(res["output"]) == kept  # no augmentation configured
    assert (res["output"]["sample_weight"] > 0).all()



def test_run_local_counts_pii_masked_per_kind():
    raw = pd.DataFrame({"comment": ["mail a@b.com or call 555-123-4567", "card 4111 1111 1111 1111", None],
                        "y": ["1", "0", "1"]})
    res = run_local(raw, cfg=_cfg())
    assert res["pii_masked"]["email"] == 1 and res["pii_masked"]["phone"] == 1 and res["pii_masked"]["card"] == 1
    assert sum(res["pii_masked"].values()) == 3
    off = run_local(raw, cfg=_cfg(**{"clean.mask_cards": "false"}))["pii_masked"]
    assert "card" not in off
