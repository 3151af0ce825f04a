"""The preprocess job's PII counts: each prepare task writes its block's counts beside its
output, and the driver sums them for the manifest (no Ray needed to call either)."""

import pyarrow as pa
import pyarrow.fs as pafs

from debias.config import load_config
from jobs.preprocess import _pii_masked, prepare_with_side_outputs


def test_blocks_write_counts_and_the_driver_sums_them(tmp_path):
    fs, pii_dir = pafs.LocalFileSystem(), str(tmp_path / "pii")
    fs.create_dir(pii_dir)
    cfg = load_config(base={"data": {"path": "x.csv", "text_col": "comment", "label_col": "y"}}).model_dump()
    blocks = [
        pa.table({"comment": ["call 555-123-4567 555-987-6543", "ip 8.8.8.8"], "y": ["1", "0"]}),
        pa.table({"comment": ["iban DE89370400440532013000 and x@y.com", "plain"], "y": ["0", "bad label"]}),
    ]
    for b in blocks:
        out = prepare_with_side_outputs(b, cfg=cfg, fs=fs, pii_dir=pii_dir)
        assert "555" not in " ".join(out.column("text").to_pylist())
    total = _pii_masked(fs, pii_dir)
    assert total["phone"] == 2 and total["ip"] == 1 and total["iban"] == 1 and total["email"] == 1
    assert sum(total.values()) == 5 and list(total) == sorted(total)
    # a retried task overwrites its own file: counts do not double
    prepare_with_side_outputs(blocks[0], cfg=cfg, fs=fs, pii_dir=pii_dir)
    assert _pii_masked(fs, pii_dir) == total
