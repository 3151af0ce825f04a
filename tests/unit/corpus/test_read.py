"""debias.corpus.read: every record one row, exact strings, a closed set of reject codes."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from debias.config import load_config
from debias.corpus.dedup import rejects_view
from debias.corpus.prepare import prepare_batch
from debias.corpus.read import iter_tables, normalise_table, parse_bytes, read_files
from debias.schema import READ_LINE, READ_RAW, READ_REJECT, READ_REJECT_REASONS

COLS = ["text", "label", "id"]
REQ = ["text", "label"]


def _rows(data: bytes, fmt: str) -> list[dict]:
    return parse_bytes(data, format=fmt, columns=COLS, required=REQ, text_col="text").to_pylist()


def _kept(rows):
    return [{c: r[c] for c in COLS} for r in rows if r[READ_REJECT] is None]


def _codes(rows):
    return [(r[READ_LINE], r[READ_REJECT]) for r in rows if r[READ_REJECT] is not None]


# ---- exact strings ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,data", [
    ("csv", b"id,text,label\n007,0042,1\n7,1.50,0\n"),
    ("tsv", b"id\ttext\tlabel\n007\t0042\t1\n7\t1.50\t0\n"),
    ("jsonl", b'{"id": "007", "text": "0042", "label": 1}\n{"id": 7, "text": 1.50, "label": "0"}\n'),
])
def test_values_are_exact_strings_never_inferred(fmt, data):
    assert _kept(_rows(data, fmt)) == [{"text": "0042", "label": "1", "id": "007"},
                                      {"text": "1.50", "label": "0", "id": "7"}]


def test_jsonl_null_and_missing_optional_stay_null_booleans_spelled():
    rows = _rows(b'{"text": "a", "label": true, "id": null}\n{"text": null, "label": false}\n', "jsonl")
    assert _kept(rows) == [{"text": "a", "label": "true", "id": None}, {"text": None, "label": "false", "id": None}]


def test_csv_empty_field_is_null_other_spellings_are_text():
    rows = _rows(b"id,text,label\n,NA,null\n", "csv")
    assert _kept(rows) == [{"text": "NA", "label": "null", "id": None}]


# ---- CSV shapes ------------------------------------------------------------------------------


def test_csv_quoted_newlines_delimiters_quotes_crlf_bom_and_no_final_newline():
    data = b'\xef\xbb\xbfid,text,label\r\na,"one\r\ntwo, ""three""",1\r\nb,x,0'
    rows = _rows(data, "csv")
    assert _kept(rows) == [{"text": 'one\r\ntwo, "three"', "label": "1", "id": "a"},
                           {"text": "x", "label": "0", "id": "b"}]
    assert [r[READ_LINE] for r in rows] == [2, 4]  # a record's first line; the header is line 1


def test_csv_lone_cr_line_ends():
    assert _kept(_rows(b"id,text,label\ra,x,1\rb,y,0\r", "csv")) == [
        {"text": "x", "label": "1", "id": "a"}, {"text": "y", "label": "0", "id": "b"}]


def test_csv_blank_lines_are_skipped_and_not_rows():
    rows = _rows(b"\nid,text,label\n\na,x,1\n\r\n\nb,y,0\n\n", "csv")
    assert [r["id"] for r in rows] == ["a", "b"] and [r[READ_LINE] for r in rows] == [4, 7]


def test_csv_column_order_and_extra_columns_do_not_matter():
    rows = _rows(b"label,other,text,id\n1,zz,hello,a\n", "csv")
    assert _kept(rows) == [{"text": "hello", "label": "1", "id": "a"}]


def test_csv_long_field_is_read_not_an_error():
    text = "w" * 300_000  # over the csv module's default 128 KiB field limit
    assert _kept(_rows(f"id,text,label\na,{text},1\n".encode(), "csv"))[0]["text"] == text


# ---- malformed records, per format -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_delimited_malformed_records(fmt):
    d = "," if fmt == "csv" else "\t"
    lines = [
        f"id{d}text{d}label",            # 1 header
        f"a{d}good{d}1",                 # 2 kept
        f"b{d}too{d}many{d}1",           # 3 wrong_field_count
        f"c{d}few",                      # 4 wrong_field_count
        f"d{d}ok{d}0",                   # 5 kept
    ]
    data = ("\n".join(lines) + "\n").encode()
    data += f"e{d}fine{d}".encode() + b"\xff\n"          # 6 undecodable (label)
    data += b"\xfe" + f"{d}fine{d}1\n".encode()           # 7 undecodable (id)
    data += f"f{d}caf".encode() + b"\xe9" + f"{d}1\n".encode()  # 8 undecodable_text (text: clean's code)
    rows = _rows(data, fmt)
    assert _kept(rows) == [{"text": "good", "label": "1", "id": "a"}, {"text": "ok", "label": "0", "id": "d"}]
    assert _codes(rows) == [(3, "wrong_field_count"), (4, "wrong_field_count"), (6, "undecodable"),
                            (7, "undecodable"), (8, "undecodable_text")]
    by_line = {r[READ_LINE]: r for r in rows}
    assert by_line[3][READ_RAW] == f"b{d}too{d}many{d}1"
    assert by_line[6][READ_RAW] == f"e{d}fine{d}\ufffd"
    assert by_line[8][READ_RAW] is None and by_line[8]["text"] == "caf\ufffd" and by_line[8]["id"] == "f"


