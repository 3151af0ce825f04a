"""Prepare one batch: ids, clean, annotate, split, the g_ flags, the heap freeze, writer settings."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from corpus_batches import _cfg, _raw

from debias.corpus.prepare import make_ids, prepare_batch
from debias.io import to_arrow


def test_prepare_batch_cleans_annotates_rejects_and_splits():
    out = prepare_batch(_raw(), cfg=_cfg())
    assert list(out["reject_reason"].isna()) == [True, True, True, False, True, False, True]
    assert out.loc[3, "reject_reason"] == "null_text"
    assert out.loc[5, "reject_reason"] == "unknown_label"
    assert out.loc[5, "raw_label"] == "maybe"
    assert out.loc[4, "text"] == "hi [USER] see [URL]"
    assert out.loc[0, "dedup_key"] == out.loc[1, "dedup_key"]  # case and spacing fold
    assert sorted(out.loc[2, "groups"]) == ["male", "muslim"]
    assert bool(out.loc[2, "g_muslim"]) and not bool(out.loc[0, "g_muslim"])
    assert set(out["split"]) <= {"train", "val", "test"}
    assert out["id"].is_unique


def test_ids_are_stable_and_given_ids_win():
    raw = _raw()
    a = make_ids(raw, id_col=None, text_col="comment", label_col="y")
    b = make_ids(raw.iloc[::-1], id_col=None, text_col="comment", label_col="y")
    assert a.tolist() == b.iloc[::-1].tolist()
    raw["rid"] = ["a", None, "c", "d", "", "f", "g"]
    ids = make_ids(raw, id_col="rid", text_col="comment", label_col="y")
    assert ids[0] == "a" and ids[2] == "c" and ids[1].startswith("h") and ids[4].startswith("h")


@pytest.mark.parametrize("values", [
    pd.Series(["a", "b", "", "é"]),
    pd.Series(["a", None, float("nan"), b"caf\xc3\xa9", b"\xff", 3, 2.5]),
    pd.Series([1, 2, 30], dtype="int64"),
    pd.Series([1, None], dtype="Int64"),
    pd.Series([1.0, float("nan")]),
    pd.Series(["x", None], dtype="string"),
    pd.Series([True, False]),
])
def test_as_str_fast_paths_match_the_row_by_row_rule(values):
    from debias.corpus.prepare import _as_str

    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="replace")
        return str(v)

    assert _as_str(values).tolist() == [one(v) for v in values]


def test_make_ids_hash_only_rows_without_an_id():
    df = pd.DataFrame({"id": ["a", None, "", 7], "t": ["x", "y", "y", "z"], "y": [1, 0, 0, 1]})
    ids = make_ids(df, id_col="id", text_col="t", label_col="y").tolist()
    gen = make_ids(df, id_col=None, text_col="t", label_col="y").tolist()
    assert ids[0] == "a" and ids[3] == "7"
    assert ids[1] == gen[1] and ids[2] == gen[2] and ids[1] == ids[2]  # same text and label: same hash
    assert all(g.startswith("h") and len(g) == 17 for g in gen)


@pytest.mark.parametrize("given", [False, True])
def test_membership_flags_rebuild_the_g_columns_of_prepare_batch(given):
    """The job drops the g_<group> columns from its intermediate and rebuilds them from
    `groups` (debias.identity.annotate.membership_flags, groups in member_groups order)."""
    from debias.corpus.prepare import member_groups
    from debias.identity.annotate import membership_flags
    from debias.schema import group_columns

    raw = _raw()
    sets = {}
    if given:
        raw["score_women"] = [0.9 if i % 2 else 0.1 for i in range(len(raw))]
        sets = {"data.identity.columns": "{female: score_women}"}
    cfg = _cfg(**sets)
    out = prepare_batch(raw, cfg=cfg)
    groups = member_groups(cfg)
    assert [c for c in out.columns if c.startswith("g_")] == group_columns(groups)
    flags = membership_flags(pa.array(out["groups"].tolist(), type=pa.list_(pa.string())), groups)
    assert flags.any()
    np.testing.assert_array_equal(flags, out[group_columns(groups)].to_numpy(dtype=bool))
    with pytest.raises(ValueError, match="not among"):
        membership_flags(pa.array([["female", "martian"]], type=pa.list_(pa.string())), groups)
    # What the job's prepare tasks compute: the same frame without the flags.
    bare = prepare_batch(raw, cfg=cfg, flags=False)
    assert not [c for c in bare.columns if c.startswith("g_")]
    pd.testing.assert_frame_equal(bare, out.drop(columns=group_columns(groups)))


def test_freeze_startup_heap_freezes_once_per_process(monkeypatch):
    import gc

    from debias.corpus import prepare as P

    monkeypatch.setattr(P, "_FROZEN", False)
    calls = []
    real_freeze = gc.freeze

    def counted_freeze():
        calls.append(1)
        real_freeze()

    # Count the calls: the frozen count itself can fall between two reads, when frozen objects
    # (of this or an earlier test) are freed, so it cannot show "froze once" on its own.
    monkeypatch.setattr(P.gc, "freeze", counted_freeze)
    before = gc.get_freeze_count()  # this process may have frozen already (run_local in a test)
    alive = [[i] for i in range(1000)]  # tracked objects alive before the call, not yet frozen
    assert P.freeze_startup_heap() is True
    assert gc.get_freeze_count() >= before + len(alive)  # they moved to the permanent generation
    assert P.freeze_startup_heap() is False and len(calls) == 1  # once only


def test_intermediate_dictionary_columns_exist_in_the_prepared_schema(tmp_path):
    """The writer settings name the prepared rows' few-valued columns; a renamed column would
    silently lose its dictionary, so each named column must be a leaf of the written file."""
    import pyarrow.parquet as pq

    from debias.corpus.prepare import INTERMEDIATE_PARQUET_ARGS

    out = to_arrow(prepare_batch(_raw(), cfg=_cfg(), flags=False))
    pq.write_table(out, tmp_path / "p.parquet", **INTERMEDIATE_PARQUET_ARGS)
    meta = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    named = INTERMEDIATE_PARQUET_ARGS["use_dictionary"]
    assert set(named) <= set(chunks)
    assert all("RLE_DICTIONARY" in chunks[c] for c in named)
    assert all("RLE_DICTIONARY" not in enc for c, enc in chunks.items() if c not in named)



def test_membership_flags_of_a_typeless_empty_groups_column():
    """A block whose rows are all rejects leaves no kept rows; pandas hands the empty `groups`
    back as Arrow's null type, which must give no flags rather than fail the final pass."""
    from debias.identity.annotate import membership_flags

    assert membership_flags(pa.nulls(0), ["female", "male"]).shape == (0, 2)
