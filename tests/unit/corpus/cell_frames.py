"""Hand-worked and random cell frames shared by the balance and resample tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from debias.corpus.balance import cell_counts


def _counts(d: dict[tuple[str, int], int]) -> pd.DataFrame:
    return pd.DataFrame([{"cell": g, "label": y, "n": n} for (g, y), n in d.items()])


# A: 30 positive, 10 negative; B: 20 positive, 40 negative. N = 100, P(y=1) = 0.5.
HAND = {("A", 1): 30, ("A", 0): 10, ("B", 1): 20, ("B", 0): 40}


def _random_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array(["female", "male", "muslim", "gay", "black"])
    k = rng.choice([0, 1, 2], size=n, p=[0.5, 0.4, 0.1])
    groups = [list(rng.choice(names, size=ki, replace=False, p=[0.3, 0.3, 0.15, 0.15, 0.1])) for ki in k]
    # Label rate depends on the group, so cells are unbalanced.
    rate = np.array([0.5 if "gay" in g or "muslim" in g else 0.2 for g in groups])
    groups = [np.array(g, dtype=object) if i % 2 else g for i, g in enumerate(groups)]  # Ray hands arrays
    return pd.DataFrame(
        {
            "id": [f"id{i:05d}" for i in range(n)],
            "groups": groups,
            "label": (rng.random(n) < rate).astype(int),
        }
    )


def _achieved(out: pd.DataFrame, **kw) -> dict:
    c = cell_counts(out, **kw)
    return {(g, y): n for g, y, n in c.itertuples(index=False)}
