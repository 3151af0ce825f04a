"""The two examples run as a user runs them (a fresh interpreter) and print their tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    p = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_audit_predictions_on_a_csv(tmp_path):
    import pandas as pd

    out = _run("audit_predictions.py", "--rows", "2000", "--n-boot", "50")
    assert "FPR [95% interval]" in out and "largest gaps between groups" in out and "lowest BPSN AUC" in out
    # a user's own CSV with other column names, and a clear error for a missing column
    pd.DataFrame({"comment": ["my sister is a nurse", "you idiot"] * 40, "y": [0, 1] * 40,
                  "p": [0.2, 0.9] * 40}).to_csv(tmp_path / "mine.csv", index=False)
    out = _run("audit_predictions.py", str(tmp_path / "mine.csv"), "--text", "comment", "--label", "y",
               "--score", "p", "--n-boot", "20")
    assert "80 texts, 40 mention an identity group" in out and "female" in out
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "audit_predictions.py"), str(tmp_path / "mine.csv")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 2 and "has no column(s) ['text', 'label', 'score']" in p.stderr


def test_debias_a_classifier_end_to_end():
    out = _run("debias_a_classifier.py", "--rows", "3000")
    for row in ("baseline", "CDA + reweighting", "+ per-group thresholds (FPR parity)"):
        assert row in out
    assert "template FPR gap" in out and "worst-group recall" in out and "CF flip rate" in out
