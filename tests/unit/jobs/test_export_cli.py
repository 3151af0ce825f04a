"""`debias export` on the CLI paths that need no Ray: --no-parity, and errors caught before Ray starts."""

from __future__ import annotations

import importlib.util
import json

import pytest

from jobs.cli import main

ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None


def _ray_started() -> bool:
    import ray

    return ray.is_initialized()


def test_export_no_parity_writes_the_card_without_ray(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "int8"
    rc = main(["export", "--optimize", "int8", "--model", str(tiny_model_dir), "--out", str(out),
               "--no-parity", "--run-dir", str(tmp_path / "run")])
    assert rc == 0 and capsys.readouterr().out.strip() == str(out)
    card = json.loads((out / "model_card.json").read_text())
    assert card["optimized"]["method"] == "int8" and "parity" not in card
    assert not _ray_started()
    # The same output folder again: refused (exit 2) with the reason, before any Ray work.
    rc = main(["export", "--optimize", "int8", "--model", str(tiny_model_dir), "--out", str(out),
               "--run-dir", str(tmp_path / "run")])
    assert rc == 2 and "exists and is not empty" in capsys.readouterr().err
    assert not _ray_started()


def test_compare_with_a_missing_model_fails_before_ray(tiny_model_dir, tmp_path, capsys):
    rc = main(["evaluate", "--run-dir", str(tmp_path), "--compare", str(tiny_model_dir), str(tmp_path / "nope")])
    assert rc == 2 and "model dir must be an existing local folder" in capsys.readouterr().err
    assert not _ray_started()


@pytest.mark.skipif(ONNX, reason="onnx and onnxruntime are installed: the missing-extra error cannot occur")
def test_onnx_without_the_extra_is_a_clear_cli_error(tiny_model_dir, tmp_path, capsys):
    rc = main(["export", "--optimize", "onnx", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
               "--run-dir", str(tmp_path)])
    assert rc == 2 and "debias[onnx]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
