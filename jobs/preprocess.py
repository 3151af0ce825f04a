"""`debias preprocess`: the corpus pipeline on Ray Data, streaming.

The logic is in debias.corpus (prepare, dedup, keyfiles, patterns, finalize); this module wires
it into executions, each one plan, run once:
  1. read -> prepare (id, clean, annotate, split) -> parquet `_work/prepared`; each task also
     writes its rejected rows to `rejects/` and its kept rows' dedup view (key, row ref, id,
     split, label, groups pattern), partitioned by key, to `_work/keys` (one Arrow IPC file
     per block, one record batch per partition: debias.corpus.keyfiles)
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
Step 3 is ordinary tasks rather than Ray Data's hash shuffle, whose aggregator actors and fresh
map workers cost far more than the reduce work itself on a small cluster.
Ray's workers stay warm between executions (see jobs/ray_session.py).
Row counts come from parquet metadata, so the manifest's accounting costs no extra pass.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from debias.config import PipelineConfig
from debias.corpus import audit, clean, read, resample
from debias.corpus.dedup import (
    counts_from_tables,
    dedup_block,
    dedup_counts,
    dedup_view,
    drop_ref_array,
    keep_table,
    rejects_view,
)
from debias.corpus.finalize import finalize_table, plan_from_counts, train_rows
from debias.corpus.keyfiles import (
    key_file_rows,
    key_partition_count,
    reduce_key_partitions,
    write_key_partitions,
)
from debias.corpus.patterns import (
    audit_from_patterns,
    cells_from_patterns,
    merge_pattern_counts,
    pattern_counts,
)
from debias.corpus.prepare import (
    INTERMEDIATE_PARQUET_ARGS,
    freeze_startup_heap,
    member_groups,
    merge_pii_counts,
    prepare_batch,
)
from debias.identity.tools import lexicon_for, swaps_for
from debias.io import InputSpec, inspect_input, to_arrow
from debias.runs import join, move_dir, stage_output

ROWS_PER_BLOCK = 50_000
PREPARED_ROWS_PER_FILE = 125_000  # the final pass runs one task per prepared file
KEEP_COLS = ["row_ref", "reject_reason"]  # what keep_table filters on
RAW_COLS = ("raw_text", "raw_label")  # only rejected rows need them (the rejects output)


def _arrow(fn):
    """Run a pandas batch function and hand Ray an Arrow table with a stable schema."""
    def wrapped(batch: pd.DataFrame, **kwargs: Any) -> pa.Table:
        return to_arrow(fn(batch, **kwargs))

    wrapped.__name__ = fn.__name__
    return wrapped


# ---- task functions (run in Ray's workers) -------------------------------------------------


_DROPS: tuple[tuple[str, ...], Any] = ((), None)  # per worker: the drop set of the current job


def _drop_set(blocks: list) -> Any:
    """The ``row_ref`` of every row to drop (an Arrow array), fetched once per worker process."""
    global _DROPS
    import ray

    key = tuple(r.hex() for r in blocks)
    if _DROPS[0] != key:
        _DROPS = (key, drop_ref_array(ray.get(list(blocks))))
    return _DROPS[1]


def keep_unique(table: pa.Table, *, drop_blocks: list | None = None) -> pa.Table:
    """:func:`keep_table` with the duplicates read from the dedup result blocks."""
    return keep_table(table, drop_refs=_drop_set(drop_blocks) if drop_blocks else None)


def finalize_unique(table: pa.Table, *, cfg: dict[str, Any], plan: dict[str, Any],
                    drop_blocks: list | None = None) -> pa.Table:
    """:func:`debias.corpus.finalize.finalize_table` with the duplicates read from the dedup
    result blocks."""
    freeze_startup_heap()
    return finalize_table(table, cfg=cfg, plan=plan, drop_refs=_drop_set(drop_blocks) if drop_blocks else None)


def prepare_with_side_outputs(batch: pa.Table, *, cfg: dict[str, Any], fs: pafs.FileSystem | None = None,
                              rejects_dir: str | None = None, keys_dir: str | None = None,
                              pii_dir: str | None = None, nparts: int = 0) -> pa.Table:
    """:func:`prepare_batch`, writing beside its output (Ray writes that) small ones:

    * ``rejects_dir``: the block's rejected rows (:func:`rejects_view`), if any;
    * ``keys_dir``: its kept rows' dedup view, partitioned by key
      (:func:`write_key_partitions`);
    * ``pii_dir``: the block's PII masked per kind (a JSON dict of counts, no content).

    So neither the rejects output nor the de-duplication needs a pass over the prepared rows
    of its own, and de-duplication needs no Ray shuffle (whose actors and fresh workers cost
    more than the work here).

    Files are named by the block's row-ref fingerprint, so a retried task overwrites its own
    files; two identical blocks (an input read twice) would write one file, which the driver's
    row count check notices (then it redoes both from the prepared rows).

    The batch comes as Arrow and is converted here with pandas' defaults (str objects, as
    ``pd.read_parquet`` gives the single-process run): Ray's own pandas batches hold
    Arrow-backed columns, on which ``prepare_batch``'s per-row steps run slower.
    """
    freeze_startup_heap()  # the worker's imports, out of every full collection of its tasks
    # The g_<group> flags are a function of `groups` (debias.identity.annotate.membership_flags): the
    # final pass builds them (with_membership) instead of writing and reading 87 bool columns.
    out = prepare_batch(batch.to_pandas(), cfg=cfg, flags=False)
    table = to_arrow(out)
    if len(out):
        name = str(out["row_ref"].iloc[0]).split(":")[0]
        if pii_dir is not None:
            with fs.open_output_stream(join(pii_dir, f"{name}.json")) as f:
                f.write(json.dumps(out.attrs.get("pii_masked", {})).encode())
        if rejects_dir is not None and out["reject_reason"].notna().any():
            with fs.open_output_stream(join(rejects_dir, f"{name}.parquet")) as f:
                pq.write_table(to_arrow(rejects_view(out)), f)
        if keys_dir is not None:
            view = dedup_view(table)  # in Arrow, from the table handed back anyway
            if view.num_rows:  # a block of rejects only has no keys
                write_key_partitions(fs, join(keys_dir, f"{name}.arrow"), view, nparts)
    return table


def log(msg: str) -> None:
    print(f"[preprocess] {msg}", file=sys.stderr, flush=True)


def preflight(cfg: PipelineConfig) -> InputSpec:
    """Everything that can fail without a cluster: input, columns, lexicons, swap lists."""
    spec = inspect_input(cfg.data)
    d = cfg.data
    read.check_columns([d.text_col, d.label_col, *([d.text_pair_col] if d.text_pair_col else []),
                        *([d.id_col] if d.id_col else []), *d.identity.columns.values()])
    _preflight_labels(spec, cfg)
    lexicon_for(cfg.annotate.axes, cfg.annotate.lexicon_dir)
    if cfg.augment.mode != "none":
        swaps_for(cfg.augment.axes, cfg.augment.swap_dir)
    return spec


PREFLIGHT_LABEL_ROWS = 10_000


def _preflight_labels(spec: InputSpec, cfg: PipelineConfig) -> None:
    """The labels of the first file's first rows must map to classes (a wrong label_map or
    class_names fails here, naming the values found, not after Ray starts); a class that this
    sample lacks is only logged."""
    d = cfg.data
    wanted = _text_columns(d)
    tables = read.read_files(pa.table({"path": [spec.files[0]]}), filesystem=spec.filesystem, format=spec.format,
                             columns=wanted, required=wanted, text_col=d.text_col,
                             rows_per_table=PREFLIGHT_LABEL_ROWS)
    first = next(iter(tables), None)
    if first is None or first.num_rows == 0:
        return
    if d.text_pair_col:
        reasons = first.column(read.READ_REJECT).to_pylist() if read.READ_REJECT in first.column_names else []
        lacking = sum(r == "missing_column" for r in reasons)
        if lacking > first.num_rows / 2:
            raise ValueError(f"data.text_pair_col {d.text_pair_col!r}: {lacking:,} of the first {first.num_rows:,} "
                             f"rows of {spec.files[0]} lack that column (or {d.text_col!r} / {d.label_col!r})")
    found = clean.check_labels(first.column(d.label_col).to_pandas(), label_map=d.label_map,
                               class_names=d.class_names, label_threshold=d.label_threshold, label_col=d.label_col)
    missing = [d.class_names[k] for k in range(d.n_classes) if k not in found]
    if missing:
        log(f"labels: class {', '.join(map(repr, missing))} not among the first {first.num_rows:,} rows")


def read_dataset(spec: InputSpec, cfg: PipelineConfig):
    """The input as rows of exact strings plus the reader's reject columns
    (:mod:`debias.corpus.read`): a malformed record becomes a reject row, never a failed read.

    One task per file, streaming it in tables of ``ROWS_PER_BLOCK`` rows (the memory bound).
    Ray Data's own readers are not used: ``read_parquet`` unifies the files' schemas up front
    (one file with an int ``id`` fails the job), ``read_csv`` fails the whole read on one bad
    row and ``read_json(lines=True)`` infers types ("007" -> 7)."""
    import ray.data

    d = cfg.data
    wanted = _text_columns(d) + ([d.id_col] if d.id_col else []) + list(d.identity.columns.values())
    wanted = list(dict.fromkeys(wanted))
    # One block (task) per file: for parquet inputs of several files, Ray Data then fuses this
    # map and prepare's into one task per file, two at a time on two cores.
    ds = ray.data.from_items([{"path": f} for f in spec.files], override_num_blocks=len(spec.files))
    return ds.map_batches(read.read_files, batch_format="pyarrow", batch_size=1, fn_kwargs={
        "filesystem": spec.filesystem, "format": spec.format, "columns": wanted,
        "required": _text_columns(d), "text_col": d.text_col, "rows_per_table": ROWS_PER_BLOCK})


def _text_columns(d) -> list[str]:
    """The columns every row must have: the text, the label and (pair tasks) the second text."""
    return list(dict.fromkeys([d.text_col, d.label_col, *([d.text_pair_col] if d.text_pair_col else [])]))


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


def _pii_masked(fs: pafs.FileSystem, folder: str) -> dict[str, int]:
    """The per-block PII counts summed (a block read twice writes one file: counted once)."""
    counts = []
    for path in _files(fs, folder, ".json"):
        with fs.open_input_stream(path) as f:
            counts.append(json.loads(f.read().decode()))
    return merge_pii_counts(counts)


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




# ---- the job: read -> map -> aggregate -> write ----------------------------------------------


@dataclass
class _Job:
    """What every execution of one run needs: config, file system and the run's folders."""

    cfg: PipelineConfig
    c: dict[str, Any]  # cfg.model_dump(), what the task functions take
    fs: pafs.FileSystem
    prepared: str  # _work/prepared: every prepared row
    deduped: str  # _work/deduped: the full-row shuffle's output, when it runs
    keys_dir: str | None  # _work/keys: the key files (None without dedup)
    rejects_dir: str
    pii_dir: str  # _work/pii: the PII counts per block
    nparts: int
    cpus: int


