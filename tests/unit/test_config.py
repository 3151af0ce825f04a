import pytest

from debias.config import ConfigError, PipelineConfig, apply_overrides, load_config

BASE = {"data": {"path": "x.csv"}}


def test_defaults_validate_and_round_trip():
    cfg = load_config(base=BASE)
    again = PipelineConfig.model_validate(cfg.model_dump())
    assert again == cfg
    assert cfg.split.train + cfg.split.val + cfg.split.test == pytest.approx(1.0)


def test_overrides_parse_yaml_scalars_and_nest():
    cfg = load_config(base=BASE, overrides=["train.epochs=3", "clean.lowercase=true",
                                            "augment.axes=[gender, religion]", "data.label_map={a: 1, b: 0}"])
    assert cfg.train.epochs == 3
    assert cfg.clean.lowercase is True
    assert cfg.augment.axes == ["gender", "religion"]
    assert cfg.data.label_map == {"a": 1, "b": 0}


def test_unknown_key_is_named_with_its_path():
    with pytest.raises(ConfigError) as e:
        load_config(base=BASE, overrides=["train.epoch=3"])
    assert "train.epoch: unknown key" in str(e.value)


def test_bad_value_names_key_and_found_value():
    with pytest.raises(ConfigError) as e:
        load_config(base=BASE, overrides=["balance.strategy=magic"])
    msg = str(e.value)
    assert "balance.strategy" in msg and "'magic'" in msg


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ConfigError, match="must be 1.0"):
        load_config(base=BASE, overrides=["split.train=0.5"])


def test_missing_data_section_is_reported():
    with pytest.raises(ConfigError, match="data: required key is missing"):
        load_config(base={})


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top"):
        load_config(lst)


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_label_map_values_must_be_binary():
    with pytest.raises(ConfigError, match="label_map"):
        load_config(base={"data": {"path": "x", "label_map": {"hate": 2}}})


def test_demo_config_file_validates():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
    assert cfg.data.path.startswith("demo:")


def test_tuned_threshold_needs_a_val_split_suite():
    with pytest.raises(ConfigError, match="tune_threshold needs a suite of kind val_split"):
        load_config(base={"data": {"path": "x"}, "evaluate": {"tune_threshold": True}})
    cfg = load_config(base={"data": {"path": "x"}, "evaluate": {
        "tune_threshold": True, "suites": [{"name": "t", "kind": "test_split"}, {"name": "v", "kind": "val_split"}]}})
    assert cfg.evaluate.tune_threshold


@pytest.mark.parametrize("path", ["serve/serve_config.yaml", "deploy/rayservice.yaml"])
def test_checked_in_serve_configs_have_valid_arguments(path):
    """The args a Serve config passes to serve.app:build_app are ServeConfig fields with valid values."""
    from pathlib import Path

    import yaml

    from debias.config import ServeConfig

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / path).read_text())
    if "serveConfigV2" in doc.get("spec", {}):  # the RayService embeds the Serve config as text
        doc = yaml.safe_load(doc["spec"]["serveConfigV2"])
    args = dict(doc["applications"][0]["args"])
    assert args.pop("model")  # a path on the cluster, checked when the application is built
    cfg = ServeConfig.model_validate(args)
    assert cfg.batcher == "greedy" and cfg.torch_threads == cfg.num_cpus_per_replica
