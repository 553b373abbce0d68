"""aebench's ``ernerf`` against fixtures the official ER-NeRF code produced (``tools/golden_ernerf.py``,
``Fictionarry/ER-NeRF`` at the commit each fixture records): the tri-plane and SH encoders, the
audio encoder and network forward, and one training step's outputs, loss and gradients, every
parameter set from ``golden_weights.py``'s rule on both sides, in float64."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aebench.baselines.ernerf import ERNeRFModel, ERNeRFSettings
from aebench.engine.sh import sh_encode
from aebench.engine.volume import _pass
from aebench.settings import TrainSettings

from .golden_weights import summary, weight

GOLDEN = Path(__file__).parent / "golden"
#: official state-dict prefixes -> aebench's (the rest have the same names)
RENAME = {
    "encoder_xy.embeddings": "pos.planes.0.table",
    "encoder_yz.embeddings": "pos.planes.1.table",
    "encoder_xz.embeddings": "pos.planes.2.table",
    "audio_net.encoder_fc1.": "audio.audio_net.encoder_fc.",
    "audio_net.encoder_conv.": "audio.audio_net.encoder_conv.",
    "audio_att_net.attentionConvNet.": "audio.att_net.attention_conv.",
    "audio_att_net.attentionNet.0.": "audio.att_net.attention_fc.",
}


def ours(official: str) -> str:
    for old, new in RENAME.items():
        if official.startswith(old):
            return new + official[len(old) :]
    return official


def theirs(name: str) -> str:
    for old, new in RENAME.items():
        if name.startswith(new):
            return old + name[len(new) :]
    return name


def fixture(name: str) -> dict:
    return dict(np.load(GOLDEN / f"ernerf_{name}.npz"))


def t(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


@pytest.fixture
def model():
    """ER-NeRF at the official sizes on DeepSpeech-shaped audio (16 x 29), grids over [-1, 1]^3
    (the official bound 1), weights from the shared rule, float64, training mode."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        m = ERNeRFModel(ERNeRFSettings(), 29, TrainSettings(iters=8))
        m.set_scene_box(torch.tensor([[-1.0] * 3, [1.0] * 3]))
        seed = int(fixture("network")["seed"])
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(torch.from_numpy(weight(theirs(name), tuple(p.shape), seed)))
        m.train()
        yield m
    finally:
        torch.set_default_dtype(default)


def test_fixtures_come_from_the_official_commit():
    for name in ("encoders", "network", "step", "step16"):
        assert str(fixture(name)["official_commit"]).startswith("0cf72d8")


def test_triplane_is_the_official_encode_x(model):
    f = fixture("encoders")
    assert ((np.abs(f["x"]) > 1).any(-1)).sum() > 5  # some points outside the box: they encode to 0
    np.testing.assert_allclose(model.pos(t(f["x"])).detach().numpy(), f["enc_x"], rtol=0, atol=1e-10)


def test_view_directions_are_the_official_spherical_harmonics():
    f = fixture("encoders")
    np.testing.assert_allclose(sh_encode(t(f["d"]), 4).numpy(), f["enc_d"], rtol=0, atol=1e-12)


def _conditioning(model, f: dict) -> tuple[torch.Tensor, dict]:
    feats = t(f["feats"]).transpose(1, 2)  # official (n, 29, 16) -> aebench (n, T, C)
    index = int(f["index"])
    code = model.audio(feats, torch.tensor([index]), smooth=True)[0]
    return code, {"eye": t(f["eye"]).reshape(1), "ind": model.individual_codes[index]}