def test_csv_header_without_a_required_column_rejects_every_record():
    rows = _rows(b"id,comment,label\na,x,1\nb,y,0\n", "csv")
    assert _codes(rows) == [(2, "missing_column"), (3, "missing_column")]


def test_csv_missing_optional_column_is_null():
    rows = _rows(b"text,label\nx,1\n", "csv")
    assert _kept(rows) == [{"text": "x", "label": "1", "id": None}]


def test_csv_unclosed_quote_is_one_reject_not_an_error():
    rows = _rows(b'id,text,label\na,x,1\nb,"never closed,1\nc,y,0\n', "csv")
    assert _kept(rows) == [{"text": "x", "label": "1", "id": "a"}]
    assert _codes(rows) == [(3, "wrong_field_count")]


def test_jsonl_malformed_records():
    lines = [
        b'{"id": "a", "text": "good", "label": 1}',  # 1 kept
        b'{"id": "b", "text": "cut',                 # 2 malformed_json
        b'[1, 2, 3]',                                # 3 not_an_object
        b'"just a string"',                          # 4 not_an_object
        b'{"id": "c", "text": "no label"}',          # 5 missing_column
        b'{"id": "d", "text": ["a", "list"], "label": 0}',  # 6 wrong_type
        b'{"id": "e\xff", "text": "x", "label": 0}',  # 7 undecodable (id)
        b'{"id": "f", "text": "caf\xe9", "label": 0}',  # 8 undecodable_text
        b'{"id": "g", "text": "lone \\udc80", "label": 0}',  # 9 undecodable_text (an escape UTF-8 cannot hold)
        b'',                                         # 10 blank: skipped
        b'   ',                                      # 11 blank: skipped
        b'{"id": "h", "text": "ok", "label": 0, "other": {"nested": "fine"}}',  # 12 kept
        b'{"id": "i", "text": "crlf", "label": 1}\r',  # 13 kept (CR LF line end)
    ]
    rows = _rows(b"\n".join(lines), "jsonl")  # no final newline
    assert _kept(rows) == [{"text": "good", "label": "1", "id": "a"}, {"text": "ok", "label": "0", "id": "h"},
                           {"text": "crlf", "label": "1", "id": "i"}]
    assert _codes(rows) == [(2, "malformed_json"), (3, "not_an_object"), (4, "not_an_object"),
                            (5, "missing_column"), (6, "wrong_type"), (7, "undecodable"),
                            (8, "undecodable_text"), (9, "undecodable_text")]
    raw = {r[READ_LINE]: r[READ_RAW] for r in rows}
    assert raw[2] == '{"id": "b", "text": "cut' and raw[7] == '{"id": "e\ufffd", "text": "x", "label": 0}'


def test_jsonl_bom_and_only_blank_lines():
    assert _kept(_rows(b'\xef\xbb\xbf{"text": "x", "label": 1}\n', "jsonl")) == [{"text": "x", "label": "1", "id": None}]
    assert _rows(b"\n\n  \n", "jsonl") == []


def test_every_code_is_in_the_closed_set():
    data = b'{"text": "x"}\n[1]\n{bad\n{"text": [1], "label": 0}\n{"text": "a", "label": "\xff"}\n'
    rows = _rows(data, "jsonl") + _rows(b"id,text,label\na,b\n", "csv")
    assert {r[READ_REJECT] for r in rows} <= set(READ_REJECT_REASONS)


def test_tables_are_cut_at_rows_per_table_and_lose_nothing():
    data = "".join(json.dumps({"text": f"t{i}", "label": i % 2}) + ("\n" if i % 7 else "\n{bad\n") for i in range(25))
    tables = list(iter_tables(io.BytesIO(data.encode()), format="jsonl", columns=COLS, required=REQ, rows_per_table=4))
    assert all(t.num_rows <= 4 for t in tables)
    rows = pa.concat_tables(tables).to_pylist()
    assert [r["text"] for r in rows if r[READ_REJECT] is None] == [f"t{i}" for i in range(25)]
    assert sum(r[READ_REJECT] == "malformed_json" for r in rows) == 4  # i = 0, 7, 14, 21


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="format must be one of"):
        parse_bytes(b"", format="xml", columns=COLS)
    with pytest.raises(ValueError, match="required columns"):
        parse_bytes(b"", format="csv", columns=["text"], required=["label"])


# ---- parquet ---------------------------------------------------------------------------------


