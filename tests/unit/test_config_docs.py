"""The config described from its models: defaults, schema, reference, "did you mean", and the CLI
entry points that show them (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from debias import __version__
from debias.config import ConfigError, PipelineConfig, load_config
from debias.config_docs import REQUIRED, defaults_yaml, reference_markdown, schema_json, suggest_key
from jobs.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_yaml_loads_back_to_the_defaults(tmp_path):
    doc = yaml.safe_load(defaults_yaml())
    assert doc["data"]["path"] == REQUIRED
    (tmp_path / "d.yaml").write_text(defaults_yaml())
    loaded = load_config(tmp_path / "d.yaml")
    assert loaded == PipelineConfig.model_validate({"data": {"path": REQUIRED}})
    assert set(doc) == set(PipelineConfig.model_fields)


def test_schema_accepts_the_demo_config_and_rejects_an_unknown_key():
    jsonschema = pytest.importorskip("jsonschema", reason="the schema check needs jsonschema (a test dependency)")
    schema = json.loads(schema_json())
    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    jsonschema.validate(demo, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**demo, "trian": {}}, schema)


def test_the_committed_reference_is_the_generated_one():
    committed = (ROOT / "docs" / "CONFIG.md").read_text()
    assert committed == reference_markdown(), \
        "docs/CONFIG.md is stale: run `debias config --reference > docs/CONFIG.md`"
    # every key of every section has a row
    for section in PipelineConfig.model_fields:
        assert f"| `{section}` |" in committed
    for key in ("train.epochs", "evaluate.group_thresholds", "evaluate.suites[].kind", "train.losses[].name"):
        assert f"| `{key}` |" in committed, key


@pytest.mark.parametrize("loc, want", [(("train", "epoch"), "epochs"), (("evaluate", "suites", 0, "kindd"), "kind"),
                                       (("serve", "treshold"), "threshold"), (("nmae",), "name"),
                                       (("train", "zzzzzz"), None)])
def test_did_you_mean(loc, want):
    assert suggest_key(loc) == want


def test_unknown_key_errors_name_the_nearest_key():
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key \(did you mean 'epochs'\?\)"):
        load_config(base={"data": {"path": "x"}, "train": {"epoch": 2}})


def test_cli_version_config_and_the_missing_config_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"debias {__version__}"
    assert main(["config", "--defaults"]) == 0 and "path: <required>" in capsys.readouterr().out
    assert main(["config", "--schema"]) == 0 and json.loads(capsys.readouterr().out)["title"] == "PipelineConfig"
    assert main(["train", "--run-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert "no --config given" in err and "make demo" in err


def test_ray_core_noise_is_quiet_unless_verbose(monkeypatch):
    from jobs.ray_session import quiet_ray_core

    monkeypatch.delenv("RAY_BACKEND_LOG_LEVEL", raising=False)
    monkeypatch.setenv("DEBIAS_VERBOSE", "1")
    quiet_ray_core()
    import os

    assert "RAY_BACKEND_LOG_LEVEL" not in os.environ
    monkeypatch.delenv("DEBIAS_VERBOSE")
    quiet_ray_core()
    assert os.environ["RAY_BACKEND_LOG_LEVEL"] == "fatal"
