"""Exact de-duplication: the key route against the full-row rule, row refs, key numbers and partitions."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from corpus_batches import _cfg, _prepared_blocks, _raw

from debias.corpus.dedup import dedup_block, dedup_counts, dedup_view, keep_table, key_partitions
from debias.corpus.patterns import (
    merge_pattern_counts,
    pattern_counts,
)
from debias.corpus.prepare import prepare_batch
from debias.io import to_arrow


def test_dedup_keeps_smallest_id_per_key():
    df = pd.DataFrame({"id": ["b", "a", "c"], "dedup_key": ["k", "k", "z"], "text": ["x", "x", "y"]})
    assert dedup_block(df)["id"].tolist() == ["a", "c"]


@pytest.mark.parametrize("seed", range(4))
def test_key_only_dedup_equals_full_row_dedup(seed):
    """The shuffle-free-of-text path (dedup_view -> dedup_counts -> keep_table) keeps exactly
    the rows that dedup_block keeps, and counts them as pattern_counts does."""
    from debias.corpus.dedup import kept_view

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
    from debias.corpus.dedup import key_values

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

