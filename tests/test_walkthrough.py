"""The "adding a method" walk-through (docs/extending.md): a new NeRF method is its module
(docs/examples/tiny_nerf.py) and one registry line, nothing else. This test registers it the way
a session does, and then its section is in the config (typed, validated, explained) and it trains
and renders through the Method API."""

from pathlib import Path

import numpy as np
import pytest
import torch

from aebench.config import ConfigError, explain, load_config
from aebench.data import Identity
from aebench.data.identity import list_identities
from aebench.media import probe

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "tiny_nerf.py"


@pytest.fixture
def tiny(monkeypatch):
    import aebench.registry as registry

    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    monkeypatch.setattr(registry, "REGISTERED", {})
    registry.register("tiny", "tiny_nerf:Tiny")  # the one registry line
    return registry.get_method("tiny")


def test_the_walkthrough_shows_the_example_module_and_its_registry_line():
    page = (ROOT / "docs" / "extending.md").read_text()
    assert EXAMPLE.read_text() in page  # the page shows the module verbatim
    assert 'tiny = "tiny_nerf:Tiny"' in page and 'register("tiny", "tiny_nerf:Tiny")' in page


def test_a_new_method_is_its_module_and_one_registry_line(tiny, synth_root, tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(
        [
            f"data.root={synth_root}",
            "data.size=32",
            "data.clip_seconds=1.0",
            "device=cpu",
            "method=tiny",
            "train.iters=4",
            "train.batch_rays=64",
            "train.n_coarse=8",
            "train.n_fine=8",
            "tiny.share_levels=false",
        ]
    )
    assert cfg.tiny.width == 32 and cfg.tiny.share_levels is False and "field" not in cfg.tiny  # field.* is shared
    with pytest.raises(ConfigError, match="'tiny.width' must be at least 1, got 0"):
        load_config(["tiny.width=0"])
    with pytest.raises(ConfigError, match="unknown config key 'tiny.widht'"):
        load_config(["tiny.widht=3"])
    info = explain("tiny.share_levels")
    assert info["declared"] == "tiny_nerf.TinySettings.share_levels" and "One MLP" in info["doc"]
    assert explain("tiny.width")["doc"].startswith("NeRF MLP width")  # inherited fields keep their docstrings

    identity = Identity.open(list_identities(synth_root)[0]).at_size(32)
    ckpt = tiny.finetune(identity, identity.clip(1.0), None, cfg, tmp_path / "ft")
    model, _ = tiny.load(ckpt, cfg, "cpu")
    assert model.fine is not model.coarse  # the switch reached the network
    out = tiny.render(ckpt, identity, np.zeros(2 * 640, np.float32), cfg, tmp_path / "tiny.mp4")
    assert probe(out).n_frames == 2
