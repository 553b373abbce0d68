"""aebench's components against numbers the official code produced (``tests/baselines/golden/``,
written by ``tools/golden_official.py`` from checkouts of sstzal/DFRF and YudongGuo/AD-NeRF; the
commit is in each fixture). Everything in float64, the same inputs and weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).parent / "golden"
REPOS = ("dfrf", "adnerf")
COMMITS = {"dfrf": "2c7bd69ce2453a08c4f7b4ebcf96faa0a82a6af0", "adnerf": "9fdcd7e1352aa74e26baa8e60c862f9fbd7933bf"}


def fixture(repo: str, name: str) -> dict:
    data = dict(np.load(GOLDEN / f"{repo}_{name}.npz"))
    assert str(data["official_commit"]) == COMMITS[repo], f"{repo}_{name}: regenerate with tools/golden_official.py"
    return data


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


@pytest.mark.parametrize("repo", REPOS)
@pytest.mark.parametrize("multires", [2, 4, 5, 6, 10])
def test_positional_encoding_is_the_official_embedder(repo, multires):
    """gamma(p) = (p, sin(2^0 p), cos(2^0 p), sin(2^1 p), cos(2^1 p), ...): no pi, sin and cos
    interleaved per frequency (``Embedder``, helpers lines 21-71 in both repositories)."""
    from aebench.aenerf.engine.encoding import PositionalEncoding

    f = fixture(repo, "pe")
    ours = PositionalEncoding(multires).double()(t(f["x"])).numpy()
    np.testing.assert_allclose(ours, f[f"embed_{multires}"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("repo", REPOS)
def test_volume_rendering_is_raw2outputs(repo):
    """``raw2outputs`` with densities ReLU(raw) + 1e-6 and sigmoid colours: the last sample is
    the background and absorbs what transmittance is left (rgb, weights, depth, opacity)."""
    from aebench.aenerf.engine.volume import composite

    f = fixture(repo, "raw2outputs")
    raw = t(f["raw"])
    sigma = torch.relu(raw[..., 3]) + 1e-6
    out = composite(sigma, {"rgb": torch.sigmoid(raw[..., :3])}, t(f["z_vals"]), t(f["rays_d"]), {"rgb": t(f["bc_rgb"])})
    np.testing.assert_allclose(out["rgb"].numpy(), f["rgb_map"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["weights"].numpy(), f["weights"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["depth"].numpy(), f["depth_map"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["weights"].sum(-1).numpy(), f["acc_map"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("repo", REPOS)
def test_hierarchical_samples_are_sample_pdf(repo):
    from aebench.aenerf.engine.sampling import sample_pdf

    f = fixture(repo, "sample_pdf")
    ours = sample_pdf(t(f["bins"]), t(f["weights"]), f["samples"].shape[1], deterministic=True)
    np.testing.assert_allclose(ours.numpy(), f["samples"], rtol=0, atol=1e-12)


AUDIONET_KEYS = {"encoder_fc1.": "encoder_fc."}  # official -> aebench state-dict prefixes
ATTNET_KEYS = {"attentionConvNet.": "attention_conv.", "attentionNet.0.": "attention_fc."}


def _state(f: dict, prefix: str, rename: dict) -> dict:
    out = {}
    for k, v in f.items():
        if k.startswith(prefix):
            key = k[len(prefix):]
            for a, b in rename.items():
                key = key.replace(a, b) if key.startswith(a) else key
            out[key] = t(v)
    return out


@pytest.mark.parametrize("repo", REPOS)
def test_audionet_and_audioattnet_are_the_official_networks(repo):
    """The same weights give the same codes: AudioNet on 16 x 29 windows, AudioAttNet's weighted
    sum of 8 codes whose first 32 channels its convolutions read."""
    from aebench.aenerf.engine.audio import AudioAttNet, AudioNet

    f = fixture(repo, "audio")
    net = AudioNet(29, 64).double()
    net.load_state_dict(_state(f, "audionet.", AUDIONET_KEYS), strict=True)
    att = AudioAttNet(32, 8).double()
    att.load_state_dict(_state(f, "attnet.", ATTNET_KEYS), strict=True)
    with torch.no_grad():
        np.testing.assert_allclose(net(t(f["windows"])).numpy(), f["audionet_out"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(att(t(f["codes_in"])[None])[0].numpy(), f["attnet_out"], rtol=0, atol=1e-12)
