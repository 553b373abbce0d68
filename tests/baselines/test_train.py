"""Smoke-scale training of DFRF and AD-NeRF on a toy scene: PSNR rises clearly, a checkpoint
reloads into the same renders, AudioAttNet starts late with 5x lr, DFRF's offsets are clamped
and penalised with the phase's weight, and its warp is re-initialised for fine-tuning."""

import math

import pytest
import torch

from aebench.config import load_config
from aebench.engine.checkpoint import read_state
from aebench.engine.rays import image_rays
from aebench.engine.trainer import Trainer, seed_everything
from aebench.baselines.adnerf import ADNeRF
from aebench.baselines.dfrf import DFRF
from tests.aenerf.helpers import build_model
from tests.baselines.scene import toy_views

torch.set_num_threads(1)  # 2 threads on a loaded 2-core machine spin-wait 100x slower
ITERS = 150


def _cfg(*extra):
    return load_config(["device=cpu", "data.size=16", "train.batch_rays=128", f"train.iters={ITERS}", "train.lr=1e-3", *extra])


def _train(method, views, cfg, root, iters, base=None, phase="finetune"):
    """The skeleton's training on in-memory views (no identity on disk)."""
    seed_everything(0)
    model = build_model(method, cfg, views.audio.shape[-1])
    offset = 0
    if base is not None:
        state = read_state(base)
        offset = state["step"] + state["meta"]["step_offset"]
    model.phase, model.step_offset = phase, offset
    settings = method.settings(cfg)
    meta = {
        "method": method.name,
        "phase": phase,
        "settings": settings.to_dict(),
        "features": "mfcc",
        "audio_channels": views.audio.shape[-1],
        "audio_norm": views.norm.to_dict(),
        "step_offset": offset,
        "refs": [1, 2, 3, 4] if settings.n_refs else [],
    }
    trainer = Trainer(
        model,
        method.train_settings(cfg),
        root,
        method.batch_fn([views], method.train_settings(cfg), settings.n_refs),
        torch.device("cpu"),
        0,
        meta,
        init_from=base,
        reinit=lambda m: m.reinit_for_finetune(),
        step_offset=offset,
    )
    return trainer.fit(iters)


@torch.no_grad()
def _frame_psnr(model, views, frame=0):
    rays = views.frames.shape[1] * views.frames.shape[2]
    o, d = image_rays(*views.hw, views.intrinsics, views.poses[frame])
    code = model.audio(views.audio, torch.tensor([frame]), False)[0]
    idx = torch.tensor([1, 2, 3, 4])
    refs = model.references(views.frames[idx].float() / 255.0, views.poses[idx], views.intrinsics, None)
    rgb = model.render_fn(code, refs, views.near, views.far)(o, d, views.background.reshape(-1, 3))
    mse = torch.mean((rgb - views.frames[frame].reshape(rays, 3).float() / 255.0) ** 2)
    return -10 * math.log10(float(mse))


@pytest.mark.parametrize("method_cls", [ADNeRF, DFRF])
def test_smoke_training_raises_psnr_and_checkpoint_round_trips(method_cls, tmp_path):
    views = toy_views()
    cfg = _cfg()
    method = method_cls()
    seed_everything(0)
    before = _frame_psnr(build_model(method, cfg, views.audio.shape[-1]).eval(), views)
    ckpt = _train(method, views, cfg, tmp_path / "ckpt", ITERS)
    model, state = method.load(ckpt, cfg, "cpu")
    after = _frame_psnr(model, views)
    assert state["step"] == ITERS and state["meta"]["method"] == method.name
    assert after > before + 6.0, (before, after)

    again, _ = method.load(ckpt, cfg, "cpu")  # round trip: same weights, same image
    assert _frame_psnr(again, views) == pytest.approx(after, abs=1e-6)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_audioattnet_starts_late_and_gets_5x_lr(tmp_path):
    views = toy_views()
    cfg = load_config(["device=cpu", "data.size=16", "train.batch_rays=32", "train.smooth_from=3", "train.n_coarse=8", "train.n_fine=0"])
    method = ADNeRF()
    seed_everything(0)
    model = build_model(method, cfg, views.audio.shape[-1])
    att0 = [p.detach().clone() for p in model.audio.att_net.parameters()]
    assert not model.smoothing(2) and model.smoothing(3)
    groups = model.param_groups()
    assert groups[-1]["lr_mult"] == 5.0 and len(groups[-1]["params"]) == len(att0)
    ckpt = _train(method, views, cfg, tmp_path / "c3", 3)
    loaded, _ = method.load(ckpt, cfg, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(att0, loaded.audio.att_net.parameters()))  # unused before smooth_from
    ckpt = _train(method, views, cfg, tmp_path / "c6", 6)
    loaded, _ = method.load(ckpt, cfg, "cpu")
    assert not all(torch.equal(a, b) for a, b in zip(att0, loaded.audio.att_net.parameters()))


