"""AE-NeRF end to end on the synthetic corpus (fixture ``synth_root``: 2 identities, 4 s, 32 px)."""

import re

import numpy as np
import pytest
import torch

from aebench.data import Identity
from aebench.data.identity import list_identities
from aebench.media import probe
from aebench.engine.checkpoint import read_state
from aebench.aenerf.method import AENeRF
from tests.aenerf.helpers import build_model, fake_batch, fake_views, smoke_cfg
from tests.aenerf.test_modules import VARIANTS

torch.set_num_threads(1)  # 2 threads on the shared 2-core machine spin-wait badly under load
TINY = ["data.size=32", "train.batch_rays=64", "train.n_coarse=8", "train.n_fine=8", "train.log_every=1", "train.chunk=1024"]


def identities(root, size=32):
    return [Identity.open(p).at_size(size) for p in list_identities(root)]


def logged_psnr(run_dir):
    text = (run_dir / "checkpoint" / "log.txt").read_text()
    return [float(x) for x in re.findall(r"psnr=([-\d.]+)", text)]


def test_smoke_finetune_raises_training_psnr(synth_root, tmp_path):
    cfg = smoke_cfg(*TINY, "train.iters=80", "train.ckpt_every=40", "train.lr=2e-3")
    ident = identities(synth_root)[0]
    ckpt = AENeRF().finetune(ident, ident.clip(2.0), None, cfg, tmp_path)
    assert read_state(ckpt)["step"] == 80
    psnr = logged_psnr(tmp_path)
    assert len(psnr) == 80
    first, last = np.mean(psnr[:10]), np.mean(psnr[-10:])
    assert last > first + 3.0, f"training PSNR {first:.2f} -> {last:.2f} dB"
    # finished: returns at once, no more training logged
    assert AENeRF().finetune(ident, ident.clip(2.0), None, cfg, tmp_path) == ckpt
    assert len(logged_psnr(tmp_path)) == 80


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_pretrain_finetune_and_render_with_audio(synth_root, tmp_path, variant):
    cfg = smoke_cfg(*TINY, *VARIANTS[variant], "train.iters=2", "train.pretrain_iters=2")
    idents = identities(synth_root)
    method = AENeRF()
    base = method.pretrain(idents[1:], cfg, tmp_path / "base")
    target = idents[0]
    ckpt = method.finetune(target, target.clip(1.0), base, cfg, tmp_path / "ft")
    meta = read_state(ckpt)["meta"]
    assert meta["settings"]["aaa"] == cfg.aenerf.aaa and len(meta["refs"]) == cfg.aenerf.n_refs
    assert max(meta["refs"]) < 25  # references come from the 1 s clip only
    test = target.split("test")
    audio = test.audio[: int(3 * target.audio_rate / target.fps)]
    out = method.render(ckpt, target, audio, cfg, tmp_path / "out.mp4")
    info = probe(out)
    assert info.n_frames == 3 and info.has_audio and (info.width, info.height) == (32, 32)


def test_checkpoint_round_trip_gives_identical_renders(synth_root, tmp_path):
    cfg = smoke_cfg(*TINY, "train.iters=2")
    ident = identities(synth_root)[0]
    method = AENeRF()
    ckpt = method.finetune(ident, ident.clip(1.0), None, cfg, tmp_path)
    meta = read_state(ckpt)["meta"]
    a, _ = method.load(ckpt, cfg, torch.device("cpu"))
    b, _ = method.load(ckpt, cfg, torch.device("cpu"))
    views = fake_views(channels=meta["audio_channels"], window=ident.features(cfg.features).shape[1])
    batch = fake_batch(method, cfg, views)
    outs = []
    for m in (a, b):
        idx = batch["refs"]
        with torch.no_grad():
            code = m.audio(views.audio, torch.tensor([0]), False)[0]
            refs = m.references(views.frames[idx].float() / 255.0, views.poses[idx], views.intrinsics, m.audio(views.audio, idx, False))
            outs.append(m.render_fn(code, refs, 2.0, 6.0)(batch["rays_o"], batch["rays_d"], batch["bg"]))
    assert torch.equal(outs[0], outs[1])
    fresh = build_model(method, cfg, meta["audio_channels"])
    assert any(not torch.equal(p, q) for p, q in zip(fresh.state_dict().values(), a.state_dict().values()))


def test_finetune_refuses_a_base_model_of_another_variant(synth_root, tmp_path):
    idents = identities(synth_root)
    base = AENeRF().pretrain(idents[1:], smoke_cfg(*TINY, "train.pretrain_iters=1"), tmp_path / "base")
    with pytest.raises(ValueError, match="aenerf.aaa: True vs False"):
        AENeRF().finetune(idents[0], idents[0].clip(1.0), base, smoke_cfg(*TINY, "aenerf.aaa=false"), tmp_path / "ft")


def test_self_driven_render_features_equal_the_cached_features(synth_root, tmp_path):
    """Target, reference and driving windows share the training clip's normalisation: the
    windows a self-driven render computes from the test half's audio equal the identity's cached
    windows of the same frames (away from the clip's ends, where the cache sees audio beyond it)."""
    from aebench.data.features import AudioNorm

    cfg = smoke_cfg(*TINY, "train.iters=1")
    ident = identities(synth_root)[0]
    clip = ident.clip(2.0)
    ckpt = AENeRF().finetune(ident, clip, None, cfg, tmp_path)
    meta = read_state(ckpt)["meta"]
    norm = AudioNorm.from_dict(meta["audio_norm"])
    np.testing.assert_allclose(norm.mean, AudioNorm.of(clip.features("mfcc")).mean, rtol=1e-5)
    test = ident.split("test")
    n = test.n_frames
    driving = AENeRF.driving_windows(meta, test.audio, n, ident.fps)
    cached = norm(test.features("mfcc"))
    inner = slice(6, n - 6)  # windows reach 8 steps (4 frames) back, MFCC deltas 2 steps more, frame 0 half a window
    np.testing.assert_allclose(driving[inner], cached[inner], atol=1e-3)
    # the old recipe (z-scoring the driving clip on its own) is measurably off
    own = AudioNorm.of(
        AENeRF.driving_windows(
            {**meta, "audio_norm": {"mean": [0.0] * norm.mean.size, "std": [1.0] * norm.mean.size}}, test.audio, n, ident.fps
        )
    )
    assert np.abs(own(driving * norm.std + norm.mean)[inner] - cached[inner]).max() > 1e-2
