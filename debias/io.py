"""Input discovery and validation, done in the driver before any cluster work.

``inspect_input`` resolves a file, folder, glob or filesystem URI to a list of files of one
format, opens the first one to read its columns, and checks the config's column mapping
against them. Every failure is a ``ValueError`` that says what was expected and what was found.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from debias.config import DataConfig

Format = Literal["parquet", "csv", "tsv", "jsonl"]
_EXT = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
_PARQUET_MAGIC = b"PAR1"
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark


@dataclass(frozen=True)
class InputSpec:
    """What the job will read: the files, their format, the filesystem and the columns found."""

    files: list[str]
    format: Format
    filesystem: pafs.FileSystem
    columns: list[str]
    total_bytes: int


def _format_of(path: str) -> str | None:
    name = path.lower()
    for ext, fmt in _EXT.items():
        if name.endswith(ext) or name.endswith(ext + ".gz"):
            return fmt
    return None


def _split_glob(path: str) -> tuple[str, bool]:
    """The leading part of ``path`` before the first component with a wildcard."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if any(c in part for c in "*?["):
            return "/".join(parts[:i]) or "/", True
    return path, False


def _list_files(uri: str) -> tuple[pafs.FileSystem, list[pafs.FileInfo]]:
    if "://" in uri:
        # In a URI "?" starts the query (an S3 endpoint, a region), never a wildcard.
        scheme, rest = uri.split("://", 1)
        rest, sep, query = rest.partition("?")
        base_rest, wild = _split_glob(rest)
        fs, base = pafs.FileSystem.from_uri(f"{scheme}://{base_rest}{sep}{query}")
        pattern = base.rstrip("/") + rest[len(base_rest):] if wild else None
    else:
        full = os.path.abspath(os.path.expanduser(uri))
        base, wild = _split_glob(full)
        fs, pattern = pafs.LocalFileSystem(), (full if wild else None)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise ValueError(f"input path does not exist: {uri}")
    if info.type == pafs.FileType.File and pattern is None:
        return fs, [info]
    files = [f for f in fs.get_file_info(pafs.FileSelector(base, recursive=True))
             if f.type == pafs.FileType.File and not f.base_name.startswith((".", "_"))]
    if pattern is not None:
        files = [f for f in files if fnmatch.fnmatch(f.path, pattern)]
    return fs, sorted(files, key=lambda f: f.path)


def _columns_of(fs: pafs.FileSystem, path: str, fmt: str) -> list[str]:
    with fs.open_input_file(path) as f:
        head = f.read(4)
    if fmt == "parquet":
        if head != _PARQUET_MAGIC:
            raise ValueError(f"{path} has a .parquet name but is not a parquet file "
                             f"(first bytes {head!r}, expected b'PAR1')")
        with fs.open_input_file(path) as f:
            return list(pq.read_schema(f).names)
    if head == _PARQUET_MAGIC:
        raise ValueError(f"{path} looks like a parquet file but its name says {fmt}; rename it or set data.format")
    if fmt in ("csv", "tsv"):
        delim = "," if fmt == "csv" else "\t"
        with fs.open_input_stream(path, compression="detect") as f:
            first = f.read(1 << 16)
        line = first.split(b"\n", 1)[0].rstrip(b"\r")
        line = line[len(_BOM):] if line.startswith(_BOM) else line  # as the reader drops it
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: the header line is not UTF-8 ({e})") from e
        if not text.strip():
            raise ValueError(f"{path}: the first line is empty; expected a {fmt.upper()} header")
        reader = pacsv.read_csv(pa.py_buffer(line + b"\n"),
                                parse_options=pacsv.ParseOptions(delimiter=delim),
                                read_options=pacsv.ReadOptions(autogenerate_column_names=False))
        return list(reader.column_names)
    # jsonl: the keys of the first JSON object among the lines of the first MiB. A malformed
    # line before it is a reject for the reader (debias.corpus.read), not a failed run; the
    # message names why a line failed, never what it holds.
    with fs.open_input_stream(path, compression="detect") as f:
        chunk = f.read(1 << 20)
    chunk = chunk[len(_BOM):] if chunk.startswith(_BOM) else chunk
    first_problem = None
    for n, raw in enumerate(chunk.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            first_problem = first_problem or f"line {n} is not JSON ({getattr(e, 'msg', 'not UTF-8')})"
            continue
        if isinstance(obj, dict):
            return list(obj.keys())
        first_problem = first_problem or f"line {n} is a JSON {type(obj).__name__}, not an object"
    raise ValueError(f"{path}: no JSON object found in the first MiB; expected one JSON object per line"
                     + (f"; {first_problem}" if first_problem else ""))


def inspect_input(cfg: DataConfig) -> InputSpec:
    """Resolve and check the input described by ``cfg``.

    Raises
    ------
    ValueError
        The path does not exist or matches no files; the files mix formats; a file is empty or
        not what its extension says; a configured column is absent (the message lists the
        columns that are present).
    """
    fs, infos = _list_files(cfg.path)
    if not infos:
        raise ValueError(f"no input files found at {cfg.path}")
    if cfg.format != "auto":
        fmt = cfg.format
    else:
        fmts = {_format_of(i.path) for i in infos}
        if None in fmts:
            unknown = [i.path for i in infos if _format_of(i.path) is None][:3]
            raise ValueError(f"cannot tell the format of {unknown} from the extension; "
                             f"set data.format to one of parquet, csv, tsv, jsonl")
        if len(fmts) > 1:
            raise ValueError(f"input mixes formats {sorted(fmts)}; point data.path at one format")
        fmt = fmts.pop()
    empty = [i.path for i in infos if i.size == 0]
    if empty:
        raise ValueError(f"input file is empty (0 bytes): {empty[0]}" +
                         (f" and {len(empty) - 1} more" if len(empty) > 1 else ""))
    columns = _columns_of(fs, infos[0].path, fmt)
    wanted = {"data.text_col": cfg.text_col, "data.label_col": cfg.label_col}
    if cfg.id_col:
        wanted["data.id_col"] = cfg.id_col
    for group, col in cfg.identity.columns.items():
        wanted[f"data.identity.columns.{group}"] = col
    missing = {k: v for k, v in wanted.items() if v not in columns}
    if missing:
        what = ", ".join(f"{v!r} ({k})" for k, v in missing.items())
        raise ValueError(f"missing column {what} in {infos[0].path}; columns present: {', '.join(columns)}")
    return InputSpec(files=[i.path for i in infos], format=fmt, filesystem=fs, columns=columns,
                     total_bytes=sum(i.size for i in infos))


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """A batch as an Arrow table without pandas metadata.

    Outputs are read by pyarrow, Ray Data, Spark and pandas alike; pandas' own metadata for
    Arrow-backed list columns does not round-trip through pandas 3's reader, so it is dropped.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata(None)


def arrow_string_lists(col: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow data of an Arrow-backed ``list<string>`` column (what Ray Data hands over in
    pandas batches), or None for any other column. Lets callers join or measure the lists in
    Arrow instead of iterating them row by row (0.3-0.5 s per 100k rows)."""
    dtype = getattr(col, "dtype", None)
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype) \
            and pa.types.is_string(dtype.pyarrow_dtype.value_type):
        return col.array.__arrow_array__()
    return None
