"""Key files: partition count, write and reduce, against one dedup_counts call."""

import pandas as pd
import pytest
from corpus_batches import _prepared_blocks

from debias.corpus.dedup import dedup_counts, dedup_view
from debias.corpus.patterns import (
    merge_pattern_counts,
)
from debias.io import to_arrow


def test_key_partition_count_fills_every_cpu_and_bounds_each_partition():
    from debias.corpus.keyfiles import KEY_PARTITION_BYTES, key_partition_count

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

    from debias.corpus.keyfiles import key_file_rows, reduce_key_partitions, write_key_partitions

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

