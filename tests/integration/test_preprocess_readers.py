"""`debias preprocess` (the CLI, its own local Ray) on CSV, TSV, JSONL and parquet inputs with
malformed records mixed in: the job succeeds, the manifest counts every record, the rejects
carry the reader's codes, and no record's content reaches the job's output or its manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET = "ZQXJ"  # in every malformed record: it must not show up in logs or the manifest
N_GOOD = 60
GOOD = [
    "women are great engineers", "the muslim family next door is kind", "gay people deserve respect",
    "he is a good father", "I met a black doctor today", "old people are wise", "what a lovely day",
    "christian and jewish neighbours shared dinner", "the deaf student won the prize", "you are an idiot",
]


def _good(i: int) -> tuple[str, str, str]:
    return f"{i:03d}", f"{GOOD[i % len(GOOD)]} number {i}", str(i % 3 == 0 and 1 or 0)


def _delimited(path: Path, d: str) -> dict:
    rows = [d.join(_good(i)).encode() for i in range(N_GOOD)]
    body = [f"id{d}comment{d}toxic".encode(), *rows[:20],
            f"{SECRET}1{d}too{d}many{d}fields".encode(),           # wrong_field_count
            b"",                                                   # blank line: not a record
            f"{SECRET}2 only one field".encode(),                  # wrong_field_count
            *rows[20:40],
            f"x1{d}{SECRET}3 a fine text{d}".encode() + b"\xff",   # undecodable (label)
            f'q1{d}"women are{d}\r\ngreat {SECRET}"{d}1'.encode(),  # kept: quoted delimiter and newline
            f"u1{d}caf".encode() + b"\xe9 " + f"{SECRET}4{d}1".encode(),  # undecodable_text (clean's code)
            *rows[40:]]
    path.write_bytes(b"\r\n".join(body))  # CR LF, no final line end
    return {"read": N_GOOD + 5, "reasons": {"wrong_field_count": 2, "undecodable": 1, "undecodable_text": 1},
            "stages": {"read": 3, "clean": 1}, "kept_ids": {"q1", "007"}}


def _jsonl(path: Path) -> dict:
    rows = [json.dumps(dict(zip(("id", "comment", "toxic"), _good(i), strict=True))).encode() for i in range(N_GOOD)]
    body = [b"\xef\xbb\xbf" + rows[0], *rows[1:30],
            b'{"id": "m1", "comment": "' + SECRET.encode() + b' cut off',            # malformed_json
            b'["' + SECRET.encode() + b'", "an", "array"]',                         # not_an_object
            b"",                                                                    # blank: not a record
            b'{"id": "m3", "comment": "' + SECRET.encode() + b' no label"}',       # missing_column
            b'{"id": "m4", "comment": ["' + SECRET.encode() + b'"], "toxic": 1}',  # wrong_type
            b'{"id": "m5\xff", "comment": "' + SECRET.encode() + b' 5", "toxic": 0}',  # undecodable (id)
            b'{"id": 7, "comment": "old people are wise and kind", "toxic": 0}',   # kept: id "7" beside "007"
            *rows[30:]]
    path.write_bytes(b"\n".join(body) + b"\n")
    return {"read": N_GOOD + 6, "reasons": {"malformed_json": 1, "not_an_object": 1, "missing_column": 1,
                                            "wrong_type": 1, "undecodable": 1},
            "stages": {"read": 5}, "kept_ids": {"7", "007"}}


def _parquet(folder: Path) -> dict:
    folder.mkdir()
    good = pd.DataFrame([_good(i) for i in range(N_GOOD)], columns=["id", "comment", "toxic"])
    good.iloc[:30].to_parquet(folder / "part-0.parquet", index=False)
    typed = good.iloc[30:].assign(id=lambda f: f["id"].astype(int) + 1000, toxic=lambda f: f["toxic"].astype(int))
    typed.to_parquet(folder / "part-1.parquet", index=False)  # int id and label
    pq.write_table(pa.table({"id": ["n1", "n2"], "comment": [[SECRET], [SECRET, "x"]], "toxic": ["1", "0"]}),
                   folder / "part-2.parquet")  # a list text: wrong_type
    pq.write_table(pa.table({"id": ["n3", "n4"], "comment": [f"{SECRET} a", f"{SECRET} b"]}),
                   folder / "part-3.parquet")  # no label column: missing_column
    return {"read": N_GOOD + 4, "reasons": {"wrong_type": 2, "missing_column": 2}, "stages": {"read": 4},
            "kept_ids": {"000", "1030", "1059"}}


@pytest.fixture(scope="module", params=["csv", "tsv", "jsonl", "parquet"])
def job(request, tmp_path_factory):
    fmt = request.param
    d = tmp_path_factory.mktemp(f"readers-{fmt}")
    if fmt == "parquet":
        data, expect = d / "pq", _parquet(d / "pq")
    elif fmt == "jsonl":
        data, expect = d / "c.jsonl", _jsonl(d / "c.jsonl")
    else:
        data = d / f"c.{fmt}"
        expect = _delimited(data, "," if fmt == "csv" else "\t")
    cfg = d / "c.yaml"
    cfg.write_text(json.dumps({"data": {"path": str(data), "text_col": "comment", "label_col": "toxic",
                                        "id_col": "id"}, "augment": {"mode": "none"},
                               "ray": {"num_cpus": 2}}))
    run = d / "run"
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "preprocess", "--config", str(cfg), "--run-dir", str(run)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    return fmt, r, run / "preprocess", expect


def test_the_job_succeeds_and_counts_every_record(job):
    fmt, r, out, expect = job
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["rows"]
    assert rows["read"] == expect["read"]
    assert rows["read"] == rows["kept"] + rows["rejected"] + rows["duplicates"]
    assert rows["duplicates"] == 0 and rows["rejected"] == sum(expect["reasons"].values())
    assert manifest["reject_reasons"] == expect["reasons"]


def test_rejects_carry_the_codes_and_stages(job):
    fmt, r, out, expect = job
    rejects = pd.read_parquet(out / "rejects")
    assert rejects["reject_reason"].value_counts().to_dict() == expect["reasons"]
    assert rejects["stage"].value_counts().to_dict() == expect["stages"]
    assert rejects["id"].notna().all() and (rejects["id"] != "").all()


def test_kept_rows_keep_their_exact_ids(job):
    fmt, r, out, expect = job
    ids = set(pd.concat([pd.read_parquet(out / s) for s in ("train", "val", "test")
                         if any((out / s).glob("*.parquet"))])["id"])
    assert expect["kept_ids"] <= ids
    assert len(ids) == N_GOOD + len({"q1", "7"} & expect["kept_ids"])


def test_no_record_content_in_the_logs_or_the_manifest(job):
    fmt, r, out, expect = job
    assert r.stderr.strip() and "rows: read" in r.stderr  # the job did log
    for text in (r.stdout, r.stderr, (out / "manifest.json").read_text()):
        assert SECRET not in text
