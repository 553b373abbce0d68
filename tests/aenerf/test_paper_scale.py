"""Paper scale runs end to end on a CPU (issue 31): every NeRF method at ``scale=paper`` (the
paper's 850 rays, 64 + 128 samples, widths and references) fine-tunes 2 iterations from scratch,
checkpoints with the paper's network, and renders a frame, on a 16 px synthetic identity (the
frame size changes the references' images, not a network's shape). Slow (about a minute per
method on a 2-core CPU): `pytest -m slow tests/aenerf/test_paper_scale.py`. The FLOP counts and
the GPU projection of the same configuration come from tools/paper_scale.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from aebench.config import load_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    from aebench.data import Identity
    from aebench.data.synth import make_corpus

    root = tmp_path_factory.mktemp("paper16")
    make_corpus(root, identities=1, seconds=2.0, size=16, seed=0)
    return Identity.open(next(p for p in sorted(root.iterdir()) if (p / "meta.json").exists())).at_size(16)


@pytest.mark.parametrize("method_name", ["aenerf", "dfrf", "adnerf"])
def test_paper_shapes_train_checkpoint_and_render_on_a_cpu(method_name, identity, tmp_path):
    from omegaconf import OmegaConf

    from aebench.engine.checkpoint import read_state
    from aebench.registry import get_method
    from aebench.media import probe

    cfg = load_config([f"method={method_name}", "scale=paper", "features=mfcc", "data.size=16", "device=cpu"])
    assert (int(cfg.train.batch_rays), int(cfg.train.n_coarse), int(cfg.train.n_fine)) == (850, 64, 128)
    cfg = OmegaConf.merge(
        cfg,
        {"train": {"iters": 2, "ckpt_every": 10**6, "log_every": 1, "render_frames": 1, "render_sampler": "hierarchical", "chunk": 4096}},
    )
    method = get_method(method_name)
    ckpt = method.finetune(identity, identity.fewshot_clip(0.0), None, cfg, tmp_path / "ft")
    state = read_state(Path(ckpt))
    assert state["step"] == 2
    settings = state["meta"]["settings"]
    assert settings["width"] == 256 and settings["depth"] == 8  # the paper's NeRF MLP
    if method_name != "adnerf":
        assert settings["n_refs"] >= 3  # references (DFRF's 3+, AE-NeRF's L = 4)
    video = method.render(Path(ckpt), identity, identity.split("test").audio, cfg, tmp_path / "one.mp4")
    info = probe(video)
    assert info.n_frames == 1 and (info.width, info.height) == (16, 16)
