"""The workers of a job's Ray session run with transformers' tqdm bars off (a bar in a worker is
a carriage-return stream that the driver log prints as broken lines; the jobs print their own
progress once per line). A fresh interpreter, because the test session already holds a Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, ray
from debias.config import RayConfig
from jobs.ray_session import ray_session

@ray.remote(num_cpus=0)
def probe():
    import os
    from transformers.utils import logging
    return {"env": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"), "bars": logging.is_progress_bar_enabled()}

with ray_session(RayConfig(num_cpus=1), dashboard=False):
    print("PROBE " + json.dumps(ray.get(probe.remote())))
"""


def test_session_workers_have_progress_bars_off():
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT,
                       timeout=180, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("PROBE "))
    assert json.loads(line[6:]) == {"env": "1", "bars": False}
