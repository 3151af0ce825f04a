"""Exact resampling (Kamiran & Calders 2012, section 4.3) on hand-worked and random frames: targets,
plans, batch independence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from cell_frames import HAND, _achieved, _counts, _random_frame

from debias.corpus.balance import (
    NONE_KEY,
    apply_weights,
    cell_counts,
    cell_keys,
    merge_cell_counts,
)
from debias.corpus.resample import (
    apply_resample,
    boundary_bins,
    boundary_values,
    merge_u_histograms,
    resample_frame,
    resample_plan,
    target_counts,
    thresholds,
    u_histogram,
)


def test_targets_by_hand():
    c = _counts(HAND)
    assert target_counts(c, strategy="hybrid") == {("A", 0): 20, ("A", 1): 20, ("B", 0): 30, ("B", 1): 30}
    # Largest ratio n_gy / (n_g P(y)) is A1's 30/20 = 1.5.
    assert target_counts(c, strategy="oversample") == {("A", 0): 30, ("A", 1): 30, ("B", 0): 45, ("B", 1): 45}
    # Smallest is A0's 10/20 = 0.5.
    assert target_counts(c, strategy="undersample") == {
        ("A", 0): 10,
        ("A", 1): 10,
        ("B", 0): 15,
        ("B", 1): 15,
    }
    with pytest.raises(ValueError, match="strategy must be"):
        target_counts(c, strategy="reweight")  # type: ignore[arg-type]


def test_target_invariants_on_random_counts():
    rng = np.random.default_rng(2)
    counts = {(g, y): int(rng.integers(1, 500)) for g in "abcdefg" for y in (0, 1)}
    c = _counts(counts)
    over = target_counts(c, strategy="oversample")
    under = target_counts(c, strategy="undersample")
    hyb = target_counts(c, strategy="hybrid")
    assert all(over[k] >= counts[k] for k in counts) and all(under[k] <= counts[k] for k in counts)
    assert abs(sum(hyb.values()) - sum(counts.values())) <= len(counts) / 2
    p1 = sum(n for (_, y), n in counts.items() if y == 1) / sum(counts.values())
    for t in (over, under, hyb):
        for g in "abcdefg":
            n_g = t[(g, 0)] + t[(g, 1)]
            assert abs(t[(g, 1)] - p1 * n_g) <= 1.0  # every group gets the overall label rate


def test_plan_by_hand_and_unreachable_cells():
    c = _counts(HAND)
    plan = resample_plan(c, target_counts(c, strategy="hybrid"), seed=0, intersectional=False)
    got = {k: (p.n, p.target, p.base, p.extra) for k, p in plan.cells.items()}
    assert got == {
        ("A", 1): (30, 20, 0, 20),
        ("A", 0): (10, 20, 2, 0),
        ("B", 1): (20, 30, 1, 10),
        ("B", 0): (40, 30, 0, 30),
    }
    c2 = _counts({**HAND, ("C", 1): 5})
    plan2 = resample_plan(c2, target_counts(c2, strategy="hybrid"), seed=0, intersectional=False)
    assert plan2.unreachable == [("C", 0)]
    assert plan2.to_dict()["unreachable"] == [{"cell": "C", "label": 0}]


@pytest.mark.parametrize("strategy", ["hybrid", "oversample", "undersample"])
@pytest.mark.parametrize("intersectional", [False, True])
def test_resampling_hits_targets_exactly(strategy, intersectional):
    df = _random_frame(1500, seed=3)
    gc = {"female": 400, "male": 400, "muslim": 200, "gay": 200, "black": 100}
    out, plan = resample_frame(df, strategy=strategy, seed=11, intersectional=intersectional, group_counts=gc)
    got = _achieved(out, intersectional=intersectional, group_counts=gc)
    for cell, p in plan.cells.items():
        assert got.get(cell, 0) == p.target, cell
    assert len(out) == sum(p.target for p in plan.cells.values())
    assert out["id"].is_unique
    if strategy == "undersample":
        assert out["resampled_from"].isna().all() and set(out["id"]) <= set(df["id"])


def test_copies_are_named_and_identical_to_their_source():
    df = _random_frame(400, seed=4)
    out, plan = resample_frame(df, strategy="oversample", seed=0)
    copies = out[out["resampled_from"].notna()]
    assert len(copies) > 0
    assert copies["id"].str.match(r"^id\d{5}~r\d+$").all()
    src = df.set_index("id")
    for _, row in copies.head(30).iterrows():
        assert row["id"].startswith(row["resampled_from"] + "~r")
        assert row["label"] == src.loc[row["resampled_from"], "label"]
        assert list(row["groups"]) == list(src.loc[row["resampled_from"], "groups"])
    # Every source row appears at most once without a suffix.
    originals = out[out["resampled_from"].isna()]
    assert originals["id"].is_unique


@pytest.mark.parametrize("bins", [1, 16, 65536])
def test_three_batches_give_the_same_rows_as_one(bins):
    df = _random_frame(900, seed=5)
    one, plan = resample_frame(df, strategy="hybrid", seed=2, bins=bins)
    batches = [df.iloc[:250], df.iloc[250:251], df.iloc[251:]]
    counts = merge_cell_counts([cell_counts(b, intersectional=False) for b in batches])
    plan3 = resample_plan(
        counts, target_counts(counts, strategy="hybrid"), seed=2, intersectional=False, bins=bins
    )
    assert plan3 == plan
    hist = merge_u_histograms([u_histogram(b, cells=plan3) for b in batches])
    bb = boundary_bins(plan3, hist)
    bvals = pd.concat([boundary_values(b, cells=plan3, bin_index_per_cell=bb) for b in batches])
    th = thresholds(plan3, hist, bvals)
    three = pd.concat([apply_resample(b, plan=plan3, thresholds=th, seed=2) for b in batches])
    key = ["id"]
    a = one.sort_values(key).reset_index(drop=True)
    b = three.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="groups"), b.drop(columns="groups"))


def test_hybrid_balances_label_rate_per_group():
    df = _random_frame(3000, seed=6)
    out, _ = resample_frame(df, strategy="hybrid", seed=1)
    keys = cell_keys(out, intersectional=False)
    overall = df["label"].mean()
    for _, y in out.groupby(keys.to_numpy())["label"]:
        assert abs(y.mean() - overall) <= 1.0 / len(y) + 1e-12


def test_seed_changes_which_rows_are_copied_not_how_many():
    df = _random_frame(500, seed=7)
    a, _ = resample_frame(df, strategy="hybrid", seed=1)
    b, _ = resample_frame(df, strategy="hybrid", seed=2)
    assert len(a) == len(b) and set(a["id"]) != set(b["id"])


def test_mismatched_plan_is_refused():
    df = _random_frame(300, seed=8)
    counts = cell_counts(df, intersectional=False)
    plan = resample_plan(counts, target_counts(counts, strategy="hybrid"), seed=0, intersectional=False)
    hist = u_histogram(df, cells=plan)
    with pytest.raises(ValueError, match="differs from the plan's seed"):
        apply_resample(df, plan=plan, thresholds={}, seed=1)
    with pytest.raises(ValueError, match="the plan counted"):
        boundary_bins(plan, u_histogram(df.iloc[:200], cells=plan))
    with pytest.raises(ValueError, match="bins=10 differs"):
        u_histogram(df, cells=plan, bins=10)
    other = pd.DataFrame({"id": ["x"], "groups": [["new_group"]], "label": [1]})
    with pytest.raises(ValueError, match="not in the plan"):
        apply_resample(
            other,
            plan=plan,
            thresholds=thresholds(
                plan, hist, boundary_values(df, cells=plan, bin_index_per_cell=boundary_bins(plan, hist))
            ),
        )
    with pytest.raises(TypeError, match="ResamplePlan"):
        u_histogram(df, cells={"a": 1})  # type: ignore[arg-type]


def test_empty_batches_and_arrow_list_columns():
    df = _random_frame(200, seed=9)
    counts = cell_counts(df, intersectional=False)
    plan = resample_plan(counts, target_counts(counts, strategy="hybrid"), seed=0, intersectional=False)
    empty = df.iloc[:0]
    # A worker can get an empty block: every pass must answer with an empty, well-formed frame.
    assert list(u_histogram(empty, cells=plan).columns) == ["cell", "label", "bin", "n"]
    assert len(boundary_values(empty, cells=plan, bin_index_per_cell={})) == 0
    out = apply_resample(empty, plan=plan, thresholds={})
    assert len(out) == 0 and "resampled_from" in out.columns
    assert len(apply_weights(empty, weights={}, intersectional=False)) == 0
    assert merge_cell_counts([cell_counts(empty, intersectional=False), counts]).equals(counts)
    # pandas' Arrow-backed list column (as read from parquet with the pyarrow dtype backend).
    s = pd.Series([["x"], [], None, ["y", "x"]], dtype=pd.ArrowDtype(pa.list_(pa.string())))
    assert cell_keys(pd.DataFrame({"groups": s}), intersectional=True).tolist() == [
        "x",
        NONE_KEY,
        NONE_KEY,
        "x+y",
    ]
