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


def test_paper_scale_uses_the_papers_audio_features():
    assert load_config(scale="paper").features == "wav2vec2"
    assert load_config(scale="small").features == "mfcc" and load_config(scale="smoke").features == "mfcc"


def test_shared_training_conditions_and_the_official_preset():
    from aebench.config import official_preset

    shared = [load_config([f"method={m}"], scale="paper").train for m in ("aenerf", "dfrf", "adnerf")]
    assert shared[0] == shared[1] == shared[2]  # one set of conditions for every method
    assert (shared[0].batch_rays, shared[0].face_fraction, shared[0].lr_decay_steps) == (850, 0.95, 750000)  # DFRF's
    ad = load_config(["method=adnerf", "train.preset=official"], scale="paper").train
    assert (ad.batch_rays, ad.lr_decay_steps, ad.smooth_from_share, ad.smooth_at_render) == (2048, 250000, 0.5, False)
    assert load_config(["method=dfrf", "train.preset=official"]).dfrf.token == "official"  # its own switches too
    assert load_config(["method=dfrf", "train.preset=official"]).train.batch_rays == official_preset("dfrf")["train"]["batch_rays"]
    # an explicit override still wins over the preset; a method without training has none
    assert load_config(["method=adnerf", "train.preset=official", "train.batch_rays=64"]).train.batch_rays == 64
    assert load_config(["method=external", "train.preset=official"]).train.batch_rays == load_config().train.batch_rays
    with pytest.raises(ConfigError, match="'train.preset' must be one of shared, official, got mine"):
        load_config(["train.preset=mine"])


def test_method_sections_are_validated_against_their_settings_classes():
    from aebench.settings import SettingsError, TrainSettings
    from aebench.aenerf.model import AENeRFSettings
    from aebench.baselines.adnerf import ADNeRFSettings
    from aebench.baselines.dfrf import DFRFSettings

    for scale in ("smoke", "small", "paper"):
        cfg = load_config(scale=scale)
        TrainSettings.from_tree(cfg, "train")
        s = AENeRFSettings.from_tree(cfg, "aenerf")
        DFRFSettings.from_tree(cfg, "dfrf")
        ADNeRFSettings.from_tree(cfg, "adnerf")
        assert AENeRFSettings.from_dict(s.to_dict()) == s  # what checkpoints store rebuilds the same settings
    bad = dict(AENeRFSettings.from_tree(load_config(), "aenerf").to_dict())
    bad["heads"] = "four"
    with pytest.raises(SettingsError, match="'heads' takes a number, got 'four'"):
        AENeRFSettings.from_dict(bad)
    del bad["heads"]
    bad["extra"] = 1
    with pytest.raises(SettingsError, match="unknown extra; missing heads"):
        AENeRFSettings.from_dict(bad)
    assert "lambda_m" not in s.arch() and "aaa" in s.arch()  # loss weights may differ from a base model


def test_reference_counts_are_checked_per_method():
    from aebench.aenerf.method import AENeRF
    from aebench.baselines.adnerf import ADNeRF
    from aebench.baselines.dfrf import DFRF

    with pytest.raises(ValueError, match="aenerf.n_refs must be at least 1"):
        AENeRF().settings(load_config(["aenerf.n_refs=0"]))
    with pytest.raises(ValueError, match="dfrf.n_refs must be at least 1"):
        DFRF().settings(load_config(["dfrf.n_refs=0"]))
    with pytest.raises(ValueError, match="adnerf uses no reference frames"):
        ADNeRF().settings(load_config(["adnerf.n_refs=2"]))


def test_the_official_preset_replaces_the_protocols_shared_values():
    protocol = {"train.batch_rays": 128, "train.iters": 60}
    cfg = load_config(["method=adnerf", "train.preset=official"], extra=protocol)
    assert cfg.train.batch_rays == 2048 and cfg.train.iters == 60  # iterations stay the protocol's grid
    assert load_config(["method=adnerf"], extra=protocol).train.batch_rays == 128


def test_protocol_settings_and_cell_facts_are_kept_as_written():
    """A row label starting with a quote, a data root with ' #' or ': ' in it: the values reach
    the config whole (they used to be re-parsed as YAML: a traceback, or a path cut at '#')."""
    from aebench.config import load_config

    cfg = load_config(
        [], extra={"run.row": '"quoted label', "data.root": "/data/my #1: clips", "train.iters": 3, "run.base_identities": ["a", "b"]}
    )
    assert cfg.run.row == '"quoted label' and cfg.data.root == "/data/my #1: clips"
    assert cfg.train.iters == 3 and list(cfg.run.base_identities) == ["a", "b"]


def test_ernerf_official_preset_is_its_optimiser_and_schedule():
    er = load_config(["method=ernerf", "train.preset=official"], scale="paper")
    assert list(er.train.adam_betas) == [0.0, 0.99] and er.train.batch_rays == 4096 * 16 and er.train.face_fraction == 0.0
    assert er.train.lr * er.ernerf.grid_lr_mult == pytest.approx(1e-2)  # lr 1e-2 (grids), lr_net 1e-3
    assert er.train.lr_decay_rate == 0.5 and er.train.smooth_from_share == 0.0
    assert list(load_config(["method=ernerf"]).train.adam_betas) == [0.9, 0.999]  # shared conditions otherwise