@dataclass
class _Kept:
    """Where the kept, de-duplicated rows are, after the de-duplication pass."""

    n_rejected: int
    n_kept: int
    drop_blocks: list | None = None  # dedup result blocks naming the rows to drop (key route)
    deduped_dir: str | None = None  # the full-row shuffle's output (fallback route)
    pc: pd.DataFrame | None = None  # pattern counts of the kept rows, when the key route gave them


def _prepare(job: _Job, ds) -> int:
    """Execution 1: prepare every row into ``job.prepared`` plus the side outputs; the rows read."""
    for d in (job.rejects_dir, job.keys_dir, job.pii_dir):
        if d is not None:
            job.fs.create_dir(d)
    # Without dedup there are no key files to check the side outputs against, so the rejects
    # come from the prepared rows later and the tasks write none.
    ds.map_batches(prepare_with_side_outputs, batch_format="pyarrow", batch_size=None, fn_kwargs={
        "cfg": job.c, "fs": job.fs, "rejects_dir": job.rejects_dir if job.keys_dir is not None else None,
        "keys_dir": job.keys_dir, "pii_dir": job.pii_dir, "nparts": job.nparts}).write_parquet(
            job.prepared, filesystem=job.fs, max_rows_per_file=PREPARED_ROWS_PER_FILE, **INTERMEDIATE_PARQUET_ARGS)
    return _rows(job.fs, job.prepared)