def test_dfrf_offsets_are_clamped_and_penalised_with_the_phase_weight():
    views = toy_views()
    cfg = _cfg()
    method = DFRF()
    model = build_model(method, cfg, views.audio.shape[-1])
    clamp = 10.0 * 16 / 512
    with torch.no_grad():
        model.warp.mlp[-1].bias.fill_(100.0)
    idx = torch.tensor([0, 1, 2, 3])
    refs = model.references(views.frames[idx].float() / 255.0, views.poses[idx], views.intrinsics, None)
    agg, offset = model.aggregate(torch.zeros(5, 3), torch.zeros(cfg.dfrf.audio_dim), refs)
    assert agg.shape == (5, 2 * cfg.dfrf.slot_dim) and offset.shape == (4, 5, 2)
    assert torch.allclose(offset, torch.full_like(offset, clamp))
    out = {"fine": {"aux_offset": offset}}
    model.phase = "finetune"
    assert float(model.extra_loss(out, None)[0].detach()) == pytest.approx(5e-8 * clamp**2, rel=1e-5)
    model.phase = "pretrain"
    assert float(model.extra_loss(out, None)[0].detach()) == pytest.approx(5e-9 * clamp**2, rel=1e-5)


def test_dfrf_finetune_reinitialises_the_warp_and_continues_the_lr_schedule(tmp_path):
    views = toy_views()
    cfg = _cfg("train.batch_rays=32", "train.n_coarse=4", "train.n_fine=0", "train.lr_decay_steps=10")
    method = DFRF()
    base = _train(method, views, cfg, tmp_path / "base", 5, phase="pretrain")
    trained = torch.load(base / "model.pt", weights_only=True)
    for k in trained:  # mark the base model's warp so a reload would show
        if k.startswith("warp."):
            trained[k].fill_(0.5)
    torch.save(trained, base / "model.pt")
    seen = {}
    orig = DFRF.model_cls.reinit_for_finetune

    def spy(model):
        orig(model)
        seen["warp"] = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("warp.")}
        seen["other"] = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("coarse.")}

    DFRF.model_cls.reinit_for_finetune = spy
    try:
        _train(method, views, cfg, tmp_path / "ft", 1, base=base)
    finally:
        DFRF.model_cls.reinit_for_finetune = orig
    assert all(seen["warp"][k].abs().max() < 0.01 for k in seen["warp"] if k.endswith("weight"))  # N(0, 1e-3)
    assert all(seen["warp"][k].abs().max() == 0 for k in seen["warp"] if k.endswith("bias"))
    assert all(torch.equal(seen["other"][k], trained[k]) for k in seen["other"])  # the rest comes from the base
    # the lr continues from the base model's 5 steps: 1e-3 * 0.1 ** (5 / 10) at the fine-tune's first step
    import re

    log = (tmp_path / "ft" / "log.txt").read_text()
    assert float(re.search(r"^step 1 .*lr=([\d.e-]+)", log, re.M).group(1)) == pytest.approx(1e-3 * 0.1**0.5, rel=1e-4)