def test_parquet_types_cast_to_string_nested_is_wrong_type_missing_required_column():
    t = pa.table({"text": pa.array([42, 7], pa.int64()), "label": pa.array([True, False]),
                  "id": pa.array([[1], None], pa.list_(pa.int64()))})
    out = normalise_table(t, columns=COLS, required=REQ, text_col="text").to_pylist()
    assert [(r["text"], r["label"], r["id"], r[READ_REJECT]) for r in out] == [
        ("42", "true", None, "wrong_type"), ("7", "false", None, None)]
    out = normalise_table(pa.table({"text": ["x"]}), columns=COLS, required=REQ, text_col="text").to_pylist()
    assert out[0][READ_REJECT] == "missing_column" and out[0]["label"] is None
    out = normalise_table(pa.table({"text": pa.array([b"caf\xe9"]), "label": pa.array([b"\xff"]),
                                    "id": pa.array(["a"]).dictionary_encode()}), columns=COLS, required=REQ,
                          text_col="text").to_pylist()
    assert out[0]["text"] == b"caf\xe9" and out[0][READ_REJECT] == "undecodable" and out[0]["id"] == "a"


def test_read_files_streams_every_format_with_the_path(tmp_path):
    fs = pafs.LocalFileSystem()
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"id,text,label\n007,x,1\nbad\n"))
    pq.write_table(pa.table({"id": [1, 2], "text": ["p", "q"], "label": [0, 1], "unused": [0.5, 0.5]}),
                   tmp_path / "b.parquet", row_group_size=1)
    kw = {"filesystem": fs, "columns": COLS, "required": REQ, "text_col": "text", "rows_per_table": 1}
    rows = [r for t in read_files(pa.table({"path": [str(tmp_path / "a.csv.gz")]}), format="csv", **kw)
            for r in t.to_pylist()]
    assert [(r["path"], r["id"], r[READ_REJECT]) for r in rows] == [
        (str(tmp_path / "a.csv.gz"), "007", None), (str(tmp_path / "a.csv.gz"), None, "wrong_field_count")]
    tables = list(read_files(pa.table({"path": [str(tmp_path / "b.parquet")]}), format="parquet", **kw))
    assert [t.num_rows for t in tables] == [1, 1] and "unused" not in tables[0].column_names
    assert [r["id"] for t in tables for r in t.to_pylist()] == ["1", "2"]


# ---- into prepare and the rejects output -----------------------------------------------------


def test_reader_rejects_reach_the_rejects_output_with_stage_read():
    cfg = load_config(base={"data": {"path": "x", "text_col": "text", "label_col": "label",
                                     "id_col": "id"}}).model_dump()
    t = parse_bytes(b"id,text,label\n007,0042 women,1\n,only,two,many\nu1,caf\xe9,1\n", format="csv",
                    columns=COLS, required=REQ, text_col="text")
    t = t.add_column(0, "path", pa.array(["/d/a.csv"] * t.num_rows))
    out = prepare_batch(t.to_pandas(), cfg=cfg)
    assert out["id"].tolist() == ["007", "/d/a.csv:3", "u1"]
    assert out["reject_reason"].isna().tolist() == [True, False, False]
    rej = rejects_view(out).sort_values("id").to_dict("records")
    assert rej == [
        {"id": "/d/a.csv:3", "raw_text": ",only,two,many", "raw_label": "", "reject_reason": "wrong_field_count",
         "stage": "read"},
        {"id": "u1", "raw_text": "caf\ufffd", "raw_label": "1", "reject_reason": "undecodable_text", "stage": "clean"},
    ]
    assert out.loc[0, "text"] == "0042 women"


def test_read_files_on_an_object_store_through_a_pickled_filesystem(s3_server):
    """What a Ray task gets: the driver's S3 filesystem, pickled, and a compressed file's path."""
    import pickle

    fs, base = pafs.FileSystem.from_uri(s3_server("readers/in"))
    with fs.open_output_stream(f"{base}/a.jsonl.gz", compression=None) as f:  # else it gzips again
        f.write(gzip.compress(b'{"id": "007", "text": "x", "label": 1}\n{bad\n'))
    rows = [r for t in read_files(pa.table({"path": [f"{base}/a.jsonl.gz"]}), filesystem=pickle.loads(pickle.dumps(fs)),
                                  format="jsonl", columns=COLS, required=REQ, text_col="text") for r in t.to_pylist()]
    assert [(r["id"], r[READ_REJECT], r[READ_LINE]) for r in rows] == [("007", None, 1), (None, "malformed_json", 2)]


def test_a_configured_column_named_like_a_reader_column_is_refused():
    from debias.corpus.read import check_columns

    check_columns(COLS)
    with pytest.raises(ValueError, match=r"\['path'\] are used by the reader"):
        check_columns(["text", "path"])
    with pytest.raises(ValueError, match="read_reject"):
        parse_bytes(b"", format="csv", columns=["text", "read_reject"])
