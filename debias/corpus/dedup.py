"""Exact de-duplication of prepared rows, by dedup key, without moving their texts.

The job de-duplicates a corpus that no one process holds: each prepared block's kept rows are
reduced to a small key view (:func:`dedup_view`: key, row ref, id and the few columns the counts
need), partitioned by key (:func:`key_partitions`, :mod:`debias.corpus.keyfiles`); each
partition names its rows to drop and counts the rows it keeps (:func:`dedup_counts`); the final
pass filters the prepared rows by row ref (:func:`keep_table`). :func:`dedup_block` is the
plain full-row rule (keep the smallest id per key) that the single process and the job's
fallback use, and the oracle the key route is tested against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pac

from debias.corpus.patterns import pattern_array, pattern_strings
from debias.schema import READ_REJECT_REASONS

__all__ = ["COUNT_COLUMNS", "DROPPED_COLS", "counts_from_tables", "dedup_block", "dedup_counts", "dedup_view",
           "drop_ref_array", "keep_table", "kept_view", "key_partitions", "key_values", "rejects_view", "row_refs"]

DROPPED_COLS = ("reject_reason", "raw_text", "raw_label")  # what kept rows no longer need
COUNT_COLUMNS = ["split", "pattern", "label", "n"]  # the ``count`` rows of :func:`dedup_counts`


def row_refs(ids: pd.Series, paths: pd.Series | None, keys: pd.Series) -> list[str]:
    """A reference for every row of a prepared batch, unique in practice across the corpus.

    A fingerprint of the batch (its source path, ids and dedup keys) plus the row's position
    in it. Two batches only share refs when they hold the same ids and texts from the same path
    in the same order (a duplicated file): then rows sharing a ref share their dedup key too,
    meet in one block of the de-duplication pass, and it falls back to its exact full-row
    shuffle (``jobs/preprocess.py``). So a ref alone names a row to drop.
    """
    h = hashlib.blake2b(digest_size=8)
    if paths is not None and len(paths):
        h.update(str(paths.iloc[0]).encode("utf-8", "surrogatepass"))
    for col in (ids, keys):  # as object arrays: iterating pandas' Arrow-backed str is much slower
        h.update("\x1f".join(map(str, np.asarray(col, dtype=object))).encode("utf-8", "surrogatepass"))
    fp = h.hexdigest()
    return [f"{fp}:{i}" for i in range(len(ids))]


def key_values(keys: Any) -> np.ndarray:
    """Each dedup key (16 hex digits, :func:`debias.corpus.clean.dedup_key`) as the uint64 it spells:
    the same key, the same number, so keys compare and sort as numbers rather than strings.
    ``keys``: a pandas Series, a sequence of str, or an Arrow (chunked) string array.

    The digits are read straight from the Arrow array's data buffer (16 bytes a key) and packed
    two to a byte, with no Python string per key."""
    bad = ValueError("dedup keys must be 16 hex digits (debias.corpus.clean.dedup_key)")
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks else pa.array([], type=pa.string())
    if not isinstance(keys, pa.Array):
        try:
            keys = pa.array(np.asarray(keys, dtype=object), type=pa.string())
        except (pa.ArrowException, TypeError):
            raise bad from None
    if pa.types.is_large_string(keys.type) or pa.types.is_string_view(keys.type):
        keys = keys.cast(pa.string())
    if not pa.types.is_string(keys.type) or keys.null_count:
        raise bad
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32)[keys.offset: keys.offset + n + 1]
    if offsets[-1] - offsets[0] != 16 * n or (np.diff(offsets) != 16).any():
        raise bad
    raw = np.frombuffer(keys.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
    digits = _HEX[raw.reshape(n, 16)]
    if (digits > 15).any():
        raise bad
    packed = np.ascontiguousarray((digits[:, 0::2] << 4) | digits[:, 1::2])  # 8 bytes a key, big end first
    return packed.view(">u8").ravel().astype(np.uint64)


def key_partitions(keys: Any, nparts: int) -> np.ndarray:
    """The de-duplication partition (``0 <= p < nparts``) of each dedup key: its first 8 hex
    digits modulo ``nparts`` (keys are hashes, so already uniformly spread); every row of one
    key lands in one partition."""
    return ((key_values(keys) >> np.uint64(32)) % np.uint64(nparts)).astype(np.int64)


_HEX = np.full(256, 255, dtype=np.uint8)  # ASCII code -> hex digit value (255: not a hex digit)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)
_HEX[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16)


def rejects_view(df: pd.DataFrame) -> pd.DataFrame:
    """The rejects output of a prepared batch: ids, raw values as strings, reason, stage
    (``read`` for the reader's reasons, ``debias.schema.READ_REJECT_REASONS``; else ``clean``)."""
    r = df[df["reject_reason"].notna()]
    return pd.DataFrame({
        "id": r["id"].astype(str),
        "raw_text": r["raw_text"].astype(str),
        "raw_label": r["raw_label"].astype(str),
        "reject_reason": r["reject_reason"].astype(str),
        "stage": np.where(r["reject_reason"].isin(list(READ_REJECT_REASONS)).to_numpy(), "read", "clean"),
    })


def kept_view(df: pd.DataFrame) -> pd.DataFrame:
    """A prepared batch's kept rows (no reject reason), without the reject columns."""
    return df[df["reject_reason"].isna()].drop(columns=list(DROPPED_COLS), errors="ignore")


def dedup_view(df: pd.DataFrame | pa.Table) -> pd.DataFrame | pa.Table:
    """What the key-only de-duplication pass needs of a prepared batch's kept rows: the
    dedup key, row ref and id (which row wins), and split, label and membership pattern (the
    audit and balance counts of the surviving rows). No text is shuffled.

    An Arrow table gives an Arrow table (the job's prepare tasks hold one already, so the view
    skips a pandas round trip)."""
    if isinstance(df, pa.Table):
        k = df.filter(pac.is_null(df["reject_reason"])) if df["reject_reason"].null_count < df.num_rows else df
        return pa.table({"dedup_key": k["dedup_key"].cast(pa.string()), "row_ref": k["row_ref"].cast(pa.string()),
                         "id": k["id"].cast(pa.string()), "split": k["split"].cast(pa.string()),
                         "label": k["label"].cast(pa.int64()), "pattern": pattern_array(k["groups"].combine_chunks())})
    k = df[df["reject_reason"].isna()]
    return pd.DataFrame({"dedup_key": k["dedup_key"].astype(str).values, "row_ref": k["row_ref"].astype(str).values,
                         "id": k["id"].astype(str).values, "split": k["split"].astype(str).values,
                         "label": k["label"].astype("int64").values, "pattern": pattern_strings(k["groups"])})


def dedup_counts(view: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """On a block holding every row of its dedup keys (the job partitions by key): the rows
    to drop (all but the smallest id of each key, as :func:`dedup_block` keeps) and the
    pattern counts of the rows kept, as one frame with a ``kind`` column:

    * ``drop``: ``ref`` = ``row_ref`` of a dropped row;
    * ``count``: ``split``, ``pattern``, ``label``, ``n`` over the kept rows;
    * ``collision``: two rows share a row ref, so refs cannot tell them apart.

    ``view``: :func:`dedup_view` rows, as pandas or Arrow. Keys are grouped as numbers
    (:func:`key_values`); only the rows of keys seen more than once (a few percent) are sorted
    by id, in Arrow. Rows sharing a ref share their key (:func:`row_refs`), so comparing refs
    within those groups finds every collision.
    """
    t = view if isinstance(view, pa.Table) else pa.Table.from_pandas(view, preserve_index=False)
    n = t.num_rows
    if n == 0:
        return _typed(pd.DataFrame())
    keys = key_values(t["dedup_key"])
    order = np.argsort(keys)  # the order within a key does not matter: those rows are sorted below
    ks = keys[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ks[1:] != ks[:-1]
    group = np.cumsum(starts) - 1
    rows = order[np.bincount(group)[group] > 1]  # the rows of keys seen more than once
    kept = np.ones(n, dtype=bool)
    parts = []
    if len(rows):
        sub = pa.table({"k": pa.array(keys[rows]), "id": t["id"].take(rows).cast(pa.string()),
                        "ref": t["row_ref"].take(rows).cast(pa.string()), "row": pa.array(rows)})
        sub = sub.take(pac.sort_indices(sub, sort_keys=[("k", "ascending"), ("id", "ascending"),
                                                        ("ref", "ascending")]))
        sk = sub["k"].to_numpy()
        first = np.ones(len(sk), dtype=bool)
        first[1:] = sk[1:] != sk[:-1]
        refs = sub["ref"].to_numpy(zero_copy_only=False)
        same = np.zeros(len(sk), dtype=bool)
        same[1:] = ~first[1:] & (refs[1:] == refs[:-1])
        if same.any():
            parts.append(pd.DataFrame({"kind": ["collision"], "ref": [str(refs[np.flatnonzero(same)[0]])]}))
        kept[sub["row"].to_numpy()[~first]] = False
        parts.append(pd.DataFrame({"kind": "drop", "ref": refs[~first]}))
    counts = (t.select(["split", "pattern", "label"]).filter(pa.array(kept))
              .group_by(["split", "pattern", "label"]).aggregate([([], "count_all")])
              .to_pandas().rename(columns={"count_all": "n"}))
    parts.append(counts.assign(kind="count"))
    return _typed(pd.concat(parts, ignore_index=True))


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    out = out.reindex(columns=["kind", "ref", "split", "pattern", "label", "n"])
    for c in ("kind", "ref", "split", "pattern"):
        out[c] = out[c].astype("string")
    for c in ("label", "n"):
        out[c] = out[c].astype("Int64")
    return out


def counts_from_tables(tables: Iterable[pa.Table]) -> tuple[pd.DataFrame, bool, int]:
    """From :func:`dedup_counts` results (as Arrow tables, taken one at a time): the ``count``
    rows, whether a ref collided, and the number of rows to drop. ``tables`` may be a generator,
    so a caller holding the results elsewhere (the job's object store) keeps one in memory."""
    parts, collision, n_drop = [], False, 0
    for t in tables:
        kind = t["kind"]
        collision = collision or bool(pac.any(pac.equal(kind, "collision")).as_py())
        n_drop += int(pac.sum(pac.equal(kind, "drop")).as_py() or 0)
        parts.append(t.filter(pac.equal(kind, "count")).select(COUNT_COLUMNS).to_pandas())
        del t
    cols = COUNT_COLUMNS
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)), collision, n_drop


def drop_ref_array(tables: Iterable[pa.Table]) -> pa.Array:
    """The ``row_ref`` of every row to drop named in :func:`dedup_counts` results, as one Arrow
    string array (results may differ in string type: string / large_string, or null when empty)."""
    chunks = [c.cast(pa.string()) for t in tables for c in t.filter(pac.equal(t["kind"], "drop"))["ref"].chunks]
    return pa.concat_arrays(chunks) if chunks else pa.array([], type=pa.string())


def keep_table(table: pa.Table, *, drop_refs: Any = None) -> pa.Table:
    """A prepared table's kept rows (no reject reason) minus the duplicates named by their
    ``row_ref``, without the reject columns. In Arrow: the rows are filtered before any
    pandas conversion, and the set of refs is hashed in C++.

    ``drop_refs``: a sequence or Arrow array of row refs.
    """
    mask = None
    if "reject_reason" in table.column_names:
        mask = pac.is_null(table["reject_reason"])
    if drop_refs is not None and len(drop_refs) and table.num_rows:
        refs = drop_refs if isinstance(drop_refs, pa.Array) else pa.array(list(drop_refs), type=pa.string())
        fresh = pac.invert(pac.is_in(table["row_ref"].cast(pa.string()), value_set=refs.cast(pa.string())))
        mask = fresh if mask is None else pac.and_(mask, fresh)
    if mask is not None:
        table = table.filter(mask)
    return table.drop_columns([c for c in DROPPED_COLS if c in table.column_names])


def dedup_block(df: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per ``dedup_key`` (the smallest id, so the choice is deterministic).

    Correct on a block only when every row of a key is in the block: the job hash-partitions
    by ``dedup_key`` first.
    """
    if df.empty:
        return df
    return (df.sort_values(["dedup_key", "id"], kind="mergesort")
              .drop_duplicates("dedup_key", keep="first")
              .reset_index(drop=True))
