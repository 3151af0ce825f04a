"""Raw input files -> rows of exact strings, one malformed record never failing the corpus.

The job maps :func:`read_files` over its list of input files: CSV, TSV and JSONL are parsed
here record by record (:func:`iter_tables`), parquet is read a batch of rows at a time and
cast (:func:`normalise_table`). Either way every record read comes back as one row:

* a kept row: the configured columns as strings, exactly as written (``"007"`` stays
  ``"007"``, ``"0042"`` stays ``"0042"``; JSON numbers keep their literal spelling, ``true`` /
  ``false`` become ``"true"`` / ``"false"``); a missing or null value stays null (in CSV/TSV an
  empty field is null: the format cannot tell missing from empty);
* a rejected row: the same columns as far as they could be read, a reason code in
  :data:`READ_REJECT` (one of :data:`debias.schema.READ_REJECT_REASONS`) and the raw record in
  :data:`READ_RAW` (decoded with U+FFFD for bad bytes), so :func:`debias.corpus.prepare.prepare_batch`
  routes it to the rejects output with stage ``read`` and the manifest counts it.

Also per row: :data:`READ_LINE`, the 1-based line on which the record starts (CSV/TSV: the
header is line 1; null for parquet, whose rows have no lines).

What is not a record: blank lines (empty, or only whitespace in JSONL; in CSV/TSV a line with no
characters at all) are skipped and not counted, as the JSON Lines convention and Python's csv
module do. A UTF-8 byte order mark at the start of a file is dropped.

Undecodable bytes (not UTF-8) in the text column give clean's own code ``undecodable_text``
(the text is kept, decoded with U+FFFD, for the rejects output, as before this module); in any
other configured column they give ``undecodable``. Bytes in columns nobody asked for are not
looked at.

CSV/TSV records are split by Python's csv module on the decoded stream, so quoted fields may
hold newlines, delimiters and doubled quotes; CR LF and lone CR line ends both work. A record
with more or fewer fields than the header is ``wrong_field_count``. An unclosed quote runs to
the end of the file (as in every CSV reader) and usually ends as one ``wrong_field_count``.

Memory and parallelism: a file is streamed, so a task holds one table of ``rows_per_table``
rows (and a 4 MiB read buffer) at a time, whatever the file's size; compressed files are
decompressed as a stream. A file is read by one task (a CSV file cannot be cut at an arbitrary
byte: a quoted field may hold newlines), so a single huge file reads on one core, and the job
repartitions the rows for the steps after.

Error messages never quote a record: a reject carries its content only into the rejects output.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from debias.schema import READ_LINE, READ_RAW, READ_REJECT, READ_REJECT_REASONS

__all__ = ["READ_LINE", "READ_RAW", "READ_REJECT", "READ_REJECT_REASONS", "UNDECODABLE_TEXT", "check_columns",
           "iter_tables", "normalise_table", "parse_bytes", "read_files"]

TextFormat = Literal["csv", "tsv", "jsonl"]
UNDECODABLE_TEXT = "undecodable_text"  # clean's code (debias.corpus.clean.REJECT_REASONS)
_BOM_BYTES = b"\xef\xbb\xbf"
_PATH = "path"  # what Ray Data's include_paths adds (debias.corpus.prepare.PATH_COL)

# Python's csv module refuses fields over 128 KiB by default; a long text is a clean reject
# (text_too_long), never a reader error.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _decodable(s: str) -> bool:
    """False when ``s`` holds a lone surrogate: bytes that were not UTF-8 (surrogateescape) or
    a JSON ``\\udcxx`` escape; neither can be written as UTF-8."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(s: str) -> str:
    """``s`` with every undecodable byte as U+FFFD."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if not _decodable(s) else s


class _Rows:
    """Column lists being filled, one record at a time."""

    def __init__(self, columns: Sequence[str]):
        self.columns = list(columns)
        self.values: list[list[str | None]] = [[] for _ in self.columns]
        self.line: list[int | None] = []
        self.reject: list[str | None] = []
        self.raw: list[str | None] = []

    def add(self, values: Sequence[str | None], *, line: int | None, reject: str | None = None,
            raw: str | None = None) -> None:
        for col, v in zip(self.values, values, strict=True):
            col.append(v)
        self.line.append(line)
        self.reject.append(reject)
        self.raw.append(raw)

    def __len__(self) -> int:
        return len(self.line)

    def reject_record(self, code: str, raw: str, *, line: int | None,
                      values: Sequence[str | None] | None = None) -> None:
        self.add(values if values is not None else [None] * len(self.columns), line=line, reject=code,
                 raw=_printable(raw))

    def add_checked(self, values: list[str | None], raw: str, *, line: int, text_col: str) -> None:
        """A parsed record: kept (undecodable text is a reject that keeps its values, not its
        raw record), or rejected with :func:`_checked`'s code."""
        values, code = _checked(values, columns=self.columns, text_col=text_col)
        if code is None or code == UNDECODABLE_TEXT:
            self.add(values, line=line, reject=code)
        else:
            self.reject_record(code, raw, line=line, values=values)

    def table(self) -> pa.Table:
        arrays = {c: pa.array(v, type=pa.string()) for c, v in zip(self.columns, self.values, strict=True)}
        arrays[READ_LINE] = pa.array(self.line, type=pa.int64())
        arrays[READ_REJECT] = pa.array(self.reject, type=pa.string())
        arrays[READ_RAW] = pa.array(self.raw, type=pa.string())
        return pa.table(arrays)


