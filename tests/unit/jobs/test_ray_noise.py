"""Ray's own lines are kept out of the user's log; ours and real warnings pass."""

from __future__ import annotations

import pytest

from jobs.ray_session import keep_worker_line

NOISE = [
    "[2026-12-07 05:28:03,550 I 3525 3525] logging.cc:303: Set ray log level from environment variable "
    "RAY_BACKEND_LOG_LEVEL to 3",
    "Progress bars disabled. To enable, set `ray.data.DataContext.get_current().enable_progress_bars = True`.",
    "Reporting training result 1: TrainingReport(checkpoint=Checkpoint(filesystem=local, path=/tmp/x), metrics={})",
    "Checkpoint successfully created at: Checkpoint(filesystem=local, path=/tmp/x/checkpoint_1)",
    "Requesting resources: {'CPU': 2} * 1",
    "Attempting to start training worker group of size 1 with the following resources: [{'CPU': 2}] * 1",
    "Started training worker group of size 1: ",
    "- (ip=192.0.2.2, pid=4127) world_rank=0, local_rank=0, node_rank=0",
    "Setting up process group for: env:// [rank=0, world_size=1]",
    "Moving model to device: cpu",
    "✔️  Dataset train_035ANwyu61GlPrCK2Suwpn_0 execution finished in 490.58 seconds",
    "/x/ray/data/_internal/execution/interfaces/execution_options.py:436: RayDeprecationWarning: "
    "`ExecutionOptions.exclude_resources` is deprecated",
]
KEEP = [
    "[debias train] run r1 epoch 1/1 step 79/600 | loss 0.7017 | 41.6 samples/s | epoch ETA 0:06:41",
    "[evaluate] scoring: 1,024/9,000 texts, 210.3/s, ETA 38 s",
    "UserWarning: the tokenizer has no pad token",
    "Traceback (most recent call last):",
    "ValueError: labels: 3 of the first 10 non-null values map to no class",
]


@pytest.mark.parametrize("line", NOISE)
def test_ray_noise_is_dropped(line):
    assert not keep_worker_line(line)


@pytest.mark.parametrize("line", KEEP)
def test_our_lines_and_real_problems_pass(line):
    assert keep_worker_line(line)