def test_network_is_the_official_forward(model):
    f = fixture("network")
    code, refs = _conditioning(model, f)
    np.testing.assert_allclose(code.detach().numpy(), f["enc_a"][0], rtol=1e-10, atol=1e-12)
    out = model.field(code, refs, None)(t(f["x"])[:, None], t(f["d"]), "coarse")
    got = {k: v.detach().numpy().reshape(-1) for k, v in out.items()}
    for ours_key, official in (
        ("sigma", "sigma"),
        ("rgb", "color"),
        ("sum_amb_aud", "amb_aud"),
        ("sum_amb_eye", "amb_eye"),
        ("unc", "uncertainty"),
    ):
        np.testing.assert_allclose(got[ours_key], f[official].reshape(-1), rtol=1e-9, atol=1e-12, err_msg=ours_key)


@pytest.mark.parametrize("step", ["step", "step16"])
def test_training_step_is_the_official_train_step(model, step, monkeypatch):
    """The official ``train_step`` on fixed samples: aebench composites the same samples (the far end
    as its background sample) and computes the same loss and gradients; at step 16 with the
    smoothness regulariser, on the jitter the official step drew."""
    f = fixture(step)
    assert ("jitter" in f) == (int(f["global_step"]) % 16 == 0)
    if "jitter" in f:
        monkeypatch.setattr("aebench.baselines.ernerf.jitter", lambda points, generator: t(f["jitter"]))
    code, refs = _conditioning(model, f)
    rays_o, rays_d, z = t(f["rays_o"]), t(f["rays_d"]), t(f["t"])
    out = _pass(model.field(code, refs, None), "coarse", rays_o, rays_d, rays_d, z, {"rgb": t(f["bg"])})
    np.testing.assert_allclose(out["rgb"].detach().numpy(), f["image"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["acc"].detach().numpy(), f["weights_sum"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["sum_amb_aud"].detach().numpy(), f["ambient_aud"].reshape(-1), rtol=1e-9)
    np.testing.assert_allclose(out["sum_amb_eye"].detach().numpy(), f["ambient_eye"].reshape(-1), rtol=1e-9)
    np.testing.assert_allclose(out["unc"].detach().numpy(), f["uncertainty"], rtol=1e-9)
    face = torch.from_numpy(f["face"])
    views = SimpleNamespace(face_box=torch.zeros(3, 4, dtype=torch.long))  # the face box is pixel (0, 0)
    batch = {
        "rgb": t(f["images"]),
        "views": views,
        "frame_index": int(f["index"]),
        "uv": torch.where(face[:, None], 0.5, 5.5).expand(-1, 2),
        "rays_o": rays_o,
        "rays_d": rays_d,
    }
    model.train_cfg = TrainSettings(iters=int(f["iters"]))
    model.zero_grad()
    loss, _ = model.image_loss({"coarse": out}, batch, int(f["global_step"]) - 1)
    np.testing.assert_allclose(loss.item(), float(f["loss"]), rtol=1e-9)
    loss.backward()
    checked = 0
    for name, p in model.named_parameters():
        official = theirs(name)
        want = {k: v for k, v in f.items() if k.split(".", 1)[1:] == [official] and k.startswith("grad")}
        if not want:
            assert p.grad is None or not p.grad.any(), f"{name} has a gradient the official step has not"
            continue
        got = summary(official, p.grad.numpy())
        for k, v in want.items():
            # to 1e-6 of the gradient's largest entry (aebench's transmittance carries NeRF's + 1e-10 per factor)
            np.testing.assert_allclose(got[k], v, rtol=1e-7, atol=1e-6 * float(np.abs(v).max()), err_msg=k)
        checked += 1
    assert checked >= 20


def test_lip_square_is_the_official_lips_rect():
    """The official block names rows x and columns y: its [xmin, xmax, ymin, ymax] is aebench's
    (y0, y1, x0, x1)."""
    from aebench.baselines.ernerf import lips_square

    f = fixture("lips_rect")
    for (h, w), lms, (xmin, xmax, ymin, ymax) in zip(f["sizes"], f["landmarks"], f["rects"]):
        x0, x1, y0, y1 = lips_square(t(lms), int(h), int(w))
        assert (y0, y1, x0, x1) == (xmin, xmax, ymin, ymax)
