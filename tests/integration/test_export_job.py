"""debias export + evaluate --compare end to end: tiny random BERT, a tiny run, the shared local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AXES = ["gender", "religion"]
SENTENCES = [("I had lunch with a {t} today", 0), ("the {t} next door is lovely", 0),
             ("you are a stupid {t} and I hate you", 1), ("shut up, you worthless {t}", 1)]
TERMS = ["woman", "man", "muslim", "christian"]


def _write_run(run_dir: Path) -> None:
    from debias.identity.tools import identity_tools

    rows = [{"text": s.format(t=t) + "!" * k, "label": y}
            for k in range(3) for s, y in SENTENCES for t in TERMS]
    df = pd.DataFrame(rows)
    df["id"] = [f"r{i}" for i in range(len(df))]
    df = identity_tools(axes=AXES).annotator(df, text_col="text")
    (run_dir / "preprocess" / "test").mkdir(parents=True)
    df.to_parquet(run_dir / "preprocess" / "test" / "part-0.parquet", index=False)


def test_export_with_parity_then_compare(tmp_path, tiny_model_dir, ray_local):
    from debias.config import load_config
    from jobs import compare
    from jobs.cli import main

    run = tmp_path / "run"
    _write_run(run)
    cfg = load_config(base={
        "data": {"path": "unused"}, "annotate": {"axes": AXES}, "augment": {"axes": AXES},
        "evaluate": {"batch_size": 16, "n_boot": 20, "min_group_size": 5, "suites": [
            {"name": "test", "kind": "test_split"},
            {"name": "templates", "kind": "identity_templates", "template_sets": ["statements"], "limit": 200},
            {"name": "counterfactual", "kind": "counterfactual_pairs"}]}})
    out = compare.export(cfg, str(run), source=str(tiny_model_dir), out=str(tmp_path / "int8"), method="int8")
    card = json.loads((tmp_path / "int8" / "model_card.json").read_text())
    assert card["optimized"]["method"] == "int8"
    assert card["parity"]["passed"] == out["passed"]
    assert set(card["parity"]["suites"]) == {"test", "templates", "counterfactual"}
    tm = {m["metric"]: m for m in card["parity"]["suites"]["templates"]["metrics"]}
    assert "fpr_gap" in tm and tm["auc"]["a_lo"] <= tm["auc"]["a"] <= tm["auc"]["a_hi"]
    doc = json.loads((run / "compare" / "metrics.json").read_text())
    assert doc["model_b"] == str(tmp_path / "int8")
    # A model compared with itself: no drift, and the gate passes (exit 0) through the CLI.
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.model_dump(mode="json")))
    rc = main(["evaluate", "--config", str(cfg_path), "--run-dir", str(run),
               "--compare", str(tiny_model_dir), str(tiny_model_dir)])
    assert rc == 0
    same = json.loads((run / "compare" / "metrics.json").read_text())
    assert same["passed"] and all(s["drift"]["max_abs_diff"] == 0 for s in same["suites"].values())
