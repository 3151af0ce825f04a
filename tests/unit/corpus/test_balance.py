"""Cells and Kamiran-Calders reweighing on hand-worked and random frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from cell_frames import HAND, _counts, _random_frame

from debias.corpus.balance import (
    NONE_KEY,
    apply_weights,
    cell_counts,
    cell_keys,
    compute_weights,
    merge_cell_counts,
)


def test_cell_keys_rules():
    df = pd.DataFrame(
        {
            "groups": [
                [],
                None,
                ["gay"],
                ["muslim", "female"],
                np.array(["female", "muslim"]),
                ["b", "a"],
                float("nan"),
            ]
        }
    )
    counts = {"female": 100, "muslim": 10, "a": 5, "b": 5}
    assert cell_keys(df, intersectional=True).tolist() == [
        NONE_KEY,
        NONE_KEY,
        "gay",
        "female+muslim",
        "female+muslim",
        "a+b",
        NONE_KEY,
    ]
    # Rarest group wins; equal counts: first by name.
    assert cell_keys(df, intersectional=False, group_counts=counts).tolist() == [
        NONE_KEY,
        NONE_KEY,
        "gay",
        "muslim",
        "muslim",
        "a",
        NONE_KEY,
    ]
    # Without counts: first by name.
    assert cell_keys(df, intersectional=False).tolist()[3] == "female"


def test_cell_keys_arrow_list_column_matches_python_lists():
    rows = [[], None, ["gay"], ["muslim", "female"], ["female", "muslim"], ["b", "a"]] * 2
    arrow = pd.DataFrame({"groups": pd.Series(pd.arrays.ArrowExtensionArray(
        pa.chunked_array([pa.array(rows[:5], pa.list_(pa.string())), pa.array(rows[5:], pa.list_(pa.string()))])),
        index=range(10, 22))})
    plain = pd.DataFrame({"groups": pd.Series(rows, dtype=object, index=range(10, 22))})
    counts = {"female": 100, "muslim": 10, "a": 5, "b": 5}
    for kw in ({"intersectional": True}, {"intersectional": False, "group_counts": counts}):
        got = cell_keys(arrow, **kw)
        assert got.tolist() == cell_keys(plain, **kw).tolist()
        assert got.index.tolist() == list(range(10, 22))
    assert cell_keys(arrow, intersectional=True).tolist()[:6] == [NONE_KEY, NONE_KEY, "gay", "female+muslim",
                                                                  "female+muslim", "a+b"]


def test_cell_keys_bad_input():
    with pytest.raises(ValueError, match="missing column 'groups'"):
        cell_keys(pd.DataFrame({"x": [1]}), intersectional=False)
    with pytest.raises(TypeError, match="list of group names"):
        cell_keys(pd.DataFrame({"groups": ["female"]}), intersectional=False)


def test_cell_counts_merge_over_batches():
    df = _random_frame(600)
    whole = cell_counts(df, intersectional=True)
    parts = merge_cell_counts([cell_counts(df.iloc[i::3], intersectional=True) for i in range(3)])
    pd.testing.assert_frame_equal(whole, parts)
    assert whole["n"].sum() == 600


def test_kamiran_calders_weights_by_hand():
    w = compute_weights(_counts(HAND), method="kamiran_calders")
    # w = n_g n_y / (N n_gy)
    assert w[("A", 1)] == pytest.approx(40 * 50 / (100 * 30))
    assert w[("A", 0)] == pytest.approx(2.0)
    assert w[("B", 1)] == pytest.approx(1.5)
    assert w[("B", 0)] == pytest.approx(0.75)
    assert sum(w[c] * n for c, n in HAND.items()) == pytest.approx(100)


def test_inverse_frequency_weights_by_hand():
    w = compute_weights(_counts(HAND), method="inverse_frequency")
    assert w[("A", 1)] == pytest.approx(100 / (4 * 30))
    assert w[("B", 0)] == pytest.approx(0.625)
    # Every cell carries the same total weight N / K.
    assert {round(w[c] * n, 9) for c, n in HAND.items()} == {25.0}


@pytest.mark.parametrize("method", ["kamiran_calders", "inverse_frequency"])
def test_weights_average_one_even_with_an_empty_cell(method):
    counts = {**HAND, ("C", 1): 7}  # (C, 0) is empty
    w = compute_weights(_counts(counts), method=method)
    assert set(w) == set(counts)
    assert sum(w[c] * n for c, n in counts.items()) == pytest.approx(sum(counts.values()))


def test_kamiran_calders_makes_label_independent_of_group():
    df = _random_frame(2000, seed=1)
    counts = cell_counts(df, intersectional=False)
    out = apply_weights(df, weights=compute_weights(counts, method="kamiran_calders"), intersectional=False)
    assert out["sample_weight"].mean() == pytest.approx(1.0)
    out["cell"] = cell_keys(df, intersectional=False)
    overall = (out["sample_weight"] * out["label"]).sum() / out["sample_weight"].sum()
    for _, sub in out.groupby("cell"):
        rate = (sub["sample_weight"] * sub["label"]).sum() / sub["sample_weight"].sum()
        assert rate == pytest.approx(overall)


def test_apply_weights_unknown_cell_and_bad_method():
    df = pd.DataFrame({"groups": [["Z"]], "label": [1]})
    with pytest.raises(ValueError, match="no weight for cell \\('Z', 1\\)"):
        apply_weights(df, weights={("A", 1): 1.0}, intersectional=False)
    with pytest.raises(ValueError, match="method must be"):
        compute_weights(_counts(HAND), method="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must hold class ids"):
        apply_weights(pd.DataFrame({"groups": [[]], "label": ["unknown"]}), weights={}, intersectional=False)


def test_k_class_weights_make_group_and_class_independent():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"groups": [["A"] if rng.random() < 0.3 else [] for _ in range(400)],
                       "label": rng.integers(0, 3, 400)})
    counts = cell_counts(df, intersectional=False)
    w = compute_weights(counts)
    out = apply_weights(df, weights=w, intersectional=False)
    a = np.array([g == ["A"] for g in df["groups"]])
    y = df["label"].to_numpy()
    for k in range(3):  # weighted P(class k | group) equals the overall P(class k) in every cell
        for m in (a, ~a):
            sw = out["sample_weight"].to_numpy()[m]
            assert (sw * (y[m] == k)).sum() / sw.sum() == pytest.approx((y == k).mean())
    assert out["sample_weight"].sum() == pytest.approx(len(df))