def _side_outputs_complete(job: _Job, n_read: int) -> tuple[bool, list[str], int]:
    """Whether the side outputs hold every prepared row once (not so when two identical blocks,
    the same input read twice, wrote one file, or without dedup: no key files to count), the
    key files, and the rejected rows (rewritten from the prepared rows when incomplete)."""
    fs = job.fs
    n_rejected = _rows(fs, job.rejects_dir)
    key_files = _files(fs, job.keys_dir, ".arrow") if job.keys_dir is not None else []
    side_ok = job.keys_dir is not None and key_file_rows(fs, key_files) + n_rejected == n_read
    if not side_ok:
        fs.delete_dir_contents(job.rejects_dir)
        _read_stage(fs, job.prepared, columns=["id", "raw_text", "raw_label", "reject_reason"]).map_batches(
            _arrow(rejects_view), batch_format="pandas").write_parquet(job.rejects_dir, filesystem=fs)
        n_rejected = _rows(fs, job.rejects_dir)
    return side_ok, key_files, n_rejected


def _reduce_keys(job: _Job, key_files: list[str]) -> tuple[list, pd.DataFrame, bool, int]:
    """Execution 3, key route: the dedup result blocks (left in the object store), the kept
    rows' counts, whether a row ref collided, and the number of rows to drop."""
    import ray
    import ray.data

    # A few reduce tasks per CPU, each over a contiguous range of partitions, so each task
    # opens every key file once (files x tasks opens, not files x partitions).
    res = (ray.data.range(job.nparts, override_num_blocks=min(job.nparts, 4 * job.cpus))
           .map_batches(reduce_key_partitions(dedup_counts), batch_format="pandas",
                        batch_size=None, fn_kwargs={"fs": job.fs, "files": key_files, "nparts": job.nparts})
           .materialize())
    # The driver reads the count rows one block at a time, and the final pass's workers fetch
    # the rows to drop themselves, so the driver never holds the list of duplicates.
    drop_blocks = res.to_arrow_refs()
    counts, collision, n_drop = counts_from_tables(ray.get(ref) for ref in drop_blocks)
    return drop_blocks, counts, collision, n_drop


