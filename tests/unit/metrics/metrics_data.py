"""Seeded random predictions frames for the metrics tests (a helper module, not a conftest,
so its name cannot clash with other test folders' conftest modules)."""

from __future__ import annotations

import numpy as np
import pandas as pd

NAMES = ("asian", "black", "muslim", "women")


def random_predictions(n: int = 600, *, seed: int = 0, overlap: bool = True, weights: bool = False,
                       unknown: float = 0.05, names=NAMES) -> pd.DataFrame:
    """Scores correlated with labels, group-dependent rates, overlapping list memberships."""
    rng = np.random.default_rng(seed)
    if overlap:
        groups = [list(rng.choice(names, size=rng.integers(0, 3), replace=False)) for _ in range(n)]
    else:
        groups = [[str(g)] for g in rng.choice(names, size=n)]
    groups = [None if rng.random() < unknown else g for g in groups]
    shift = np.array([0.1 * len(g) if g else 0.0 for g in groups])
    y = (rng.random(n) < 0.3 + shift).astype(int)
    score = np.clip(rng.normal(0.35 + 0.3 * y + shift / 2, 0.2), 0, 1)
    df = pd.DataFrame({"y_true": y, "y_score": score, "y_pred": (score >= 0.5).astype(int), "groups": groups})
    if weights:
        df["sample_weight"] = rng.uniform(0.2, 3.0, n)
    return df
