"""DFRF and AD-NeRF through the Method API on the synthetic corpus: base model (DFRF),
fine-tune on a clip, render a driving audio into an mp4 with one frame per 1/fps."""

import numpy as np
import pytest
import torch

from aebench.config import load_config
from aebench.data import Identity
from aebench.data.identity import list_identities
from aebench.media import probe
from aebench.registry import get_method
from aebench.engine.checkpoint import read_state

torch.set_num_threads(1)  # 2 threads on a loaded 2-core machine spin-wait


def _cfg(root, **extra):
    over = [
        f"data.root={root}",
        "data.size=32",
        "data.clip_seconds=1.0",
        "device=cpu",
        "train.iters=6",
        "train.pretrain_iters=5",
        "train.batch_rays=64",
        "train.n_coarse=8",
        "train.n_fine=8",
        "train.render_frames=0",
    ]
    return load_config(over + [f"{k}={v}" for k, v in extra.items()])


def _identities(root, cfg):
    return [Identity.open(p).at_size(int(cfg.data.size)) for p in list_identities(root)]


def test_dfrf_base_then_finetune_then_render(synth_root, tmp_path):
    cfg = _cfg(synth_root, **{"train.smooth_from": 8})
    ids = _identities(synth_root, cfg)
    method = get_method("dfrf")
    assert method.has_base_model
    base = method.pretrain(ids[1:], cfg, tmp_path / "base")
    assert read_state(base)["meta"]["identities"] == [ids[1].name]
    clip = ids[0].clip(1.0)
    ckpt = method.finetune(ids[0], clip, base, cfg, tmp_path / "ft")
    meta = read_state(ckpt)["meta"]
    assert meta["step_offset"] == 5 and meta["phase"] == "finetune"  # the global step continues from the base model
    assert set(meta["refs"]) <= set(clip.indices.tolist()) and len(meta["refs"]) == 4
    audio = ids[0].split("test").audio[: 3 * 640 + 10]
    out = method.render(ckpt, ids[0], audio, cfg, tmp_path / "dfrf.mp4")
    info = probe(out)
    assert info.n_frames == 3 and info.has_audio and (info.width, info.height) == (32, 32)
    # smoothing is on at render time: 5 base + 6 fine-tune steps >= smooth_from 8
    model, state = method.load(ckpt, cfg, "cpu")
    assert model.smoothing(int(state["step"]))


def test_adnerf_has_no_base_and_renders(synth_root, tmp_path):
    cfg = _cfg(synth_root)
    ids = _identities(synth_root, cfg)
    method = get_method("adnerf")
    assert method.pretrain(ids, cfg, tmp_path / "base") is None
    with pytest.raises(ValueError, match="from scratch"):
        method.finetune(ids[0], ids[0].clip(1.0), tmp_path, cfg, tmp_path / "x")
    ckpt = method.finetune(ids[0], ids[0].clip(1.0), None, cfg, tmp_path / "ft")
    out = method.render(ckpt, ids[0], np.zeros(2 * 640, np.float32), cfg, tmp_path / "ad.mp4")
    assert probe(out).n_frames == 2
    with pytest.raises(ValueError, match="'adnerf' checkpoint, not 'dfrf'"):
        get_method("dfrf").render(ckpt, ids[0], np.zeros(640, np.float32), cfg, tmp_path / "bad.mp4")


def test_dfrf_feeds_the_flattened_slots_straight_into_its_nerf():
    """As the official code (helpers 567-569, 720): no layer between the slots and the NeRF."""
    from aebench.engine.slot_attention import SlotAggregation

    agg = SlotAggregation(10, dim=16, out_dim=None, n_slots=2, iters=2)
    assert isinstance(agg.out, torch.nn.Identity) and agg.out_dim == 32
    assert agg(torch.randn(5, 4, 10)).shape == (5, 32)


def test_adnerf_smooths_over_the_second_half_of_its_training():
    """AD-NeRF trains from scratch: AudioAttNet starts at train.smooth_from_share of its iterations
    (official 200k of 400k), so it also runs at scale=paper (40k iterations, smooth_from 100k)."""
    from aebench.config import load_config
    from aebench.registry import method_class
    from aebench.settings import TrainSettings

    train = TrainSettings.from_tree(load_config(scale="paper"), "train")
    assert method_class("adnerf")().smooth_start(train, int(train.iters)) == 20000 < int(train.smooth_from)
    assert method_class("dfrf")().smooth_start(train, int(train.iters)) is None  # global steps from the base model's start


@pytest.mark.parametrize("encoding", ["hashgrid", "triplane"])
@pytest.mark.parametrize("name", ["aenerf", "dfrf", "adnerf"])
def test_fast_variants_train_the_grid_and_render(synth_root, tmp_path, name, encoding):
    """field.encoding switches every method's field to a grid encoding (the same for all): the
    tables learn (at their own lr multiple), the box covers the training cameras and travels
    with the checkpoint, and the render works from it."""
    cfg = _cfg(synth_root, **{"field.encoding": encoding})
    assert get_method(name).settings(cfg).field.encoding == encoding
    ids = _identities(synth_root, cfg)
    method = get_method(name)
    base = method.pretrain(ids[1:], cfg, tmp_path / "base")
    ckpt = method.finetune(ids[0], ids[0].clip(1.0), base, cfg, tmp_path / "ft")
    model, _ = method.load(ckpt, cfg, "cpu")
    grids = [m for m in model.pos.modules() if hasattr(m, "table")]
    assert grids and all(g.table.abs().max() > 1e-4 for g in grids)  # moved beyond the initial range
    box = grids[0].box
    assert torch.all(box[1] > box[0]) and not torch.equal(box.abs(), torch.ones_like(box))  # set from the cameras
    assert any(g.get("name") == "grid" and g["lr_mult"] == cfg.field.lr_mult for g in model.param_groups())
    out = method.render(ckpt, ids[0], np.zeros(2 * 640, np.float32), cfg, tmp_path / "r.mp4")
    assert probe(out).n_frames == 2
