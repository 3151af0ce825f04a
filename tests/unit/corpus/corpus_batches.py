"""Small prepared batches shared by the corpus unit tests."""

import numpy as np
import pandas as pd

from debias.config import load_config
from debias.corpus.prepare import prepare_batch


def _cfg(**sets):
    return load_config(base={"data": {"path": "x.csv", "text_col": "comment", "label_col": "y"}},
                       overrides=[f"{k}={v}" for k, v in sets.items()]).model_dump()


def _raw():
    return pd.DataFrame({
        "comment": ["Women are great", "women   are GREAT", "the muslim man", None, "hi @bob see http://a.b/c",
                    "gay and black", "plain text"],
        "y": ["1", "1", "0", "1", "0", "maybe", "0"],
    })


def _rows(seed=0, n=400):
    rng = np.random.default_rng(seed)
    names = ["female", "male", "muslim", "gay"]
    groups = [sorted(set(rng.choice(names, size=rng.integers(0, 3)).tolist())) for _ in range(n)]
    df = pd.DataFrame({"groups": groups, "label": rng.integers(0, 2, n),
                       "split": rng.choice(["train", "val", "test"], n, p=[0.8, 0.1, 0.1])})
    for g in names:
        df[f"g_{g}"] = df["groups"].map(lambda gs, g=g: g in gs)
    return df, names


def _prepared_blocks(seed: int):
    """Two prepared batches (two 'files') with duplicates inside and across them."""
    rng = np.random.default_rng(seed)
    words = ["Women are great", "the muslim man", "gay and black", "plain text", "old people", "a jewish girl"]
    blocks = []
    for b in range(2):
        texts = [words[i] + (" !" * int(rng.integers(0, 3))) for i in rng.integers(0, len(words), 40)]
        raw = pd.DataFrame({"comment": texts, "y": [str(v) for v in rng.integers(0, 2, 40)],
                            "path": f"file{b}.csv"})
        blocks.append(prepare_batch(raw, cfg=_cfg()))
    return blocks

