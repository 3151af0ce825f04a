"""`debias preprocess`: the corpus pipeline on Ray Data, streaming.

Executions (each one plan, run once; the logic is in debias.corpus.prepare):
  1. read -> prepare (id, clean, annotate, split) -> parquet `_work/prepared`; each task also
     writes its rejected rows to `rejects/` and its kept rows' dedup view (key, row ref, id,
     split, label, groups pattern), partitioned by key, to `_work/keys` (one Arrow IPC file
     per block, one record batch per partition)
  2. (only if those side outputs miss rows, or without dedup) prepared -> `rejects/`
  3. a few tasks per CPU, each over a range of key partitions, reading their batches of every
     key file -> the rows to drop and the kept rows' counts,
     left in the object store; the driver reads the counts one block at a time (audit + cells)
     and never holds the rows to drop
  4. (resampling only) two passes over a few columns for exact per-cell thresholds
  5. prepared, kept rows minus the duplicates (each worker fetches the drop list once) ->
     balance + augment -> parquet partitioned by split -> `train/ val/ test/`
  (When two rows of one key share a row ref, the same input read twice, step 3 becomes a
  full-row shuffle into `_work/deduped` and step 5 reads that.)
Ray Data's own hash shuffle did step 3 before: on two cores its aggregator actors and fresh map
workers cost ~15 s of a 2M-row run whose reduce work is ~3 CPU s.
Ray's workers stay warm between executions (see jobs/ray_session.py).
Row counts come from parquet metadata, so the manifest's accounting costs no extra pass.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from debias.config import PipelineConfig
from debias.corpus import audit, balance
from debias.corpus.prepare import (
    audit_from_patterns,
    cached_lexicon,
    cached_swaps,
    cells_from_patterns,
    dedup_block,
    dedup_counts,
    dedup_view,
    finalize_batch,
    freeze_startup_heap,
    keep_table,
    key_partitions,
    member_groups,
    merge_pattern_counts,
    pattern_counts,
    plan_from_counts,
    prepare_batch,
    rejects_view,
    train_rows,
)
from debias.identity.annotate import membership_flags
from debias.io import InputSpec, inspect_input, to_arrow
from debias.runs import join, stage_output
from debias.schema import group_column, group_columns

ROWS_PER_BLOCK = 50_000
PREPARED_ROWS_PER_FILE = 125_000  # the final pass runs one task per prepared file
KEY_PARTITION_BYTES = 48_000_000
KEY_ROWS = "debias.rows"  # key files' schema metadata: the number of rows
KEEP_COLS = ["row_ref", "reject_reason"]  # what keep_table filters on
RAW_COLS = ("raw_text", "raw_label")  # only rejected rows need them (the rejects output)
# Writer settings of the job's own intermediates (read back once, by this job). Texts, ids, keys
# and row refs are distinct per row, and for each of them the writer built a dictionary and gave
# it up: dictionaries only for the few-valued columns (a nested column by its leaf's path) took
# writing + reading back a 250k-row block from 0.36 to 0.28 CPU s, with the same file size.
INTERMEDIATE_PARQUET_ARGS = {"use_dictionary": ["label", "split", "groups.list.element", "reject_reason"]}


def _arrow(fn):
    """Run a pandas batch function and hand Ray an Arrow table with a stable schema."""
    def wrapped(batch: pd.DataFrame, **kwargs: Any) -> pa.Table:
        return to_arrow(fn(batch, **kwargs))

    wrapped.__name__ = fn.__name__
    return wrapped


def key_partition_count(input_bytes: int, cpus: int) -> int:
    """De-duplication partitions: a multiple of the cluster's CPUs (every reduce wave uses
    them all), with at most ~48 MB of input each (~1.5M rows of the demo corpus in parquet;
    the reducer holds their key view, ~100 bytes a row); at most 1024 (each key file has one
    record batch per partition). On 2 cores 9 small partitions took 4.2 s, 2 large ones ~2.5 s."""
    cpus = max(1, int(cpus))
    waves = max(1, -(-int(input_bytes) // (KEY_PARTITION_BYTES * cpus)))
    return int(min(1024, max(2, waves * cpus)))


def _counts_from_blocks(blocks: list) -> tuple[pd.DataFrame, bool, int]:
    """From :func:`dedup_counts` result blocks: the count rows, whether a ref collided, and
    the number of rows to drop; one block in memory at a time."""
    import pyarrow.compute as pac
    import ray

    cols = ["split", "pattern", "label", "n"]
    parts, collision, n_drop = [], False, 0
    for ref in blocks:
        t = ray.get(ref)
        kind = t["kind"]
        collision = collision or bool(pac.any(pac.equal(kind, "collision")).as_py())
        n_drop += int(pac.sum(pac.equal(kind, "drop")).as_py() or 0)
        parts.append(t.filter(pac.equal(kind, "count")).select(cols).to_pandas())
        del t
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)), collision, n_drop


_DROPS: tuple[tuple[str, ...], Any] = ((), None)  # per worker: the drop set of the current job


def _drop_set(blocks: list) -> Any:
    """The ``row_ref`` of every row to drop (an Arrow array), fetched once per worker process."""
    global _DROPS
    import pyarrow.compute as pac
    import ray

    key = tuple(r.hex() for r in blocks)
    if _DROPS[0] != key:
        # Blocks may differ in string type (string / large_string, or null when empty).
        chunks = [c.cast(pa.string()) for t in ray.get(list(blocks))
                  for c in t.filter(pac.equal(t["kind"], "drop"))["ref"].chunks]
        _DROPS = (key, pa.concat_arrays(chunks) if chunks else pa.array([], type=pa.string()))
    return _DROPS[1]


def keep_unique(table: pa.Table, *, drop_blocks: list | None = None) -> pa.Table:
    """:func:`keep_table` with the duplicates read from the dedup result blocks."""
    return keep_table(table, drop_refs=_drop_set(drop_blocks) if drop_blocks else None)


def finalize_unique(table: pa.Table, *, cfg: dict[str, Any], plan: dict[str, Any],
                    drop_blocks: list | None = None) -> pa.Table:
    """:func:`keep_unique` then :func:`finalize_batch`, in one task function: the rows dropped
    are never converted to pandas, and the kept ones once. The ``g_<group>`` flags are added
    last, from ``groups`` (:func:`with_membership`): 87 columns less through pandas and the
    balance/augment steps (~0.4 CPU s per 250k rows), and the rows augmentation adds get
    theirs from their new groups like every other row."""
    freeze_startup_heap()
    kept = keep_unique(table, drop_blocks=drop_blocks)
    return with_membership(to_arrow(finalize_batch(kept.to_pandas(), cfg=cfg, plan=plan)), member_groups(cfg))


def with_membership(table: pa.Table, groups: list[str]) -> pa.Table:
    """The ``g_<group>`` columns back, after ``groups``, rebuilt from it (the intermediate
    leaves them out: 87 boolean columns cost ~0.5 CPU s per 250k rows to write and read back,
    rebuilding them ~0.08 s: the flags are bit-packed by numpy into Arrow's boolean buffers,
    where ``pa.array`` per column took 0.2 s)."""
    if not groups or group_column(groups[0]) in table.column_names:
        return table
    flags = membership_flags(table["groups"], groups)
    n = table.num_rows
    packed = np.packbits(np.ascontiguousarray(flags.T), axis=1, bitorder="little")  # one row per group
    columns = [pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(packed[i])]) for i in range(len(groups))]
    at = table.column_names.index("groups") + 1
    out = pa.Table.from_arrays(table.columns[:at] + columns + table.columns[at:],
                               names=table.column_names[:at] + group_columns(groups) + table.column_names[at:])
    return out.replace_schema_metadata(table.schema.metadata)


def write_key_partitions(fs: pafs.FileSystem, path: str, view: pd.DataFrame | pa.Table, nparts: int) -> None:
    """One Arrow IPC file for one prepared block's dedup view (:func:`dedup_view`, pandas or
    Arrow): record batch ``p`` holds the rows of partition ``p`` (possibly none), and the
    schema's metadata the row count.

    IPC rather than parquet: a reducer reads one batch of every file, and an IPC footer is 24
    bytes per batch where a parquet footer carries ~100 bytes of metadata per column per row
    group (600 KB per file at 1,024 partitions, read by every reducer at scale)."""
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


def prepare_with_side_outputs(batch: pa.Table, *, cfg: dict[str, Any], fs: pafs.FileSystem | None = None,
                              rejects_dir: str | None = None, keys_dir: str | None = None,
                              nparts: int = 0) -> pa.Table:
    """:func:`prepare_batch`, writing beside its output (Ray writes that) two small ones:

    * ``rejects_dir``: the block's rejected rows (:func:`rejects_view`), if any;
    * ``keys_dir``: its kept rows' dedup view, partitioned by key
      (:func:`write_key_partitions`).

    So neither the rejects output nor the de-duplication needs a pass over the prepared rows
    of its own, and de-duplication needs no Ray shuffle (whose actors and fresh workers cost
    more than the work here).

    Files are named by the block's row-ref fingerprint, so a retried task overwrites its own
    files; two identical blocks (an input read twice) would write one file, which the driver's
    row count check notices (then it redoes both from the prepared rows).

    The batch comes as Arrow and is converted here with pandas' defaults (str objects, as
    ``pd.read_parquet`` gives the single-process run): Ray's own pandas batches hold
    Arrow-backed columns, which made ``prepare_batch`` 16% slower (per-row iteration).
    """
    freeze_startup_heap()  # the worker's imports, out of every full collection of its tasks
    # The g_<group> flags are a function of `groups` (debias.identity.annotate.membership_flags): the
    # final pass builds them (with_membership) instead of writing and reading 87 bool columns.
    out = prepare_batch(batch.to_pandas(), cfg=cfg, flags=False)
    table = to_arrow(out)
    if len(out):
        name = str(out["row_ref"].iloc[0]).split(":")[0]
        if rejects_dir is not None and out["reject_reason"].notna().any():
            with fs.open_output_stream(join(rejects_dir, f"{name}.parquet")) as f:
                pq.write_table(to_arrow(rejects_view(out)), f)
        if keys_dir is not None:
            view = dedup_view(table)  # in Arrow, from the table handed back anyway
            if view.num_rows:  # a block of rejects only has no keys
                write_key_partitions(fs, join(keys_dir, f"{name}.arrow"), view, nparts)
    return table


def reduce_key_partitions(counts_fn):
    """The reduce side of the key partitions: the partitions named in the batch, each from its
    record batch in every key file (each file opened once per task) -> ``counts_fn``
    (:func:`dedup_counts`)."""
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


def log(msg: str) -> None:
    print(f"[preprocess] {msg}", file=sys.stderr, flush=True)


def preflight(cfg: PipelineConfig) -> InputSpec:
    """Everything that can fail without a cluster: input, columns, lexicons, swap lists."""
    spec = inspect_input(cfg.data)
    cached_lexicon(tuple(cfg.annotate.axes), cfg.annotate.lexicon_dir)
    if cfg.augment.mode != "none":
        cached_swaps(tuple(cfg.augment.axes), cfg.augment.swap_dir)
    return spec


def read_dataset(spec: InputSpec, cfg: PipelineConfig):
    import ray.data

    d = cfg.data
    wanted = [d.text_col, d.label_col] + ([d.id_col] if d.id_col else []) + list(d.identity.columns.values())
    wanted = list(dict.fromkeys(wanted))
    common: dict[str, Any] = {"filesystem": spec.filesystem, "include_paths": True}
    if spec.format == "parquet":
        # One block per file: Ray Data then fuses read and the map that follows into one task
        # per file, two at a time on two cores. Its default splits each file into many blocks
        # and runs the map as a separate operator, which here ran one map task at a time
        # (half the throughput of one plain process at 2M rows).
        ds = ray.data.read_parquet(spec.files, columns=wanted, override_num_blocks=len(spec.files), **common)
    elif spec.format in ("csv", "tsv"):
        # Text as bytes (undecodable rows become rejects instead of failing the read), the other
        # configured columns as strings (no per-block type inference surprises), nothing else read.
        types = {c: pa.string() for c in wanted}
        types[d.text_col] = pa.binary()
        ds = ray.data.read_csv(
            spec.files,
            parse_options=pacsv.ParseOptions(delimiter="," if spec.format == "csv" else "\t",
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=wanted,
                                                 strings_can_be_null=True),
            **common,
        )
    else:
        ds = ray.data.read_json(spec.files, lines=True, **common)
    return ds


def _files(fs: pafs.FileSystem, folder: str, suffix: str) -> list[str]:
    info = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    return sorted(f.path for f in info if f.type == pafs.FileType.File and f.path.endswith(suffix))


def _parquet_files(fs: pafs.FileSystem, folder: str) -> list[str]:
    return _files(fs, folder, ".parquet")


def _read_stage(fs: pafs.FileSystem, folder: str, columns: list[str] | None = None):
    """An intermediate folder, one block per file (see ``read_dataset``)."""
    import ray.data

    files = _parquet_files(fs, folder)
    return ray.data.read_parquet(files, filesystem=fs, columns=columns, override_num_blocks=max(1, len(files)))


def _rows(fs: pafs.FileSystem, folder: str) -> int:
    info = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    total = 0
    for f in info:
        if f.type == pafs.FileType.File and f.path.endswith(".parquet"):
            with fs.open_input_file(f.path) as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _reject_reasons(fs: pafs.FileSystem, folder: str) -> dict[str, int]:
    """Counts per reason, reading only that (dictionary-encoded, small) column in the driver."""
    import pyarrow.dataset as pads

    col = pads.dataset(folder, filesystem=fs, format="parquet").to_table(columns=["reject_reason"]).column(0)
    counts = col.value_counts().to_pylist()
    return {c["values"]: int(c["counts"]) for c in sorted(counts, key=lambda c: -c["counts"])}


def _timed(label: str, t0: float, rows: int | None = None) -> float:
    dt = time.time() - t0
    rate = f", {rows / dt:,.0f} rows/s" if rows and dt > 0 else ""
    log(f"{label}: {dt:.1f} s" + (f" ({rows:,} rows{rate})" if rows is not None else ""))
    return dt


def _plan_summary(plan: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"cell_counts": plan["cell_counts"].to_dict("records")}
    if "weights" in plan:
        out["weights"] = [{"cell": g, "label": y, "weight": w} for (g, y), w in sorted(plan["weights"].items())]
    if "resample" in plan:
        out["resample"] = plan["resample"].to_dict()
    return out


def run(cfg: PipelineConfig, run_dir: str) -> dict[str, Any]:
    """Run the corpus pipeline into ``RUN_DIR/preprocess``; returns the manifest."""

    import ray

    from jobs.ray_session import quiet_ray_data
    from jobs.storage import check_run_dir_shared

    quiet_ray_data()  # also when called from Python rather than the CLI
    spec = preflight(cfg)
    check_run_dir_shared(run_dir)  # a local path on several nodes would scatter the output
    c = cfg.model_dump()
    group_names = member_groups(c)
    log(f"input: {len(spec.files)} {spec.format} file(s), {spec.total_bytes / 1e6:,.1f} MB")
    timings: dict[str, float] = {}
    with stage_output(run_dir, "preprocess", config=cfg, inputs=spec.files, seed=cfg.seed) as w:
        fs = w.fs
        work = w.sub("_work")
        prepared, deduped = join(work, "prepared"), join(work, "deduped")

        t0 = time.time()
        ds = read_dataset(spec, cfg)
        if spec.format != "parquet" or len(spec.files) < 4:
            ds = ds.repartition(target_num_rows_per_block=ROWS_PER_BLOCK)
        keys_dir = join(work, "keys") if cfg.clean.dedup else None
        rejects_dir = w.sub("rejects")
        cpus = int(ray.cluster_resources().get("CPU", 1))
        nparts = key_partition_count(spec.total_bytes, cpus)
        for d in (rejects_dir, keys_dir):
            if d is not None:
                fs.create_dir(d)
        # Without dedup there are no key files to check the side outputs against, so the rejects
        # come from the prepared rows below and the tasks write none.
        ds.map_batches(prepare_with_side_outputs, batch_format="pyarrow", batch_size=None, fn_kwargs={
            "cfg": c, "fs": fs, "rejects_dir": rejects_dir if keys_dir is not None else None,
            "keys_dir": keys_dir, "nparts": nparts}).write_parquet(
                prepared, filesystem=fs, max_rows_per_file=PREPARED_ROWS_PER_FILE, **INTERMEDIATE_PARQUET_ARGS)
        n_read = _rows(fs, prepared)
        timings["read_clean_annotate"] = _timed("read + clean + annotate + split", t0, n_read)
        if n_read == 0:
            raise ValueError(f"input has no rows: {cfg.data.path}")

        t0 = time.time()
        # The side outputs are complete when they hold every prepared row once. Not so when two
        # identical blocks (the same input read twice) wrote one file, or without dedup (no key
        # files to count): then the rejects come from the prepared rows, and the key files are
        # not used (the full-row shuffle below de-duplicates).
        n_rejected = _rows(fs, rejects_dir)
        key_files = _files(fs, keys_dir, ".arrow") if keys_dir is not None else []
        side_ok = keys_dir is not None and key_file_rows(fs, key_files) + n_rejected == n_read
        if not side_ok:
            fs.delete_dir_contents(rejects_dir)
            _read_stage(fs, prepared, columns=["id", "raw_text", "raw_label", "reject_reason"]).map_batches(
                _arrow(rejects_view), batch_format="pandas").write_parquet(rejects_dir, filesystem=fs)
            n_rejected = _rows(fs, rejects_dir)
        # Exact de-duplication without moving the texts: the prepare pass wrote each block's
        # (key, row ref, id) and the few columns the audit needs, partitioned by key; each
        # partition names the rows to drop and counts the rows kept, so the audit needs no
        # pass of its own. Row refs are unique unless an input block was read twice; then the
        # full-row shuffle below decides instead.
        drop_blocks: list | None = None  # dedup result blocks naming the rows to drop
        pc = None
        deduped_dir = None
        if keys_dir is not None:
            collision = not side_ok
            if not collision:
                import ray.data

                # A few reduce tasks per CPU, each over a contiguous range of partitions, so each
                # task opens every key file once (files x tasks opens, not files x partitions).
                res = (ray.data.range(nparts, override_num_blocks=min(nparts, 4 * cpus))
                       .map_batches(reduce_key_partitions(dedup_counts), batch_format="pandas",
                                    batch_size=None, fn_kwargs={"fs": fs, "files": key_files, "nparts": nparts})
                       .materialize())
                # The result blocks stay in the object store: the driver reads the count rows one
                # block at a time, and the final pass's workers fetch the rows to drop themselves,
                # so the driver never holds the list of duplicates (it grew with N before).
                drop_blocks = res.to_arrow_refs()
                counts, collision, n_drop = _counts_from_blocks(drop_blocks)
            if collision:
                log("rows of one dedup key share a row ref (the same input read twice?): "
                    "de-duplicating by a full-row shuffle instead")
                drop_blocks = None
                deduped_dir = deduped
                nblocks = max(2, min(4096, n_read // ROWS_PER_BLOCK + 1))
                (_read_stage(fs, prepared).map_batches(keep_table, batch_format="pyarrow")
                 .repartition(nblocks, shuffle=True, keys=["dedup_key"])
                 .map_batches(_arrow(dedup_block), batch_format="pandas", batch_size=None)
                 .write_parquet(deduped, filesystem=fs, **INTERMEDIATE_PARQUET_ARGS))
                n_kept = _rows(fs, deduped)
            else:
                pc = merge_pattern_counts([pd.DataFrame({
                    "split": counts["split"].astype(str).values, "pattern": counts["pattern"].fillna("").astype(str).values,
                    "label": counts["label"].astype("int64").values, "n": counts["n"].astype("int64").values})])
                n_kept = n_read - n_rejected - n_drop
        else:
            n_kept = n_read - n_rejected
        n_dups = n_read - n_rejected - n_kept
        timings["rejects_dedup"] = _timed("rejects + exact de-duplication (+ counts)", t0, n_read - n_rejected)

        def prepared_columns(columns: list[str] | None) -> list[str]:
            """``columns`` plus what the filter needs, or every column the kept rows keep (the
            raw text stays on disk; file order, which is the output's order)."""
            if columns is not None:
                return sorted(set(columns) | set(KEEP_COLS))
            with fs.open_input_file(_parquet_files(fs, prepared)[0]) as fh:
                names = pq.ParquetFile(fh).schema_arrow.names
            return [c for c in names if c not in RAW_COLS]

        def kept_rows(columns: list[str]):
            """The kept, de-duplicated rows (``columns`` plus what the filter needs)."""
            if deduped_dir is not None:
                return _read_stage(fs, deduped_dir, columns=columns)
            return _read_stage(fs, prepared, columns=prepared_columns(columns)).map_batches(
                keep_unique, batch_format="pyarrow", fn_kwargs={"drop_blocks": drop_blocks})

        t0 = time.time()
        if pc is None:
            dd = kept_rows(["id", "label", "split", "groups"])
            pc = merge_pattern_counts([dd.map_batches(pattern_counts, batch_format="pandas").to_pandas()])
        audit_counts = audit_from_patterns(pc, group_names=group_names)
        report = audit.audit_report(audit_counts, min_group_size=cfg.evaluate.min_group_size)
        w.write_json("audit.json", report)
        w.write_text("audit.md", audit.audit_table(report))
        gcounts = audit.group_counts(audit_counts)
        cells = cells_from_patterns(pc, intersectional=cfg.balance.intersectional, group_counts=gcounts)
        plan = plan_from_counts(cells, cfg=c, group_counts=gcounts)
        if "resample" in plan:
            rp = plan["resample"]
            train = kept_rows(["id", "label", "split", "groups"]).map_batches(train_rows, batch_format="pandas")
            hist = balance.merge_u_histograms([train.map_batches(
                balance.u_histogram, batch_format="pandas", fn_kwargs={"cells": rp}).to_pandas()])
            bins = balance.boundary_bins(rp, hist)
            bvals = train.map_batches(balance.boundary_values, batch_format="pandas",
                                      fn_kwargs={"cells": rp, "bin_index_per_cell": bins}).to_pandas()
            plan["thresholds"] = balance.thresholds(rp, hist, bvals)
        timings["audit_plan"] = _timed("audit + balance plan", t0, n_kept)

        t0 = time.time()
        out_tmp = join(work, "final")
        final_src = (_read_stage(fs, deduped_dir) if deduped_dir is not None
                     else _read_stage(fs, prepared, columns=prepared_columns(None)))
        final_src.map_batches(
            finalize_unique, batch_format="pyarrow", batch_size=None,
            fn_kwargs={"cfg": c, "plan": plan, "drop_blocks": drop_blocks},
        ).write_parquet(out_tmp, filesystem=fs, partition_cols=["split"])
        split_rows = {}
        for name in ("train", "val", "test"):
            src = join(out_tmp, f"split={name}")
            if fs.get_file_info(src).type == pafs.FileType.NotFound:
                fs.create_dir(w.sub(name))
                split_rows[name] = 0
            else:
                fs.move(src, w.sub(name))
                split_rows[name] = _rows(fs, w.sub(name))
        n_out = sum(split_rows.values())
        timings["balance_augment_write"] = _timed("balance + augment + write splits", t0, n_out)
        fs.delete_dir(work)

        reasons = _reject_reasons(fs, w.sub("rejects")) if n_rejected else {}
        w.manifest.update({
            "rows": {
                "read": n_read,
                "rejected": n_rejected,
                "duplicates": n_dups,
                "kept": n_kept,
                "output": n_out,
                "by_split": split_rows,
                "added_or_removed_by_balance_and_augment": n_out - n_kept,
            },
            "reject_reasons": reasons,
            "groups": group_names,
            "timings_seconds": timings,
            "balance_plan": _plan_summary(plan),
        })
        log(f"rows: read {n_read:,} = kept {n_kept:,} + rejected {n_rejected:,} + duplicates {n_dups:,}; "
            f"output {n_out:,} ({split_rows})")
    log(f"done: {join(run_dir, 'preprocess')}")
    return w.manifest
