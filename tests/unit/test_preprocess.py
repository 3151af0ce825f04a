"""The per-batch composition of the corpus pipeline (no Ray)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from debias.config import load_config
from debias.corpus import audit, balance
from debias.corpus.prepare import (
    audit_from_patterns,
    cells_from_patterns,
    dedup_block,
    dedup_counts,
    dedup_view,
    keep_table,
    key_partitions,
    make_ids,
    merge_pattern_counts,
    pattern_counts,
    pattern_strings,
    prepare_batch,
    run_local,
)
from debias.io import to_arrow


def _cfg(**sets):
    return load_config(base={"data": {"path": "x.csv", "text_col": "comment", "label_col": "y"}},
                       overrides=[f"{k}={v}" for k, v in sets.items()]).model_dump()


def _raw():
    return pd.DataFrame({
        "comment": ["Women are great", "women   are GREAT", "the muslim man", None, "hi @bob see http://a.b/c",
                    "gay and black", "plain text"],
        "y": ["1", "1", "0", "1", "0", "maybe", "0"],
    })


def test_prepare_batch_cleans_annotates_rejects_and_splits():
    out = prepare_batch(_raw(), cfg=_cfg())
    assert list(out["reject_reason"].isna()) == [True, True, True, False, True, False, True]
    assert out.loc[3, "reject_reason"] == "null_text"
    assert out.loc[5, "reject_reason"].startswith("unknown_label")
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


def test_dedup_keeps_smallest_id_per_key():
    df = pd.DataFrame({"id": ["b", "a", "c"], "dedup_key": ["k", "k", "z"], "text": ["x", "x", "y"]})
    assert dedup_block(df)["id"].tolist() == ["a", "c"]


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


@pytest.mark.parametrize("seed", range(4))
def test_key_only_dedup_equals_full_row_dedup(seed):
    """The shuffle-free-of-text path (dedup_view -> dedup_counts -> keep_table) keeps exactly
    the rows that dedup_block keeps, and counts them as pattern_counts does."""
    from debias.corpus.prepare import kept_view

    blocks = _prepared_blocks(seed)
    whole = pd.concat(blocks, ignore_index=True)
    oracle = dedup_block(kept_view(whole))
    # partition the key-only view by dedup_key into 3 blocks, as the job's key files do
    view = pd.concat([dedup_view(b) for b in blocks], ignore_index=True)
    res = pd.concat([dedup_counts(part) for _, part in view.groupby(view["dedup_key"].map(hash) % 3)],
                    ignore_index=True)
    assert not (res["kind"] == "collision").any()
    drops = res.loc[res["kind"] == "drop", "ref"].to_numpy(dtype=object)
    kept = pd.concat([keep_table(to_arrow(b), drop_refs=drops).to_pandas() for b in blocks], ignore_index=True)
    assert len(drops) == len(kept_view(whole)) - len(oracle) > 0
    # rows tied on (key, id) are identical (a generated id hashes the raw row), so compare content
    def content(d):
        return sorted(zip(d["id"], d["text"], d["label"], d["split"], [tuple(g) for g in d["groups"]], strict=True))
    assert content(kept) == content(oracle)
    counts = res[res["kind"] == "count"].astype({"label": "int64", "n": "int64"})
    mine = merge_pattern_counts([counts[["split", "pattern", "label", "n"]]])
    theirs = merge_pattern_counts([pattern_counts(oracle)])
    pd.testing.assert_frame_equal(mine.sort_values(["split", "pattern", "label"]).reset_index(drop=True),
                                  theirs.sort_values(["split", "pattern", "label"]).reset_index(drop=True),
                                  check_dtype=False)


def test_row_refs_differ_across_files_and_a_file_read_twice_is_a_collision():
    a, b = _prepared_blocks(0)
    assert not set(a["row_ref"]) & set(b["row_ref"])
    view = pd.concat([dedup_view(a), dedup_view(a)], ignore_index=True)  # the same file twice
    res = dedup_counts(view)
    assert (res["kind"] == "collision").sum() == 1


@pytest.mark.parametrize("intersectional", [False, True])
def test_pattern_counts_give_the_same_audit_and_cells_as_row_counts(intersectional):
    df, names = _rows()
    pc = merge_pattern_counts([pattern_counts(df.iloc[:150]), pattern_counts(df.iloc[150:])])
    got = audit_from_patterns(pc, group_names=names)
    want = audit.audit_counts(df, group_names=names)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    gc = audit.group_counts(want)
    cells = cells_from_patterns(pc, intersectional=intersectional, group_counts=gc)
    direct = balance.cell_counts(df[df["split"] == "train"], intersectional=intersectional, group_counts=gc)
    key = ["cell", "label"]
    pd.testing.assert_frame_equal(cells.sort_values(key).reset_index(drop=True),
                                  direct.sort_values(key).reset_index(drop=True)[key + ["n"]], check_dtype=False)


def test_run_local_accounts_for_every_row():
    raw = pd.concat([_raw()] * 3, ignore_index=True)
    res = run_local(raw, cfg=_cfg(**{"balance.strategy": "reweight"}))
    kept = len(raw) - res["n_rejected"] - res["n_duplicates"]
    assert res["n_read"] == len(raw) and res["n_rejected"] == 6
    assert len(res["output"]) == kept  # no augmentation configured
    assert (res["output"]["sample_weight"] > 0).all()


def test_pattern_strings_arrow_path_matches_python_lists():
    import pyarrow as pa

    rows = [["b", "a"], [], None, ["x"], ["c", "a", "b"], ["gay", "female"]] * 3
    want = ["a+b", "", "", "x", "a+b+c", "female+gay"] * 3
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(
        [pa.array(rows[:7], pa.list_(pa.string())), pa.array(rows[7:], pa.list_(pa.string()))])))
    assert isinstance(arrow.dtype, pd.ArrowDtype)
    assert pattern_strings(arrow) == want
    assert pattern_strings(pd.Series(rows, dtype=object)) == want
    assert pattern_strings(arrow.iloc[4:6]) == want[4:6]  # a slice: offsets into the chunk
    from debias.corpus.prepare import pattern_array

    flat = pa.array(rows, pa.list_(pa.string()))
    assert pattern_array(flat).to_pylist() == want
    assert pattern_array(flat.slice(3, 4)).to_pylist() == want[3:7]  # unsorted rows inside a slice
    assert pattern_array(flat.slice(1, 3)).to_pylist() == want[1:4]  # no row out of order
    assert pattern_array(pa.array([], pa.list_(pa.string()))).to_pylist() == []


@pytest.mark.parametrize("seed", range(3))
def test_dedup_view_of_an_arrow_table_equals_the_pandas_view(seed):
    """The job's prepare tasks build the key view from the Arrow table they return."""
    with_rejects = prepare_batch(_raw(), cfg=_cfg())
    for block in [*_prepared_blocks(seed), with_rejects]:
        want = dedup_view(block)
        got = dedup_view(to_arrow(block))
        assert isinstance(got, pa.Table) and got.num_rows == len(want)
        pd.testing.assert_frame_equal(got.to_pandas().astype(want.dtypes.to_dict()), want)
    assert len(dedup_view(with_rejects)) == with_rejects["reject_reason"].isna().sum() < len(with_rejects)
    table = to_arrow(with_rejects)
    rejects = dedup_view(table.filter(table["reject_reason"].is_valid()))
    assert rejects.num_rows == 0 and rejects.schema == dedup_view(table).schema


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


