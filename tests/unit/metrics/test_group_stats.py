"""GroupStats: merging equals building on the concatenation; serialisation round-trips."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_data import random_predictions

from debias.metrics import GroupStats, group_metrics


@pytest.mark.parametrize("weights", [False, True])
def test_merge_equals_from_batch_of_concat(weights):
    df = random_predictions(900, seed=1, weights=weights)
    parts = [df.iloc[:200], df.iloc[200:650], df.iloc[650:]]
    kw = {"intersections": [("black", "women")], "score_bins": 256}
    merged = GroupStats.merge_all([GroupStats.from_batch(p, **kw) for p in parts])
    whole = GroupStats.from_batch(df, **kw)
    assert merged == whole
    assert merged.merge(GroupStats.from_batch(df.iloc[:0], **kw)) == whole
    pd.testing.assert_frame_equal(group_metrics(merged), group_metrics(whole))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1), st.sets(st.sampled_from("abc")) | st.none()),
                min_size=1, max_size=40), st.integers(0, 40))
def test_merge_is_concat_on_arbitrary_rows(rows, cut):
    df = pd.DataFrame(rows, columns=["y_true", "y_score", "groups"])
    df["groups"] = df["groups"].map(lambda s: None if s is None else sorted(s))
    cut = min(cut, len(df))
    kw = {"score_bins": 64, "groups": ["a", "b", "c"]}
    a, b = GroupStats.from_batch(df.iloc[:cut], **kw), GroupStats.from_batch(df.iloc[cut:], **kw)
    assert a.merge(b) == GroupStats.from_batch(df, **kw)
    assert a.merge(b).n_rows == len(df)


def test_group_absent_from_one_batch_is_kept():
    a = pd.DataFrame({"y_true": [1, 0], "y_score": [0.9, 0.1], "groups": [["x"], []]})
    b = pd.DataFrame({"y_true": [1, 0], "y_score": [0.7, 0.2], "groups": [["y"], None]})
    m = GroupStats.from_batch(a).merge(GroupStats.from_batch(b))
    assert m.groups == ("x", "y")
    t = group_metrics(m, min_group_size=0).set_index("group")
    assert t.loc["x", "count"] == 1 and t.loc["y", "count"] == 1 and t.loc["unknown", "count"] == 1
    assert m.n_unknown == 1 and m.n_rows == 4


def test_to_dict_is_json_and_round_trips():
    s = GroupStats.from_batch(random_predictions(200, seed=2, weights=True), score_bins=128)
    d = json.loads(json.dumps(s.to_dict()))
    back = GroupStats.from_dict(d)
    assert back == s
    np.testing.assert_array_equal(back.cells, s.cells)
    assert pickle.loads(pickle.dumps(s)) == s


def test_merge_refuses_different_bins():
    df = random_predictions(50, seed=3)
    with pytest.raises(ValueError, match="different score_bins"):
        GroupStats.from_batch(df, score_bins=64).merge(GroupStats.from_batch(df, score_bins=128))


def test_empty_list_is_known_and_null_is_unknown():
    df = pd.DataFrame({"y_true": [1, 0, 1], "y_pred": [1, 0, 0], "groups": [[], None, ["a"]]})
    s = GroupStats.from_batch(df)
    assert s.n_unknown == 1
    assert s.cell_table(["known"]).sum() == 2
    assert s.cell_table(["rest:a"]).sum() == 1  # the [] row; the unknown row is neither in nor out
    assert not s.has_score


def test_repeated_name_in_a_list_counts_once():
    df = pd.DataFrame({"y_true": [1], "y_pred": [1], "groups": [["a", "a"]]})
    assert GroupStats.from_batch(df).cell_table(["a"]).sum() == 1


@pytest.mark.parametrize("with_scores", [True, False])
def test_categorical_column_equals_the_same_values_as_strings(with_scores):
    """The categorical fast path (codes, unused categories dropped, nulls unknown) gives the
    statistics that factorising the plain strings gives."""
    rng = np.random.default_rng(3)
    n = 500
    names = np.array(["b", "a", "c", None], dtype=object)[rng.integers(0, 4, n)]
    df = pd.DataFrame({"y_true": rng.integers(0, 2, n), "y_pred": rng.integers(0, 2, n)})
    if with_scores:
        df["y_score"] = rng.random(n)
    cat = df.assign(group=pd.Categorical(names, categories=["zz_unused", "c", "b", "a"]))
    obj = df.assign(group=pd.Series(names, dtype=object))
    a = GroupStats.from_batch(cat, group_col="group")
    b = GroupStats.from_batch(obj, group_col="group")
    assert a == b
    assert "zz_unused" not in a.groups and a.n_unknown == int(pd.isna(names).sum())
