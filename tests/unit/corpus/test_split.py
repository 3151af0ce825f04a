"""Split assignment: deterministic per key, partition-independent, stratified in expectation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.corpus.split import assign_split, stable_uniform, stratified_cutpoints

FRAC = {"train": 0.8, "val": 0.1, "test": 0.1}


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(n)],
            "group": rng.choice(["a", "b", "c", "d"], size=n, p=[0.5, 0.3, 0.15, 0.05]),
            "label": rng.integers(0, 2, size=n),
        }
    )


def test_stable_uniform_range_determinism_and_salt():
    keys = [f"k{i}" for i in range(2000)]
    u = stable_uniform(keys, seed=7)
    assert u.dtype == np.float64 and u.shape == (2000,)
    assert ((u >= 0) & (u < 1)).all()
    np.testing.assert_array_equal(u, stable_uniform(keys, seed=7))
    assert not np.array_equal(u, stable_uniform(keys, seed=8))
    assert not np.array_equal(u, stable_uniform(keys, seed=7, salt="resample"))
    # Roughly uniform: mean 0.5 within 4 standard errors (sd 1/sqrt(12 n)).
    assert abs(u.mean() - 0.5) < 4 / np.sqrt(12 * len(u))
    assert len(stable_uniform([], seed=0)) == 0


def test_stable_uniform_hand_computed_value():
    import hashlib

    d = hashlib.blake2b(b"abc", digest_size=8, key=b"split:3").digest()
    expected = (int.from_bytes(d, "big") >> 11) / 2**53
    assert stable_uniform(["abc"], seed=3, salt="split")[0] == expected


def test_split_is_a_function_of_key_and_seed_only():
    df = _frame(3000)
    whole = assign_split(df, fractions=FRAC, seed=1)
    shuffled = df.sample(frac=1, random_state=0)
    parts = pd.concat(
        [assign_split(shuffled.iloc[i::7], fractions=FRAC, seed=1) for i in range(7)]
    ).sort_index()
    pd.testing.assert_series_equal(whole["split"], parts["split"])
    other_seed = assign_split(df, fractions=FRAC, seed=2)
    assert (other_seed["split"] != whole["split"]).mean() > 0.2
    assert "split" not in df.columns  # input untouched


def test_rows_sharing_a_key_share_a_split():
    df = _frame(2000)
    df["pair_id"] = [f"p{i // 2}" for i in range(len(df))]
    out = assign_split(df, fractions=FRAC, seed=0, key_col="pair_id")
    assert (out.groupby("pair_id")["split"].nunique() == 1).all()
    assert set(out["split"]) == {"train", "val", "test"}


def test_every_large_group_label_cell_is_split_in_proportion():
    df = _frame(20000)
    out = assign_split(df, fractions=FRAC, seed=0)
    shares = out.groupby(["group", "label"])["split"].value_counts(normalize=True).unstack(fill_value=0)
    sizes = out.groupby(["group", "label"]).size()
    big = sizes[sizes >= 500].index
    assert len(big) >= 6
    for cell in big:
        for name, f in FRAC.items():
            # 3 points is > 3 binomial standard errors for n >= 500 (sd <= 1.8 points).
            assert abs(shares.loc[cell, name] - f) < 0.03, (cell, name, shares.loc[cell, name])


def test_exact_stratified_cutpoints_give_rounded_counts_per_cell():
    df = _frame(3001, seed=3)
    df["cell"] = df["group"] + "|" + df["label"].astype(str)
    u = stable_uniform(df["id"], seed=5, salt="split")
    by_cell = {c: u[(df["cell"] == c).to_numpy()] for c in df["cell"].unique()}
    cuts = stratified_cutpoints(by_cell, fractions=FRAC)
    out = assign_split(df, fractions=FRAC, seed=5, cell_col="cell", cutpoints=cuts)
    for _, sub in out.groupby("cell"):
        n = len(sub)
        n_train = int(np.floor(0.8 * n + 0.5))
        n_trainval = int(np.floor(0.9 * n + 0.5))
        counts = sub["split"].value_counts()
        assert counts.get("train", 0) == n_train
        assert counts.get("val", 0) == n_trainval - n_train
        assert counts.get("test", 0) == n - n_trainval


def test_missing_split_names_are_fine_and_fractions_validated():
    df = _frame(500)
    out = assign_split(df, fractions={"train": 0.5, "test": 0.5}, seed=0)
    assert set(out["split"]) == {"train", "test"}
    with pytest.raises(ValueError, match="sum to 1.0"):
        assign_split(df, fractions={"train": 0.8, "val": 0.1}, seed=0)
    with pytest.raises(ValueError, match="split names"):
        assign_split(df, fractions={"train": 0.8, "dev": 0.2}, seed=0)


def test_bad_key_column_is_named():
    df = _frame(10)
    with pytest.raises(ValueError, match="missing key column 'pair_id'"):
        assign_split(df, fractions=FRAC, seed=0, key_col="pair_id")
    df.loc[3, "id"] = None
    with pytest.raises(ValueError, match="1 null values"):
        assign_split(df, fractions=FRAC, seed=0)


def test_empty_frame():
    out = assign_split(_frame(0), fractions=FRAC, seed=0)
    assert len(out) == 0 and "split" in out.columns
