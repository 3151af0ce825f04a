"""`debias preprocess`: the corpus pipeline on Ray Data, streaming.

Executions (each one plan, run once; the logic is in debias.preprocess):
  1. read -> prepare (id, clean, annotate, split) -> parquet `_work/prepared`
  2. prepared, rejected rows -> `rejects/`
  3. prepared, a few columns -> hash-partition by dedup key -> per key block, the rows to drop
     and the kept rows' counts, left in the object store; the driver reads the counts one block
     at a time (audit + cells) and never holds the rows to drop
  4. (resampling only) two passes over a few columns for exact per-cell thresholds
  5. prepared, kept rows minus the duplicates (each worker fetches the drop list once) ->
     balance + augment -> parquet partitioned by split -> `train/ val/ test/`
  (When two rows of one key share a row ref, the same input read twice, step 3 becomes a
  full-row shuffle into `_work/deduped` and step 5 reads that.)
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

from debias import audit, balance
from debias.config import PipelineConfig
from debias.io import InputSpec, inspect_input, to_arrow
from debias.preprocess import (
    audit_from_patterns,
    cached_lexicon,
    cached_swaps,
    cells_from_patterns,
    dedup_block,
    dedup_counts,
    dedup_view,
    finalize_batch,
    keep_batch,
    kept_view,
    merge_pattern_counts,
    pattern_counts,
    plan_from_counts,
    prepare_batch,
    rejects_view,
    train_rows,
)
from debias.runs import join, stage_output

ROWS_PER_BLOCK = 50_000
DEDUP_COLS = ["id", "dedup_key", "row_ref", "split", "label", "groups", "reject_reason"]
KEEP_COLS = ["dedup_key", "row_ref", "reject_reason"]  # what keep_batch filters on
RAW_COLS = ("raw_text", "raw_label")  # only rejected rows need them (the rejects output)


def _arrow(fn):
    """Run a pandas batch function and hand Ray an Arrow table with a stable schema."""
    def wrapped(batch: pd.DataFrame, **kwargs: Any) -> pa.Table:
        return to_arrow(fn(batch, **kwargs))

    wrapped.__name__ = fn.__name__
    return wrapped


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
    """The ``dedup_key|row_ref`` of every row to drop, fetched once per worker process."""
    global _DROPS
    import pyarrow.compute as pac
    import ray

    key = tuple(r.hex() for r in blocks)
    if _DROPS[0] != key:
        # Blocks may differ in string type (string / large_string, or null when empty).
        chunks = [c.to_numpy(zero_copy_only=False) for t in ray.get(list(blocks))
                  for c in t.filter(pac.equal(t["kind"], "drop"))["ref"].chunks]
        _DROPS = (key, np.concatenate(chunks).astype(object) if chunks else np.array([], dtype=object))
    return _DROPS[1]


def keep_unique(batch: pd.DataFrame, *, drop_blocks: list | None = None) -> pd.DataFrame:
    """:func:`keep_batch` with the duplicates read from the dedup result blocks."""
    return keep_batch(batch, drop_refs=_drop_set(drop_blocks) if drop_blocks else None)


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


def _parquet_files(fs: pafs.FileSystem, folder: str) -> list[str]:
    info = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    return sorted(f.path for f in info if f.type == pafs.FileType.File and f.path.endswith(".parquet"))


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

    from jobs.ray_session import quiet_ray_data
    from jobs.storage import check_run_dir_shared

    quiet_ray_data()  # also when called from Python rather than the CLI
    spec = preflight(cfg)
    check_run_dir_shared(run_dir)  # a local path on several nodes would scatter the output
    c = cfg.model_dump()
    lex = cached_lexicon(tuple(cfg.annotate.axes), cfg.annotate.lexicon_dir)
    group_names = list(lex.group_names) if not cfg.data.identity.columns else \
        sorted(set(lex.group_names) | set(cfg.data.identity.columns))
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
        ds.map_batches(_arrow(prepare_batch), fn_kwargs={"cfg": c}, batch_format="pandas",
                       batch_size=None).write_parquet(prepared, filesystem=fs)
        n_read = _rows(fs, prepared)
        timings["read_clean_annotate"] = _timed("read + clean + annotate + split", t0, n_read)
        if n_read == 0:
            raise ValueError(f"input has no rows: {cfg.data.path}")

        t0 = time.time()
        _read_stage(fs, prepared, columns=["id", "raw_text", "raw_label", "reject_reason"]).map_batches(
            _arrow(rejects_view), batch_format="pandas").write_parquet(w.sub("rejects"), filesystem=fs)
        n_rejected = _rows(fs, w.sub("rejects"))
        # Exact de-duplication without moving the texts: shuffle only (key, row ref, id) and the
        # few columns the audit needs by dedup_key; each key's block names the rows to drop and
        # counts the rows kept, so the audit needs no pass of its own. Row refs are unique unless
        # a file was read twice; then the full-row shuffle below decides instead.
        drop_blocks: list | None = None  # dedup result blocks naming the rows to drop
        pc = None
        deduped_dir = None
        if cfg.clean.dedup:
            nblocks = max(2, min(4096, n_read // ROWS_PER_BLOCK + 1))  # ~60 bytes a row: small blocks
            res = (_read_stage(fs, prepared, columns=DEDUP_COLS)
                   .map_batches(_arrow(dedup_view), batch_format="pandas")
                   .repartition(nblocks, shuffle=True, keys=["dedup_key"])
                   .map_batches(_arrow(dedup_counts), batch_format="pandas", batch_size=None)
                   .materialize())
            # The result blocks stay in the object store: the driver reads the count rows one
            # block at a time, and the final pass's workers fetch the rows to drop themselves,
            # so the driver never holds the list of duplicates (it grew with N before).
            drop_blocks = res.to_arrow_refs()
            counts, collision, n_drop = _counts_from_blocks(drop_blocks)
            if collision:
                log("rows of one dedup key share a row ref (the same input read twice?): "
                    "de-duplicating by a full-row shuffle instead")
                deduped_dir = deduped
                (_read_stage(fs, prepared).map_batches(_arrow(kept_view), batch_format="pandas")
                 .repartition(nblocks, shuffle=True, keys=["dedup_key"])
                 .map_batches(_arrow(dedup_block), batch_format="pandas", batch_size=None)
                 .write_parquet(deduped, filesystem=fs))
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

        def kept_rows(columns: list[str] | None = None):
            """The kept, de-duplicated rows (``columns`` plus what the filter needs)."""
            if deduped_dir is not None:
                return _read_stage(fs, deduped_dir, columns=columns)
            if columns is None:  # every column the kept rows keep: the raw text stays on disk
                with fs.open_input_file(_parquet_files(fs, prepared)[0]) as fh:
                    names = pq.ParquetFile(fh).schema_arrow.names
                cols = [c for c in names if c not in RAW_COLS]  # file order: the output's order
            else:
                cols = sorted(set(columns) | set(KEEP_COLS))
            return _read_stage(fs, prepared, columns=cols).map_batches(
                _arrow(keep_unique), batch_format="pandas", fn_kwargs={"drop_blocks": drop_blocks})

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
        kept_rows().map_batches(
            _arrow(finalize_batch), batch_format="pandas", fn_kwargs={"cfg": c, "plan": plan},
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
