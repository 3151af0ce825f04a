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