def test_key_partitions_read_the_first_8_hex_digits_of_each_key():
    from debias.corpus.clean import dedup_key

    keys = pd.Series(dedup_key([f"text {i}" for i in range(500)] + ["TEXT 1", "text  1"]), dtype="string")
    for n in (1, 2, 7, 64):
        got = key_partitions(keys, n)
        assert got.tolist() == [int(k[:8], 16) % n for k in keys]  # the oracle: Python's int()
        assert got[1] == got[500] == got[501]  # one key (casefold, spacing), one partition
    assert np.bincount(key_partitions(keys, 4), minlength=4).min() > 80  # spread, not lumped
    assert key_partitions(pd.Series([], dtype="string"), 3).tolist() == []
    for bad in (["zz" * 8], ["abc"]):
        with pytest.raises(ValueError, match="16 hex digits"):
            key_partitions(pd.Series(bad), 3)


def test_key_values_spell_each_key_as_its_uint64_from_every_input_type():
    from debias.corpus.clean import dedup_key
    from debias.corpus.prepare import key_values

    keys = dedup_key([f"row {i}" for i in range(300)]) + ["ffffffffffffffff", "0000000000000000", "00FF00ff00Ff00fF"]
    oracle = [int(k, 16) for k in keys]  # Python's int() reads all 16 digits
    arrow = pa.array(keys, type=pa.string())
    sliced = pa.chunked_array([arrow.slice(0, 7), arrow.slice(7)])  # non-zero offsets, two chunks
    cases = [(pd.Series(keys, dtype=object), oracle), (pd.Series(keys, dtype="string"), oracle), (keys, oracle),
             (arrow, oracle), (arrow.cast(pa.large_string()), oracle), (sliced, oracle), (arrow.slice(5), oracle[5:])]
    for given, want in cases:
        got = key_values(given)
        assert got.dtype == np.uint64 and [int(v) for v in got] == want
    assert key_values(pa.chunked_array([], type=pa.string())).tolist() == []
    for bad in (["g" * 16], ["abc"], [None], ["a" * 17], [1234567890123456]):
        with pytest.raises(ValueError, match="16 hex digits"):
            key_values(pd.Series(bad, dtype=object))