def _shuffle_dedup(job: _Job, n_read: int) -> int:
    """Execution 3, fallback route: a full-row shuffle by key into ``job.deduped``; the rows kept."""
    log("rows of one dedup key share a row ref (the same input read twice?): "
        "de-duplicating by a full-row shuffle instead")
    nblocks = max(2, min(4096, n_read // ROWS_PER_BLOCK + 1))
    (_read_stage(job.fs, job.prepared).map_batches(keep_table, batch_format="pyarrow")
     .repartition(nblocks, shuffle=True, keys=["dedup_key"])
     .map_batches(_arrow(dedup_block), batch_format="pandas", batch_size=None)
     .write_parquet(job.deduped, filesystem=job.fs, **INTERMEDIATE_PARQUET_ARGS))
    return _rows(job.fs, job.deduped)


def _dedup(job: _Job, n_read: int) -> _Kept:
    """Executions 2-3: the rejects output and exact de-duplication without moving the texts
    (each key partition names the rows to drop and counts the rows kept, so the audit needs no
    pass of its own); the full-row shuffle decides instead when row refs are not unique."""
    side_ok, key_files, n_rejected = _side_outputs_complete(job, n_read)
    if job.keys_dir is None:
        return _Kept(n_rejected=n_rejected, n_kept=n_read - n_rejected)
    if side_ok:
        drop_blocks, counts, collision, n_drop = _reduce_keys(job, key_files)
        if not collision:
            pc = merge_pattern_counts([pd.DataFrame({
                "split": counts["split"].astype(str).values, "pattern": counts["pattern"].fillna("").astype(str).values,
                "label": counts["label"].astype("int64").values, "n": counts["n"].astype("int64").values})])
            return _Kept(n_rejected=n_rejected, n_kept=n_read - n_rejected - n_drop, drop_blocks=drop_blocks, pc=pc)
    n_kept = _shuffle_dedup(job, n_read)
    return _Kept(n_rejected=n_rejected, n_kept=n_kept, deduped_dir=job.deduped)


def _prepared_columns(job: _Job, columns: list[str] | None) -> list[str]:
    """``columns`` plus what the filter needs, or every column the kept rows keep (the raw text
    stays on disk; file order, which is the output's order)."""
    if columns is not None:
        return sorted(set(columns) | set(KEEP_COLS))
    with job.fs.open_input_file(_parquet_files(job.fs, job.prepared)[0]) as fh:
        names = pq.ParquetFile(fh).schema_arrow.names
    return [c for c in names if c not in RAW_COLS]


def _kept_rows(job: _Job, kept: _Kept, columns: list[str]):
    """The kept, de-duplicated rows (``columns`` plus what the filter needs), as a dataset."""
    if kept.deduped_dir is not None:
        return _read_stage(job.fs, kept.deduped_dir, columns=columns)
    return _read_stage(job.fs, job.prepared, columns=_prepared_columns(job, columns)).map_batches(
        keep_unique, batch_format="pyarrow", fn_kwargs={"drop_blocks": kept.drop_blocks})


def _audit_and_plan(job: _Job, kept: _Kept, w, group_names: list[str]) -> dict[str, Any]:
    """Execution 4 (and the counts, when the key route gave none): the audit, written, and the
    balance plan, with the exact per-cell thresholds when resampling."""
    cfg = job.cfg
    pc = kept.pc
    if pc is None:
        dd = _kept_rows(job, kept, ["id", "label", "split", "groups"])
        pc = merge_pattern_counts([dd.map_batches(pattern_counts, batch_format="pandas").to_pandas()])
    audit_counts = audit_from_patterns(pc, group_names=group_names, positive=cfg.focus_id)
    report = audit.audit_report(audit_counts, min_group_size=cfg.evaluate.min_group_size)
    w.write_json("audit.json", report)
    w.write_text("audit.md", audit.audit_table(report))
    gcounts = audit.group_counts(audit_counts)
    cells = cells_from_patterns(pc, intersectional=cfg.balance.intersectional, group_counts=gcounts)
    plan = plan_from_counts(cells, cfg=job.c, group_counts=gcounts)
    if "resample" in plan:
        rp = plan["resample"]
        train = _kept_rows(job, kept, ["id", "label", "split", "groups"]).map_batches(train_rows, batch_format="pandas")
        hist = resample.merge_u_histograms([train.map_batches(
            resample.u_histogram, batch_format="pandas", fn_kwargs={"cells": rp}).to_pandas()])
        bins = resample.boundary_bins(rp, hist)
        bvals = train.map_batches(resample.boundary_values, batch_format="pandas",
                                  fn_kwargs={"cells": rp, "bin_index_per_cell": bins}).to_pandas()
        plan["thresholds"] = resample.thresholds(rp, hist, bvals)
    return plan


def _finalize(job: _Job, kept: _Kept, w, plan: dict[str, Any], work: str) -> dict[str, int]:
    """Execution 5: balance + augment the kept rows, written per split; the rows per split."""
    fs = job.fs
    out_tmp = join(work, "final")
    final_src = (_read_stage(fs, kept.deduped_dir) if kept.deduped_dir is not None
                 else _read_stage(fs, job.prepared, columns=_prepared_columns(job, None)))
    final_src.map_batches(
        finalize_unique, batch_format="pyarrow", batch_size=None,
        fn_kwargs={"cfg": job.c, "plan": plan, "drop_blocks": kept.drop_blocks},
    ).write_parquet(out_tmp, filesystem=fs, partition_cols=["split"])
    split_rows = {}
    for name in ("train", "val", "test"):
        src = join(out_tmp, f"split={name}")
        if fs.get_file_info(src).type == pafs.FileType.NotFound:
            fs.create_dir(w.sub(name))
            split_rows[name] = 0
        else:
            move_dir(fs, src, w.sub(name))
            split_rows[name] = _rows(fs, w.sub(name))
    return split_rows


def _manifest(w, *, n_read: int, kept: _Kept, split_rows: dict[str, int], group_names: list[str],
              timings: dict[str, float], plan: dict[str, Any], pii_masked: dict[str, int]) -> None:
    """The run's accounting: every row read is kept, rejected or a duplicate."""
    n_out = sum(split_rows.values())
    n_rejected, n_kept = kept.n_rejected, kept.n_kept
    n_dups = n_read - n_rejected - n_kept
    reasons = _reject_reasons(w.fs, w.sub("rejects")) if n_rejected else {}
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
        "pii_masked": pii_masked,
        "groups": group_names,
        "timings_seconds": timings,
        "balance_plan": _plan_summary(plan),
    })
    log(f"rows: read {n_read:,} = kept {n_kept:,} + rejected {n_rejected:,} + duplicates {n_dups:,}; "
        f"output {n_out:,} ({split_rows})")


