"""Key files: how the job's de-duplication moves the dedup key view between its passes.

Each prepared block writes one Arrow IPC file (:func:`write_key_partitions`) whose record batch
``p`` holds the block's rows of key partition ``p``; a reduce task reads, for each partition it
owns, that batch of every file (:func:`reduce_key_partitions`), so every row of one key meets in
one task without a shuffle. The row count in each file's schema metadata lets the driver check
that the files hold every prepared row (:func:`key_file_rows`) before trusting them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from debias.corpus.dedup import key_partitions
from debias.io import to_arrow

__all__ = ["KEY_PARTITION_BYTES", "KEY_ROWS", "MAX_KEY_PARTITIONS", "key_file_rows", "key_partition_count",
           "reduce_key_partitions", "write_key_partitions"]

KEY_PARTITION_BYTES = 48_000_000  # at most this much input per partition
MAX_KEY_PARTITIONS = 1024  # each key file has one record batch per partition
KEY_ROWS = "debias.rows"  # key files' schema metadata: the number of rows


def key_partition_count(input_bytes: int, cpus: int) -> int:
    """De-duplication partitions: a multiple of the cluster's CPUs (every reduce wave uses
    them all), with at most :data:`KEY_PARTITION_BYTES` of input each (the reducer holds
    their key view in memory); at least 2, at most :data:`MAX_KEY_PARTITIONS`. Few large
    partitions beat many small ones: each costs a read of every key file."""
    cpus = max(1, int(cpus))
    waves = max(1, -(-int(input_bytes) // (KEY_PARTITION_BYTES * cpus)))
    return int(min(MAX_KEY_PARTITIONS, max(2, waves * cpus)))


def write_key_partitions(fs: pafs.FileSystem, path: str, view: pd.DataFrame | pa.Table, nparts: int) -> None:
    """One Arrow IPC file for one prepared block's dedup view
    (:func:`debias.corpus.dedup.dedup_view`, pandas or Arrow): record batch ``p`` holds the
    rows of partition ``p`` (possibly none), and the schema's metadata the row count.

    IPC rather than parquet: a reducer reads one batch of every file, and an IPC footer is a
    few bytes per batch where a parquet footer carries metadata per column per row group,
    which every reducer would read for every file."""
    table = view if isinstance(view, pa.Table) else to_arrow(view)
    part = key_partitions(table["dedup_key"], nparts)
    order = np.argsort(part, kind="stable")
    table = table.take(order).combine_chunks()  # so each slice is one record batch
    table = table.replace_schema_metadata({KEY_ROWS: str(table.num_rows)})
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=nparts))])
    empty = pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in table.schema], schema=table.schema)
    with fs.open_output_stream(path) as f, pa.ipc.new_file(f, table.schema) as w:
        for p in range(nparts):
            batches = table.slice(int(bounds[p]), int(bounds[p + 1] - bounds[p])).to_batches()
            if len(batches) > 1:
                raise RuntimeError(f"partition {p} of {path}: {len(batches)} batches, expected one")
            w.write_batch(batches[0] if batches else empty)  # an empty partition still has its batch


def key_file_rows(fs: pafs.FileSystem, files: list[str]) -> int:
    """Rows in the key files, from their schemas' metadata (no batch is read)."""
    total = 0
    for path in files:
        with fs.open_input_file(path) as f:
            total += int(pa.ipc.open_file(f).schema.metadata[KEY_ROWS.encode()])
    return total


def reduce_key_partitions(counts_fn: Callable[[Any], pd.DataFrame]):
    """The reduce side of the key partitions: the partitions named in the batch, each from its
    record batch in every key file (each file opened once per task) -> ``counts_fn``
    (:func:`debias.corpus.dedup.dedup_counts`)."""
    def reduce_keys(batch: pd.DataFrame, *, fs: pafs.FileSystem, files: list[str], nparts: int) -> pa.Table:
        mine = [int(p) for p in batch["id"].tolist()]
        parts: dict[int, list[pa.RecordBatch]] = {p: [] for p in mine}
        for path in files:
            with fs.open_input_file(path) as f:
                reader = pa.ipc.open_file(f)
                if reader.num_record_batches != nparts:
                    raise RuntimeError(f"{path}: {reader.num_record_batches} partitions, expected {nparts}")
                for p in mine:
                    parts[p].append(reader.get_batch(p))
        outs = []
        for p in mine:
            # Files may differ in string type (string / large_string): promote, as Ray does.
            tables = [pa.Table.from_batches([b]) for b in parts.pop(p)]
            view = pa.concat_tables(tables, promote_options="permissive") if tables else pd.DataFrame()
            outs.append(to_arrow(counts_fn(view)))
        return pa.concat_tables(outs, promote_options="permissive")

    return reduce_keys