def _checked(values: list[str | None], *, columns: Sequence[str], text_col: str) -> tuple[list[str | None], str | None]:
    """Values with undecodable bytes made printable, and the reason code they give (if any)."""
    code = None
    for i, v in enumerate(values):
        if v is not None and not _decodable(v):
            values[i] = _printable(v)
            if columns[i] == text_col:
                code = code or UNDECODABLE_TEXT
            else:
                code = "undecodable"  # a structural column wins over the text's own code
    return values, code


def _csv_tables(lines: Iterable[str], *, delimiter: str, columns: Sequence[str], required: Sequence[str],
                text_col: str, rows_per_table: int) -> Iterator[pa.Table]:
    rows = _Rows(columns)
    records = _csv_records(lines, delimiter)
    header = None
    for fields, _raw, _line in records:
        if fields is None:
            # The header itself is unreadable: nothing after it can be placed. Not reachable
            # with strict=False and the field size limit lifted, but never an exception here.
            for _f, raw, line in records:
                rows.reject_record("malformed_csv", raw, line=line)
            break
        if fields:  # the first non-blank record
            header = [_printable(h) for h in fields]
            break
    if header is None:
        yield rows.table()
        return
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)
    where = [index.get(c) for c in columns]
    missing = any(index.get(c) is None for c in required)
    width = len(header)
    for fields, raw, line in records:
        if fields is not None and not fields:
            continue  # a blank line
        if fields is None:
            rows.reject_record("malformed_csv", raw, line=line)
        elif missing:
            rows.reject_record("missing_column", raw, line=line)
        elif len(fields) != width:
            rows.reject_record("wrong_field_count", raw, line=line)
        else:
            rows.add_checked([(fields[i] or None) if i is not None else None for i in where], raw,
                             line=line, text_col=text_col)
        if len(rows) >= rows_per_table:
            yield rows.table()
            rows = _Rows(columns)
    yield rows.table()


def _csv_records(lines: Iterable[str], delimiter: str) -> Iterator[tuple[list[str] | None, str, int]]:
    """(fields, or None where the csv module raised; raw record; its first line) per record.
    The raw record is the physical lines the reader pulled for it (it pulls one at a time)."""
    buf: list[str] = []

    def pulled() -> Iterator[str]:
        for line in lines:
            buf.append(line)
            yield line

    reader = csv.reader(pulled(), delimiter=delimiter, strict=False)
    line = 1
    while True:
        try:
            fields: list[str] | None = next(reader)
        except StopIteration:
            return
        except csv.Error:
            fields = None
        raw = "".join(buf)
        n = max(1, len(buf))
        buf.clear()
        yield fields, raw.rstrip("\r\n"), line
        line += n


def _json_value(v: Any) -> tuple[str | None, bool]:
    """A parsed JSON value as an exact string (numbers were kept as their literal), and whether
    it is of a type a column can hold (not an object or array)."""
    if v is None or isinstance(v, str):
        return v, True
    if isinstance(v, bool):
        return ("true" if v else "false"), True
    if isinstance(v, (dict, list)):
        return None, False
    return str(v), True