def run(cfg: PipelineConfig, run_dir: str) -> dict[str, Any]:
    """Run the corpus pipeline into ``RUN_DIR/preprocess``; returns the manifest."""
    import ray

    from jobs.ray_session import quiet_ray_data
    from jobs.storage import check_run_dir_shared

    quiet_ray_data()  # also when called from Python rather than the CLI
    spec = preflight(cfg)
    check_run_dir_shared(run_dir)  # a local path on several nodes would scatter the output
    group_names = member_groups(cfg.model_dump())
    log(f"input: {len(spec.files)} {spec.format} file(s), {spec.total_bytes / 1e6:,.1f} MB")
    timings: dict[str, float] = {}
    with stage_output(run_dir, "preprocess", config=cfg, inputs=spec.files, seed=cfg.seed) as w:
        work = w.sub("_work")
        cpus = int(ray.cluster_resources().get("CPU", 1))
        job = _Job(cfg=cfg, c=cfg.model_dump(), fs=w.fs, prepared=join(work, "prepared"),
                   deduped=join(work, "deduped"), keys_dir=join(work, "keys") if cfg.clean.dedup else None,
                   rejects_dir=w.sub("rejects"), pii_dir=join(work, "pii"), nparts=key_partition_count(spec.total_bytes, cpus), cpus=cpus)

        t0 = time.time()  # read
        ds = read_dataset(spec, cfg)
        if spec.format != "parquet" or len(spec.files) < 4:
            ds = ds.repartition(target_num_rows_per_block=ROWS_PER_BLOCK)
        n_read = _prepare(job, ds)  # map
        timings["read_clean_annotate"] = _timed("read + clean + annotate + split", t0, n_read)
        if n_read == 0:
            raise ValueError(f"input has no rows: {cfg.data.path}")

        t0 = time.time()  # aggregate
        kept = _dedup(job, n_read)
        timings["rejects_dedup"] = _timed("rejects + exact de-duplication (+ counts)", t0, n_read - kept.n_rejected)
        t0 = time.time()
        plan = _audit_and_plan(job, kept, w, group_names)
        timings["audit_plan"] = _timed("audit + balance plan", t0, kept.n_kept)

        t0 = time.time()  # write
        split_rows = _finalize(job, kept, w, plan, work)
        timings["balance_augment_write"] = _timed("balance + augment + write splits", t0, sum(split_rows.values()))
        pii_masked = _pii_masked(job.fs, job.pii_dir)
        job.fs.delete_dir(work)
        _manifest(w, n_read=n_read, kept=kept, split_rows=split_rows, group_names=group_names,
                  timings=timings, plan=plan, pii_masked=pii_masked)
    log(f"done: {join(run_dir, 'preprocess')}")
    return w.manifest
