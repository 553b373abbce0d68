import pytest

from aebench.config import ConfigError, config_hash, load_config, parse_overrides, to_yaml


def test_defaults_and_scale_overlay():
    assert load_config().data.size == 64
    assert load_config(["scale=paper"]).data.size == 512
    assert load_config(scale="small").data.size == 128


def test_override_types_and_lists():
    cfg = load_config(["seed=3", "data.clip_seconds=15", "features=wav2vec2"])
    assert cfg.seed == 3 and cfg.data.clip_seconds == 15.0 and isinstance(cfg.data.clip_seconds, float)
    assert parse_overrides(["a.b=[x,y]", "c=1e-3"]) == {"a": {"b": ["x", "y"]}, "c": 1e-3}


def test_unknown_key_names_valid_keys():
    with pytest.raises(ConfigError, match="valid keys under 'data': clip_seconds, root, size"):
        load_config(["data.sizee=3"])
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        load_config(["nope=1"])
    with pytest.raises(ConfigError, match="unknown scale"):
        load_config(["scale=huge"])


def test_bad_values():
    with pytest.raises(ConfigError, match="takes a number"):
        load_config(["seed=abc"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(["seed"])
    with pytest.raises(ConfigError, match="group of settings"):
        load_config(["data=3"])


def test_open_mapping_and_hash():
    cfg = load_config(["weights.syncnet=/tmp/x.model"])
    assert cfg.weights.syncnet == "/tmp/x.model"
    assert config_hash(load_config(["seed=1"])) == config_hash(load_config(["seed=1"]))
    assert config_hash(load_config(["seed=1"])) != config_hash(load_config(["seed=2"]))
    assert "seed: 1" in to_yaml(load_config(["seed=1"]))
