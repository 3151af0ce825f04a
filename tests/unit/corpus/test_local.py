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


def test_run_local_resamples_and_weights_three_classes():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    who = rng.choice(["women", "men", "muslims", "the team"], 600)
    raw = pd.DataFrame({"comment": [f"{w} said thing number {i}" for i, w in enumerate(who)],
                        "y": [str(int(rng.integers(0, 3))) if w != "women" else "2" if rng.random() < 0.6 else str(int(rng.integers(0, 2)))
                              for w in who]})
    for strategy in ("reweight", "oversample", "hybrid"):
        res = run_local(raw, cfg=_cfg(**{"balance.strategy": strategy, "data.class_names": "[a, b, c]"}))
        out = res["output"]
        assert set(out["label"]) == {0, 1, 2} and res["rejects"].empty
        train = out[out["split"] == "train"]
        women = train["groups"].map(lambda g: "female" in list(g)).to_numpy()
        w = train["sample_weight"].to_numpy() if strategy == "reweight" else np.ones(len(train))
        rate = lambda m, w=w, train=train: (w[m] * (train["label"].to_numpy()[m] == 2)).sum() / w[m].sum()  # noqa: E731
        # balancing pulls women's share of class 2 to the overall one (it starts near 0.6)
        assert abs(rate(women) - rate(np.ones(len(train), bool))) < 0.1, strategy
