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