def _jsonl_tables(lines: Iterable[bytes], *, columns: Sequence[str], required: Sequence[str], text_col: str,
                  rows_per_table: int) -> Iterator[pa.Table]:
    rows = _Rows(columns)
    decoder = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=str)
    for n, raw_line in enumerate(lines, start=1):
        if n == 1 and raw_line.startswith(_BOM_BYTES):
            raw_line = raw_line[len(_BOM_BYTES):]
        if not raw_line.strip():
            continue
        line = raw_line.decode("utf-8", "surrogateescape").rstrip("\r")
        try:
            obj = decoder.decode(line)
        except (json.JSONDecodeError, RecursionError):
            rows.reject_record("malformed_json", line, line=n)
            obj = None
        else:
            if not isinstance(obj, dict):
                rows.reject_record("not_an_object", line, line=n)
                obj = None
            elif any(c not in obj for c in required):
                rows.reject_record("missing_column", line, line=n)
                obj = None
        if obj is not None:
            values: list[str | None] = []
            ok = True
            for c in columns:
                v, fits = _json_value(obj.get(c))
                ok = ok and fits
                values.append(v)
            if not ok:
                rows.reject_record("wrong_type", line, line=n)
            else:
                rows.add_checked(values, line, line=n, text_col=text_col)
        if len(rows) >= rows_per_table:
            yield rows.table()
            rows = _Rows(columns)
    yield rows.table()


def _byte_lines(stream: Any, chunk: int = 1 << 22) -> Iterator[bytes]:
    """The lines of a binary stream, split on b"\\n" only (a JSON string cannot hold a raw
    newline), without it; a last line without one too."""
    tail = b""
    while True:
        block = stream.read(chunk)
        if not block:
            break
        parts = (tail + block).split(b"\n")
        tail = parts.pop()
        yield from parts
    if tail:
        yield tail


def check_columns(columns: Sequence[str]) -> None:
    """Raise ValueError when a configured column has a name the reader's output uses itself."""
    taken = [c for c in columns if c in (_PATH, READ_LINE, READ_RAW, READ_REJECT)]
    if taken:
        raise ValueError(f"column name(s) {taken} are used by the reader (the file path and reject columns); "
                         f"rename them in the input")


def _check(format: str, columns: Sequence[str], required: Sequence[str]) -> None:
    check_columns(columns)
    if format not in ("csv", "tsv", "jsonl", "parquet"):
        raise ValueError(f"format must be one of csv, tsv, jsonl, parquet; found {format!r}")
    bad = [c for c in required if c not in columns]
    if bad:
        raise ValueError(f"required columns {bad} are not among the columns to read {list(columns)}")


def iter_tables(stream: Any, *, format: TextFormat, columns: Sequence[str], required: Sequence[str] = (),
                text_col: str | None = None, rows_per_table: int = 50_000) -> Iterator[pa.Table]:
    """Parse a binary stream (a CSV, TSV or JSONL file's bytes) into tables of at most
    ``rows_per_table`` rows, one row per record; see :func:`parse_bytes` for the columns. Only
    one table's rows are held at a time."""
    _check(format, columns, required)
    columns = list(columns)
    text_col = text_col if text_col is not None else columns[0]
    kw = {"columns": columns, "required": list(required), "text_col": text_col, "rows_per_table": rows_per_table}
    if format == "jsonl":
        yield from _jsonl_tables(_byte_lines(stream), **kw)
    else:
        # utf-8-sig drops a BOM; surrogateescape keeps undecodable bytes for _checked to find;
        # newline="" leaves line ends to the csv module (quoted newlines, CR LF, CR).
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
        yield from _csv_tables(text, delimiter="," if format == "csv" else "\t", **kw)


def parse_bytes(data: bytes, *, format: TextFormat, columns: Sequence[str], required: Sequence[str] = (),
                text_col: str | None = None) -> pa.Table:
    """Parse one file's bytes (CSV, TSV or JSONL) into one row per record.

    Parameters
    ----------
    data : the whole file (not compressed).
    format : ``"csv"``, ``"tsv"`` or ``"jsonl"``.
    columns : the columns to keep, in order; a column absent from a record is null.
    required : columns a record must have (text and label): a CSV header or JSON object without
        one of them makes the record ``missing_column``.
    text_col : the text column (its undecodable bytes are ``undecodable_text``); default
        ``columns[0]``.

    Returns
    -------
    pyarrow.Table
        ``columns`` as strings, then :data:`READ_LINE` (int64), :data:`READ_REJECT` and
        :data:`READ_RAW` (strings, null for kept rows; ``undecodable_text`` rows have no raw
        record, their text column shows the text).

    Raises
    ------
    ValueError
        An unknown format, or a required column not among ``columns`` (never for a record).
    """
    return pa.concat_tables(iter_tables(io.BytesIO(data), format=format, columns=columns, required=required,
                                        text_col=text_col, rows_per_table=1 << 62))


