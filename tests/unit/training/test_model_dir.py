"""The one model-directory rule that train, evaluate and serve share."""

from __future__ import annotations

from pathlib import Path

import pytest

from debias.training.model import check_model_dir, resolve_model_dir


def test_configured_dir_wins_and_is_checked(tiny_model_dir, tmp_path):
    assert resolve_model_dir(str(tiny_model_dir), run_dir=tmp_path, key="evaluate.model") == \
        str(tiny_model_dir.resolve())


def test_run_dir_model_is_the_default(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    (run / "train" / "model").symlink_to(tiny_model_dir)
    assert resolve_model_dir(None, run_dir=run, key="serve.model") == str(tiny_model_dir.resolve())


def test_a_dir_with_config_but_no_safetensors_is_refused(tmp_path):
    # evaluate used to accept any folder with a config.json; the trainer refused it
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no model.safetensors"):
        resolve_model_dir(str(tmp_path), run_dir=None, key="evaluate.model")
    with pytest.raises(ValueError, match="no model.safetensors"):
        check_model_dir(tmp_path)


@pytest.mark.parametrize("run_dir, match", [(None, "set serve.model"), ("RUN", "no trained model")])
def test_missing_model_errors_name_the_key(tmp_path, run_dir, match):
    run_dir = str(tmp_path / "nothing") if run_dir == "RUN" else run_dir
    with pytest.raises(ValueError, match=match):
        resolve_model_dir(None, run_dir=run_dir, key="serve.model")


def test_a_remote_run_model_is_copied_locally_once(s3_server, tiny_model_dir, tmp_path, monkeypatch):
    import json

    from debias.runs import stage_output

    monkeypatch.setenv("DEBIAS_CACHE", str(tmp_path / "cache"))
    run = s3_server("runs/model-copy")
    with pytest.raises(FileNotFoundError, match="stage 'train' has no output"):
        resolve_model_dir(None, run_dir=run, key="evaluate.model")
    with pytest.raises(ValueError, match="models load from a local folder"):
        resolve_model_dir(run, run_dir=None, key="evaluate.model")
    import pyarrow.fs as pafs

    with stage_output(run, "train") as w:
        pafs.copy_files(str(tiny_model_dir), w.sub("model"), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=w.fs)
    local = resolve_model_dir(None, run_dir=run, key="evaluate.model")
    assert local.startswith(str(tmp_path / "cache"))
    assert json.loads((tiny_model_dir / "config.json").read_text()) == json.loads(
        (Path(local) / "config.json").read_text())
    assert resolve_model_dir(None, run_dir=run, key="evaluate.model") == local  # cached
