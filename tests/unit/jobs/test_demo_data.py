"""``data.path: demo:N`` materialises the demo corpus beside the run, local or on an object store."""

from __future__ import annotations

import pandas as pd
import pyarrow.fs as pafs

from debias.config import load_config
from debias.runs import resolve_fs
from jobs import preprocess
from jobs.pipeline import materialise_demo_data


def test_demo_corpus_on_an_s3_run_dir(s3_server, tmp_path):
    run = s3_server("runs/demo")
    cfg = materialise_demo_data(load_config(base={"data": {"path": "demo:300", "label_col": "toxic"}}), run)
    assert cfg.data.path.startswith("s3://") and "endpoint_override" in cfg.data.path
    fs, path = resolve_fs(cfg.data.path)
    with fs.open_input_file(path) as f:
        remote = pd.read_parquet(f)
    local = materialise_demo_data(load_config(base={"data": {"path": "demo:300", "label_col": "toxic"}}), str(tmp_path / "run"))
    pd.testing.assert_frame_equal(remote, pd.read_parquet(local.data.path))  # same seed, same corpus
    assert len(remote) == 300
    info = fs.get_file_info(path)
    again = materialise_demo_data(load_config(base={"data": {"path": "demo:300", "label_col": "toxic"}}), run)
    assert again.data.path == cfg.data.path and fs.get_file_info(path).mtime == info.mtime  # not rewritten
    assert fs.get_file_info(path).type == pafs.FileType.File
    preprocess.preflight(cfg)  # the input inspection reads it from the object store