def test_key_partition_count_fills_every_cpu_and_bounds_each_partition():
    from jobs.preprocess import KEY_PARTITION_BYTES, key_partition_count

    assert key_partition_count(10, cpus=2) == 2
    assert key_partition_count(10, cpus=1) == 2  # never a single reducer
    assert key_partition_count(2 * KEY_PARTITION_BYTES, cpus=2) == 2
    assert key_partition_count(2 * KEY_PARTITION_BYTES + 1, cpus=2) == 4
    for size in (1, 10**8, 10**10, 10**11):
        for cpus in (1, 2, 3, 16, 64):
            n = key_partition_count(size, cpus=cpus)
            assert n <= 1024 and (n % cpus == 0 or n in (2, 1024))
            assert n == 1024 or size / n <= KEY_PARTITION_BYTES  # no partition above the bound
    assert key_partition_count(10**13, cpus=16) == 1024


@pytest.mark.parametrize("arrow", [False, True])
@pytest.mark.parametrize("nparts", [2, 16])
def test_key_files_reduce_to_what_dedup_counts_gives_on_all_rows(tmp_path, nparts, arrow):
    """The job's key files (one per block, one batch per partition, many empty at 16) and
    reduce tasks over ranges of partitions give the drops and counts of one dedup_counts call
    over every block's view."""
    import pyarrow.fs as pafs

    from jobs.preprocess import key_file_rows, reduce_key_partitions, write_key_partitions

    fs = pafs.LocalFileSystem()
    blocks = _prepared_blocks(3)
    views = [dedup_view(to_arrow(b) if arrow else b) for b in blocks]  # the job's are Arrow
    paths = [str(tmp_path / f"{i}.arrow") for i in range(len(views))]
    for path, v in zip(paths, views, strict=True):
        write_key_partitions(fs, path, v, nparts)
    assert key_file_rows(fs, paths) == sum(len(v) for v in views)
    reduce = reduce_key_partitions(dedup_counts)
    ranges = [list(range(0, nparts // 2)), list(range(nparts // 2, nparts))]  # two tasks
    got = pd.concat([reduce(pd.DataFrame({"id": r}), fs=fs, files=paths, nparts=nparts).to_pandas()
                     for r in ranges], ignore_index=True)
    want = dedup_counts(pd.concat([dedup_view(b) for b in blocks], ignore_index=True))
    for res in (got, want):
        assert not (res["kind"] == "collision").any()
    assert sorted(got.loc[got["kind"] == "drop", "ref"]) == sorted(want.loc[want["kind"] == "drop", "ref"])
    assert (want["kind"] == "drop").sum() > 0
    counts = [merge_pattern_counts([r.loc[r["kind"] == "count", ["split", "pattern", "label", "n"]]
                                    .astype({"label": "int64", "n": "int64"})])
              .sort_values(["split", "pattern", "label"]).reset_index(drop=True) for r in (got, want)]
    pd.testing.assert_frame_equal(counts[0], counts[1], check_dtype=False)
    with pytest.raises(RuntimeError, match="partitions, expected"):
        reduce(pd.DataFrame({"id": [0]}), fs=fs, files=paths, nparts=nparts + 1)


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


def test_with_membership_adds_one_flag_column_per_group_after_groups():
    from jobs.preprocess import with_membership

    rng = np.random.default_rng(3)
    names = ["a", "b", "c", "d", "e"]
    rows = [[str(g) for g in rng.choice(names, size=rng.integers(0, 4), replace=False)] for _ in range(1003)]
    rows[7] = None  # a null list: no group
    full = pa.table({"id": [f"r{i}" for i in range(len(rows))], "groups": pa.array(rows, type=pa.list_(pa.string())),
                     "label": np.arange(len(rows)) % 2})
    full = full.replace_schema_metadata({"k": "v"})
    for table in (full, full.slice(5, 900), full.slice(0, 0)):
        out = with_membership(table, names)
        assert out.column_names == ["id", "groups"] + [f"g_{g}" for g in names] + ["label"]
        assert out.schema.metadata == {b"k": b"v"}
        for g in names:  # the oracle: a plain membership test per row
            assert out[f"g_{g}"].to_pylist() == [g in (r or []) for r in table["groups"].to_pylist()]
        assert out.select(["id", "groups", "label"]).equals(table.select(["id", "groups", "label"]))
        assert with_membership(out, names) is out  # already there: unchanged


def test_freeze_startup_heap_freezes_once_per_process(monkeypatch):
    import gc

    from debias.corpus import prepare as P

    monkeypatch.setattr(P, "_FROZEN", False)
    before = gc.get_freeze_count()  # this process may have frozen already (run_local in a test)
    alive = [[i] for i in range(1000)]  # tracked objects alive before the call, not yet frozen
    assert P.freeze_startup_heap() is True
    frozen = gc.get_freeze_count()
    assert frozen >= before + len(alive)  # they moved to the permanent generation
    assert P.freeze_startup_heap() is False and gc.get_freeze_count() == frozen  # once only


def test_intermediate_dictionary_columns_exist_in_the_prepared_schema(tmp_path):
    """The writer settings name the prepared rows' few-valued columns; a renamed column would
    silently lose its dictionary, so each named column must be a leaf of the written file."""
    import pyarrow.parquet as pq

    from jobs.preprocess import INTERMEDIATE_PARQUET_ARGS

    out = to_arrow(prepare_batch(_raw(), cfg=_cfg(), flags=False))
    pq.write_table(out, tmp_path / "p.parquet", **INTERMEDIATE_PARQUET_ARGS)
    meta = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    named = INTERMEDIATE_PARQUET_ARGS["use_dictionary"]
    assert set(named) <= set(chunks)
    assert all("RLE_DICTIONARY" in chunks[c] for c in named)
    assert all("RLE_DICTIONARY" not in enc for c, enc in chunks.items() if c not in named)
