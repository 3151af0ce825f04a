"""Regression: the preprocess output on a small demo corpus, row for row, against a digest
recorded from the code before the issue-17 regroup (so refactors cannot change the output).

The digest (tests/golden/preprocess_digest.py) hashes each split's rows sorted by id, every
column, plus the rejects and the manifest's row counts. Both the Ray job and the single-process
``run_local`` must give it. Two configs: the demo's (reweight + append) and resampling with
in-place augmentation (hybrid + replace), so the weights, the resample passes and the
augmentation all take part.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from debias.config import load_config
from debias.corpus.demo import write_demo_corpus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
N_ROWS = 2000

# The expected digests, recorded with the pre-regroup checkout (main at 40d4cd9):
#   PYTHONPATH=<old checkout> python -m debias.cli preprocess --config configs/demo.yaml \
#       --run-dir R --set data.path=demo:2000 [--set balance.strategy=hybrid --set augment.mode=replace]
#   python tests/golden/preprocess_digest.py R/preprocess
# (the old run_local gave the same digests: `preprocess_digest.py local R/data/demo-2000-seed0.parquet
# configs/demo.yaml [overrides]`). They must change only deliberately: when a change is meant to
# alter preprocessing's output, rerun those commands on the new code, check the difference is
# the intended one, and update the digest here in that same commit, saying why.
# Updated for issue 18: reject reasons became bare codes (``unknown_label:2`` -> ``unknown_label``),
# which changes the rejects part only; the splits' rows, texts and weights are the same (the demo
# corpus has no PII of the new kinds: its texts come out of the new masker unchanged).
GOLDEN = {
    "demo": ([], "c6a5cfe4d6db6800003cae0fe44d48fd213cd35ea37c87302fff5d7d615f4f5a"),
    "hybrid_replace": (["balance.strategy=hybrid", "augment.mode=replace"],
                       "9e369274bdffa131a3adc8f5b1d3f9c4b9ca9536a763c1541e858e2de7d65a1d"),
}


def _digest_module():
    spec = importlib.util.spec_from_file_location("preprocess_digest", ROOT / "tests" / "golden" / "preprocess_digest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def digest():
    return _digest_module()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / f"demo-{N_ROWS}-seed0.parquet"
    write_demo_corpus(path, n_rows=N_ROWS, seed=0)
    return path


def _explain(got: dict, want_sha: str) -> str:
    return (f"preprocess output changed: digest {got['sha256']}, expected {want_sha}; "
            f"per part {json.dumps(got['parts'], sort_keys=True)}, rows {json.dumps(got['rows'], sort_keys=True)}")


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_run_local_matches_the_recorded_digest(digest, corpus, case):
    overrides, want = GOLDEN[case]
    got = digest.local_digest(corpus, config=DEMO_CONFIG, overrides=overrides)
    assert got["rows"]["read"] == N_ROWS
    assert got["sha256"] == want, _explain(got, want)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_the_job_matches_the_recorded_digest(ray_local, digest, corpus, tmp_path, case):
    from jobs import preprocess

    overrides, want = GOLDEN[case]
    cfg = load_config(str(DEMO_CONFIG), [*overrides, f"data.path={corpus}"])
    preprocess.run(cfg, str(tmp_path / "run"))
    got = digest.digest_run(tmp_path / "run" / "preprocess")
    assert got["rows"]["read"] == N_ROWS
    assert got["sha256"] == want, _explain(got, want)


def test_the_digest_sees_a_one_cell_change(digest, corpus):
    """The digest is not blind: one label flipped, or one row's weight nudged, changes it."""
    import pandas as pd

    from debias.corpus.local import run_local

    cfg = load_config(str(DEMO_CONFIG), [f"data.path={corpus}"]).model_dump()
    res = run_local(pd.read_parquet(corpus), cfg=cfg)
    base = digest.digest_frames(res)["sha256"]
    for col, change in (("label", lambda v: 1 - v), ("sample_weight", lambda v: v + 1e-12)):
        out = res["output"].copy()
        out.loc[out.index[5], col] = change(out.loc[out.index[5], col])
        assert digest.digest_frames({**res, "output": out})["sha256"] != base, col
    shuffled = res["output"].sample(frac=1.0, random_state=1)  # order does not matter
    assert digest.digest_frames({**res, "output": shuffled})["sha256"] == base
