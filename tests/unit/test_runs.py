import json

import pytest

from debias.runs import read_manifest, stage_output


def test_stage_output_is_atomic_and_replaces(tmp_path):
    run = str(tmp_path / "run")
    with stage_output(run, "preprocess", config={"a": 1}, inputs=["in.csv"], seed=7) as w:
        w.write_text("out.txt", "first")
        w.manifest["rows"] = {"read": 3}
        # while writing, the final name does not exist yet
        assert not (tmp_path / "run" / "preprocess").exists()
    m = read_manifest(run, "preprocess")
    assert m["rows"] == {"read": 3} and m["seed"] == 7 and m["inputs"] == ["in.csv"]
    assert m["config"] == {"a": 1} and "torch" in m["versions"]
    with stage_output(run, "preprocess") as w:
        w.write_text("out.txt", "second")
    assert (tmp_path / "run" / "preprocess" / "out.txt").read_text() == "second"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["preprocess"]


def test_crash_leaves_previous_output_untouched(tmp_path):
    run = str(tmp_path / "run")
    with stage_output(run, "train") as w:
        w.write_text("model.txt", "good")
    with pytest.raises(RuntimeError):
        with stage_output(run, "train") as w:
            w.write_text("model.txt", "half")
            raise RuntimeError("worker died")
    assert (tmp_path / "run" / "train" / "model.txt").read_text() == "good"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["train"]
    assert json.loads((tmp_path / "run" / "train" / "manifest.json").read_text())["stage"] == "train"


def test_missing_stage_has_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `debias evaluate` first"):
        read_manifest(str(tmp_path), "evaluate")


def _listing(fs, path):
    import pyarrow.fs as pafs

    return sorted(i.path[len(path):].lstrip("/") for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                  if i.type == pafs.FileType.File)


def test_stage_output_commits_on_a_real_s3_api(s3_server):
    from debias.runs import committed_path, resolve_fs

    run = s3_server("runs/commit")
    with stage_output(run, "preprocess", seed=3) as w:
        w.write_text("part-0.txt", "first")
        w.write_text("sub/part-1.txt", "first")
    fs, base = resolve_fs(run)
    assert read_manifest(run, "preprocess")["seed"] == 3
    with stage_output(run, "preprocess", seed=4) as w:  # replaces: no directory rename on S3
        w.write_text("part-0.txt", "second")
    assert _listing(fs, base) == ["preprocess/manifest.json", "preprocess/part-0.txt"]
    with fs.open_input_stream(base + "/preprocess/part-0.txt") as f:
        assert f.read() == b"second"
    path = committed_path(run, "preprocess", "part-0.txt")
    assert path.startswith("s3://debias-test/runs/commit/preprocess/part-0.txt?endpoint_override=")
    fs2, key = resolve_fs(path)  # the URI opens as it is
    with fs2.open_input_stream(key) as f:
        assert f.read() == b"second"


_KILLER = r"""
import os, signal, sys
import pyarrow.fs as pafs
import debias.runs as R

run, point = sys.argv[1], sys.argv[2]
real_copy = pafs.copy_files

def copy_then_die(*a, **k):  # the object-store commit copied the files; die before the manifest
    real_copy(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)

R.pafs.copy_files = copy_then_die
with R.stage_output(run, "train") as w:
    w.write_text("model.txt", "half")
    if point == "writing":
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("where", ["writing", "committing"])
def test_a_kill_during_a_stage_never_leaves_a_committed_half_output(s3_server, tmp_path, where):
    """SIGKILL while writing (local and S3) and between the commit's copy and its manifest (S3):
    nothing half-written is trusted, and the next run cleans the stale attempt and commits."""
    import signal
    import subprocess
    import sys

    from debias.runs import committed_path, resolve_fs

    runs = [s3_server(f"runs/kill-{where}")] + ([str(tmp_path / "run")] if where == "writing" else [])
    for run in runs:
        with stage_output(run, "train") as w:
            w.write_text("model.txt", "good")
        proc = subprocess.run([sys.executable, "-c", _KILLER, run, where], capture_output=True)
        assert proc.returncode == -signal.SIGKILL
        fs, base = resolve_fs(run)
        left = _listing(fs, base)
        assert any(p.startswith(".train.tmp-") for p in left)  # the killed attempt is still there
        if where == "committing":  # the old output was uncommitted, the new one not yet committed
            assert "train/model.txt" in left and "train/manifest.json" not in left
            with pytest.raises(FileNotFoundError, match="run `debias train` first"):
                committed_path(run, "train", "model.txt")
        else:
            assert read_manifest(run, "train") and "train/model.txt" in left  # previous output intact
        with stage_output(run, "train") as w:
            w.write_text("model.txt", "again")
        assert _listing(fs, base) == ["train/manifest.json", "train/model.txt"]  # stale attempt gone
        with fs.open_input_stream(base + "/train/model.txt") as f:
            assert f.read() == b"again"