def read_files(batch: pa.Table, *, filesystem: Any, format: TextFormat | Literal["parquet"],
               columns: Sequence[str], required: Sequence[str] = (), text_col: str | None = None,
               rows_per_table: int = 50_000) -> Iterator[pa.Table]:
    """A batch of file paths (a ``path`` column) -> their rows, a table of at most
    ``rows_per_table`` rows at a time, each with the ``path`` column first: what the job maps
    over its list of input files. Compressed files (``.gz`` ...) are read through a decompressing
    stream. Parquet is read a batch of rows at a time, only the configured columns
    (:func:`normalise_table`), so a file may hold them with any type or lack one."""
    _check(format, columns, required)
    for path in batch.column(_PATH).to_pylist():
        if format == "parquet":
            with filesystem.open_input_file(path) as f:
                pf = pq.ParquetFile(f)
                present = [c for c in columns if c in pf.schema_arrow.names]
                tables = (pa.Table.from_batches([b]) for b in pf.iter_batches(batch_size=rows_per_table,
                                                                                columns=present))
                yielded = False
                for t in tables:
                    yielded = True
                    yield _with_path(normalise_table(t, columns=columns, required=required, text_col=text_col), path)
                if not yielded:
                    empty = pf.schema_arrow.empty_table().select(present)
                    yield _with_path(normalise_table(empty, columns=columns, required=required,
                                                     text_col=text_col), path)
            continue
        with filesystem.open_input_stream(path, compression="detect") as f:
            for t in iter_tables(f, format=format, columns=columns, required=required, text_col=text_col,
                                 rows_per_table=rows_per_table):
                yield _with_path(t, path)


def _with_path(t: pa.Table, path: str) -> pa.Table:
    return t.add_column(0, _PATH, pa.array([path] * t.num_rows, type=pa.string()))


def _string_column(col: pa.ChunkedArray, *, is_text: bool) -> tuple[pa.ChunkedArray, pa.Array | None, str]:
    """One parquet column as strings (the text column may stay binary), with the rows it
    rejects (or None) and their code."""
    t = col.type
    if pa.types.is_dictionary(t):
        return _string_column(col.cast(t.value_type), is_text=is_text)
    if pa.types.is_string(t) or (is_text and pa.types.is_binary(t)):
        return col, None, ""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.string()), None, ""
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t) \
            or pa.types.is_fixed_size_binary(t):
        if is_text:  # clean decodes it and marks bad bytes undecodable_text
            return col.cast(pa.binary()), None, ""
        vals, bad = [], []
        for v in col.to_pylist():
            try:
                vals.append(None if v is None else v.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                vals.append(v.decode("utf-8", "replace"))
                bad.append(True)
        return pa.chunked_array([pa.array(vals, type=pa.string())]), pa.array(bad), "undecodable"
    if not pa.types.is_nested(t):
        try:
            return col.cast(pa.string()), None, ""
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    # A list, struct or map (or a type with no string form) is not a column value.
    return pa.chunked_array([pa.nulls(len(col), pa.string())]), pc.is_valid(col), "wrong_type"


def normalise_table(table: pa.Table, *, columns: Sequence[str], required: Sequence[str] = (),
                    text_col: str | None = None) -> pa.Table:
    """A parquet block -> the rows :func:`parse_bytes` gives: every configured column as a
    string (numbers and booleans cast: ``"7"``, ``"true"``), except that a binary text column
    stays binary (clean decodes it: bad bytes are ``undecodable_text``). Per row, a nested
    value (list, struct, map) is ``wrong_type``, bad bytes in another binary column are
    ``undecodable``, and every row of a block without a required column is
    ``missing_column``. Other columns (``path``) pass through. :data:`READ_LINE` and
    :data:`READ_RAW` are null (a parquet row has no line; the rejects show its values)."""
    columns = list(columns)
    text_col = text_col if text_col is not None else columns[0]
    n = table.num_rows
    reject = pa.nulls(n, pa.string())
    if any(c not in table.column_names for c in required):
        reject = pa.array(["missing_column"] * n, type=pa.string())
    out = {c: table[c] for c in table.column_names if c not in columns}
    for c in columns:
        if c not in table.column_names:
            out[c] = pa.nulls(n, pa.string())
            continue
        out[c], bad, code = _string_column(table[c], is_text=c == text_col)
        if bad is not None:  # the first reason found stays
            reject = pc.if_else(pc.and_(pc.fill_null(bad, False), pc.is_null(reject)), code, reject)
    out[READ_LINE] = pa.nulls(n, pa.int64())
    out[READ_REJECT] = reject
    out[READ_RAW] = pa.nulls(n, pa.string())
    return pa.table(out)
