import pandas as pd
import pytest

from debias.config import DataConfig
from debias.io import inspect_input


def _cfg(path, **kw):
    return DataConfig(path=str(path), **kw)


def test_formats_and_columns(tmp_path):
    df = pd.DataFrame({"comment": ["a", "b"], "y": [0, 1]})
    df.to_parquet(tmp_path / "a.parquet")
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    df.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    for ext, fmt in [("parquet", "parquet"), ("csv", "csv"), ("tsv", "tsv"), ("jsonl", "jsonl")]:
        spec = inspect_input(_cfg(tmp_path / f"a.{ext}", text_col="comment", label_col="y"))
        assert spec.format == fmt and spec.columns == ["comment", "y"]


def test_missing_column_lists_columns_present(tmp_path):
    pd.DataFrame({"id": [1], "comment": ["x"], "label": [0]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ValueError) as e:
        inspect_input(_cfg(tmp_path / "d.csv"))
    assert "missing column 'text' (data.text_col)" in str(e.value)
    assert "columns present: id, comment, label" in str(e.value)


def test_folder_and_glob(tmp_path):
    for i in range(3):
        pd.DataFrame({"text": ["x"], "label": [1]}).to_parquet(tmp_path / f"part-{i}.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    assert len(inspect_input(_cfg(tmp_path)).files) == 3
    assert len(inspect_input(_cfg(tmp_path / "part-[01].parquet")).files) == 2
    with pytest.raises(ValueError, match="no input files"):
        inspect_input(_cfg(tmp_path / "*.csv"))


def test_bad_inputs_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        inspect_input(_cfg(tmp_path / "nope.csv"))
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        inspect_input(_cfg(tmp_path / "empty.csv"))
    (tmp_path / "fake.parquet").write_text("text,label\nhello,1\n")
    with pytest.raises(ValueError, match="not a parquet file"):
        inspect_input(_cfg(tmp_path / "fake.parquet"))
    pd.DataFrame({"text": ["x"], "label": [1]}).to_parquet(tmp_path / "real.csv")
    with pytest.raises(ValueError, match="looks like a parquet file"):
        inspect_input(_cfg(tmp_path / "real.csv"))
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(ValueError, match="not JSON"):
        inspect_input(_cfg(tmp_path / "bad.jsonl"))
    (tmp_path / "x.txt").write_text("text,label\n")
    with pytest.raises(ValueError, match="data.format"):
        inspect_input(_cfg(tmp_path / "x.txt"))


def test_to_arrow_outputs_read_back_with_pandas(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from debias.io import to_arrow

    groups = pd.Series([["female"], []], dtype=pd.ArrowDtype(pa.list_(pa.string())))
    df = pd.DataFrame({"id": ["a", "b"], "groups": groups})
    pq.write_table(to_arrow(df), tmp_path / "x.parquet")
    back = pd.read_parquet(tmp_path / "x.parquet")
    assert [list(g) for g in back["groups"]] == [["female"], []]


def test_preflight_reads_headers_as_the_reader_does(tmp_path):
    """A BOM, a gzip stream, and malformed JSONL lines before the first object (rejects for the
    reader, not a failed run); a missing column is still an error before any cluster work, and
    no message quotes a line."""
    import gzip

    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbftext,label\nx,1\n")
    assert inspect_input(_cfg(tmp_path / "bom.csv")).columns == ["text", "label"]
    (tmp_path / "z.csv.gz").write_bytes(gzip.compress(b"text,label\nx,1\n"))
    assert inspect_input(_cfg(tmp_path / "z.csv.gz")).columns == ["text", "label"]
    (tmp_path / "late.jsonl").write_bytes(b'\xef\xbb\xbfSECRET{\n["SECRET"]\n{"text": "x", "label": 1}\n')
    assert inspect_input(_cfg(tmp_path / "late.jsonl")).columns == ["text", "label"]
    (tmp_path / "none.jsonl").write_bytes(b'SECRET{\n["SECRET"]\n')
    with pytest.raises(ValueError, match="no JSON object") as e:
        inspect_input(_cfg(tmp_path / "none.jsonl"))
    assert "SECRET" not in str(e.value) and "line 1 is not JSON" in str(e.value)
    (tmp_path / "nolabel.jsonl").write_bytes(b'{"text": "x"}\n')
    with pytest.raises(ValueError, match="missing column 'label'"):
        inspect_input(_cfg(tmp_path / "nolabel.jsonl"))
