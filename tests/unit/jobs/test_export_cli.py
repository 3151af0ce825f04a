"""`debias export` on the CLI paths that need no Ray: --no-parity, and errors caught before Ray starts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import main

ROOT = Path(__file__).resolve().parents[3]
ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None


def _cli_in_fresh_process(args: list[str]) -> tuple[int, bool, str, str]:
    """Run ``debias ARGS`` in a new interpreter: (exit code, whether Ray was started, stdout,
    stderr). A fresh process, because an earlier test in this one may have left Ray running."""
    code = ("import json, sys\nfrom jobs.cli import main\nrc = main(sys.argv[1:])\n"
            "import ray\nprint('RAY_STARTED=' + json.dumps(ray.is_initialized()))\nsys.exit(rc)\n")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = p.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("RAY_STARTED="), p.stderr[-2000:]
    return p.returncode, json.loads(lines[-1].split("=", 1)[1]), "\n".join(lines[:-1]), p.stderr


def test_export_no_parity_writes_the_card_without_ray(tiny_model_dir, tmp_path):
    out = tmp_path / "int8"
    rc, ray_started, stdout, _ = _cli_in_fresh_process(
        ["export", "--optimize", "int8", "--model", str(tiny_model_dir), "--out", str(out),
         "--no-parity", "--run-dir", str(tmp_path / "run")])
    assert rc == 0 and stdout.strip() == str(out)
    card = json.loads((out / "model_card.json").read_text())
    assert card["optimized"]["method"] == "int8" and "parity" not in card
    assert not ray_started
    # The same output folder again: refused (exit 2) with the reason, before any Ray work.
    rc, ray_started, _, stderr = _cli_in_fresh_process(
        ["export", "--optimize", "int8", "--model", str(tiny_model_dir), "--out", str(out),
         "--run-dir", str(tmp_path / "run")])
    assert rc == 2 and "exists and is not empty" in stderr
    assert not ray_started


def test_compare_with_a_missing_model_fails_before_ray(tiny_model_dir, tmp_path):
    rc, ray_started, _, stderr = _cli_in_fresh_process(
        ["evaluate", "--run-dir", str(tmp_path), "--compare", str(tiny_model_dir), str(tmp_path / "nope")])
    assert rc == 2 and "model dir must be an existing local folder" in stderr
    assert not ray_started


@pytest.mark.skipif(ONNX, reason="onnx and onnxruntime are installed: the missing-extra error cannot occur")
def test_onnx_without_the_extra_is_a_clear_cli_error(tiny_model_dir, tmp_path, capsys):
    rc = main(["export", "--optimize", "onnx", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
               "--run-dir", str(tmp_path)])
    assert rc == 2 and "debias[onnx]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
