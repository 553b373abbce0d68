"""ER-NeRF through the Method API on the synthetic corpus: from scratch, the head stage then the
lip stage (LPIPS from random AlexNet weights of the official architecture: the official weights
are not on test machines) or, without the LPIPS weights, the head stage alone with a message;
its eye feature and lip square; rendering an mp4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aebench.baselines import ernerf
from aebench.engine.checkpoint import read_state
from aebench.media import probe
from aebench.registry import get_method

from .test_method_api import _cfg, _identities

torch.set_num_threads(1)


@pytest.fixture
def random_lpips(monkeypatch):
    """The lip stage's LPIPS network with random AlexNet features (the official file's layout)."""
    import torchvision

    from aebench.lpips_net import build_lpips

    torch.manual_seed(0)
    net = build_lpips(torchvision.models.alexnet(weights=None).state_dict()).requires_grad_(False)
    calls = []

    def counted(pred, gt):
        calls.append(pred.shape)
        return net(pred, gt)

    monkeypatch.setattr(ernerf, "lips_network", lambda: counted)
    return calls


def test_head_then_lip_stage_then_render(synth_root, tmp_path, random_lpips):
    cfg = _cfg(synth_root, **{"ernerf.lips_share": 0.5, "ernerf.lips_patch": 8})
    ids = _identities(synth_root, cfg)
    method = get_method("ernerf")
    assert not method.has_base_model and method.pretrain(ids, cfg, tmp_path / "base") is None
    ckpt = method.finetune(ids[0], ids[0].clip(1.0), None, cfg, tmp_path / "ft")
    head = read_state(tmp_path / "ft" / "head" / "checkpoint" / "final")
    meta = read_state(ckpt)
    assert head["meta"]["phase"] == "finetune" and head["step"] == 3  # 6 iterations: 3 head, 3 lips
    assert meta["meta"]["phase"] == "lips" and meta["step"] == 3 and meta["meta"]["step_offset"] == 3
    assert len(random_lpips) == 3 * 2 and all(s[-2:] == (32, 32) for s in random_lpips)  # each lip step and level, padded to 32
    out = method.render(ckpt, ids[0], np.zeros(2 * 640, np.float32), cfg, tmp_path / "er.mp4")
    info = probe(out)
    assert info.n_frames == 2 and (info.width, info.height) == (32, 32)


def test_without_lpips_weights_the_lip_stage_is_refused_and_lips_share_0_trains_the_head(synth_root, tmp_path, monkeypatch):
    monkeypatch.setattr(ernerf, "lips_network", lambda: None)
    cfg = _cfg(synth_root)
    ids = _identities(synth_root, cfg)
    with pytest.raises(ValueError, match=r"lip fine-tune stage \(1 of 6 iterations.*aebench weights add lpips_alexnet.*lips_share=0"):
        get_method("ernerf").finetune(ids[0], ids[0].clip(1.0), None, cfg, tmp_path / "ft")
    assert not (tmp_path / "ft").exists()  # refused before any work
    ckpt = get_method("ernerf").finetune(ids[0], ids[0].clip(1.0), None, _cfg(synth_root, **{"ernerf.lips_share": 0}), tmp_path / "ft")
    state = read_state(ckpt)
    assert state["meta"]["phase"] == "finetune" and state["step"] == 6


def test_lip_batches_alternate_square_and_patches(synth_root, random_lpips):
    from aebench.engine.views import Views

    cfg = _cfg(synth_root, **{"ernerf.lips_patch": 8})
    ident = _identities(synth_root, cfg)[0].clip(1.0)
    views = Views.from_identity(ident, "mfcc")
    method = get_method("ernerf")
    method.lips_patch = 8
    fn = method.batch_fn([views], method.train_settings(cfg), 0, "lips")
    g = torch.Generator().manual_seed(0)
    lips, patches = fn(0, g), fn(1, g)
    x0, x1, y0, y1 = ernerf.lips_square(views.landmarks[lips["frame_index"]].float(), 32, 32)
    assert lips["lips"] and lips["patches"] == (1, y1 - y0, x1 - x0) and lips["rgb"].shape[0] == (y1 - y0) * (x1 - x0)
    assert not patches["lips"] and patches["patches"] == (64 // 64, 8, 8)  # batch_rays 64 // 8^2 patches
    assert 0 < x1 - x0 == y1 - y0 < 32  # a square inside the image


def test_eye_feature_reads_blinks_from_the_landmarks():
    """0 for the open eye the clip's median has, larger as the lids close."""
    eye = torch.tensor([[0.0, 0.0], [1.0, -0.3], [2.0, -0.3], [3.0, 0.0], [2.0, 0.3], [1.0, 0.3]])
    marks = torch.zeros(3, 68, 2)
    for i, squeeze in enumerate((1.0, 0.5, 0.1)):
        e = eye * torch.tensor([1.0, squeeze])
        marks[i, 36:42], marks[i, 42:48] = e, e + torch.tensor([5.0, 0.0])
    ear = ernerf.eye_aspect_ratio(marks)
    assert ear[0] == pytest.approx(0.2) and ear[2] == pytest.approx(0.02)
    model = ernerf.ERNeRFModel(ernerf.ERNeRFSettings(triplane=[2, 1, 8, 4, 8], ind_num=4), 13, _cfg(".").train)
    model.ear_open.fill_(float(ear[0]))
    assert [round(float(model.eye_feature(m)), 3) for m in marks] == [0.0, 0.5, 0.9]
