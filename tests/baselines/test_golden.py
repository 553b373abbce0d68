"""aebench's components against numbers the official code produced (``tests/baselines/golden/``,
written by ``tools/golden_official.py`` from checkouts of sstzal/DFRF and YudongGuo/AD-NeRF; the
commit is in each fixture). Everything in float64, the same inputs and weights."""

from __future__ import annotations

import sys

from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(Path(__file__).parent))  # golden_weights, the weight rule shared with tools/golden_official.py
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
    from aebench.engine.encoding import PositionalEncoding

    f = fixture(repo, "pe")
    ours = PositionalEncoding(multires).double()(t(f["x"])).numpy()
    np.testing.assert_allclose(ours, f[f"embed_{multires}"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("repo", REPOS)
def test_volume_rendering_is_raw2outputs(repo):
    """``raw2outputs`` with densities ReLU(raw) + 1e-6 and sigmoid colours: the last sample is
    the background and absorbs what transmittance is left (rgb, weights, depth, opacity)."""
    from aebench.engine.volume import composite

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
    from aebench.engine.sampling import sample_pdf

    f = fixture(repo, "sample_pdf")
    ours = sample_pdf(t(f["bins"]), t(f["weights"]), f["samples"].shape[1], deterministic=True)
    np.testing.assert_allclose(ours.numpy(), f["samples"], rtol=0, atol=1e-12)


AUDIONET_KEYS = {"encoder_fc1.": "encoder_fc."}  # official -> aebench state-dict prefixes
ATTNET_KEYS = {"attentionConvNet.": "attention_conv.", "attentionNet.0.": "attention_fc."}


def _state(f: dict, prefix: str, rename: dict) -> dict:
    out = {}
    for k, v in f.items():
        if k.startswith(prefix):
            key = k[len(prefix) :]
            for a, b in rename.items():
                key = key.replace(a, b) if key.startswith(a) else key
            out[key] = t(v)
    return out


@pytest.mark.parametrize("repo", REPOS)
def test_audionet_and_audioattnet_are_the_official_networks(repo):
    """The same weights give the same codes: AudioNet on 16 x 29 windows, AudioAttNet's weighted
    sum of 8 codes whose first 32 channels its convolutions read."""
    from aebench.engine.audio import AudioAttNet, AudioNet

    f = fixture(repo, "audio")
    net = AudioNet(29, 64).double()
    net.load_state_dict(_state(f, "audionet.", AUDIONET_KEYS), strict=True)
    att = AudioAttNet(32, 8).double()
    att.load_state_dict(_state(f, "attnet.", ATTNET_KEYS), strict=True)
    with torch.no_grad():
        np.testing.assert_allclose(net(t(f["windows"])).numpy(), f["audionet_out"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(att(t(f["codes_in"])[None])[0].numpy(), f["attnet_out"], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Whole renders and one training step under train.preset=official (``*_render.npz``): the official
# create_nerf + render_rays with every weight from golden_weights' rule and the draws of a seed.


def _gl_to_cv(pose: np.ndarray) -> np.ndarray:
    """An official (OpenGL, (3, 4)) camera-to-world as aebench's OpenCV (4, 4): y and z flipped."""
    c2w = np.eye(4)
    c2w[:3, :3] = pose[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    c2w[:3, 3] = pose[:3, 3]
    return c2w


def _mapping(repo: str, width: int, depth: int, f: dict) -> list[tuple[str, str, str, tuple]]:
    """(official key, aebench key, kind, input layout) for every parameter; ``kind`` says how the
    arrays relate: ``same``; ``in`` (the first NeRF layer, whose input columns come in another
    order: official [slots, gamma(x), audio] for DFRF, aebench [gamma(x), audio, slots]); ``skip``
    (the layer after the skip: official [input, h], aebench [h, input])."""
    segs = {"x": 63, "aud": 64, "slots": 256}
    official = ("slots", "x", "aud") if repo == "dfrf" else ("x", "aud")
    ours = ("x", "aud", "slots") if repo == "dfrf" else ("x", "aud")
    start, at = {}, 0
    for name in official:
        start[name], at = at, at + segs[name]
    perm = np.concatenate([np.arange(start[n], start[n] + segs[n]) for n in ours])
    out = []
    n_views = 1 + depth // 4
    for level in ("coarse", "fine"):
        for i in range(depth):
            kind = "in" if i == 0 else "skip" if i == depth // 2 + 1 else "same"
            out += [
                (f"{level}.pts_linears.{i}.weight", f"{level}.layers.{i}.weight", kind, (perm, width)),
                (f"{level}.pts_linears.{i}.bias", f"{level}.layers.{i}.bias", "same", ()),
            ]
        for j in range(n_views):
            out += [(f"{level}.views_linears.{j}.{p}", f"{level}.rgb.{2 * j}.{p}", "same", ()) for p in ("weight", "bias")]
        out += [(f"{level}.rgb_linear.{p}", f"{level}.rgb.{2 * n_views}.{p}", "same", ()) for p in ("weight", "bias")]
        out += [(f"{level}.alpha_linear.{p}", f"{level}.sigma.{p}", "same", ()) for p in ("weight", "bias")]
    if repo == "dfrf":
        rename = {
            "slot.fc1.0.": "rel.0.",
            "slot.fc6.": "rel.2.",
            "slot.fc7.0.": "slots.inp.",
            "slot.norm_input.": "slots.norm_in.",
            "slot.norm_slots.": "slots.norm_slots.",
            "slot.norm_pre_ff.": "slots.norm_mlp.",
            "slot.to_q.": "slots.q.",
            "slot.to_k.": "slots.k.",
            "slot.to_v.": "slots.v.",
            "slot.gru.": "slots.gru.",
            "slot.mlp.": "slots.mlp.",
            "slot.slots_": "slots.slots_",
            "features.conv1.0.": "features.convs.0.",
            "features.conv2.0.": "features.convs.2.",
            "features.fc.": "features.fc.",
            "warp.mlp.": "warp.mlp.",
        }
        for key in f["param_names"]:
            key = str(key)
            for a, b in rename.items():
                if key.startswith(a):
                    out.append((key, b + key[len(a) :], "same", ()))
    return out


def _to_ours(arr: np.ndarray, kind: str, layout: tuple) -> np.ndarray:
    if kind == "in":
        return arr[:, layout[0]]
    if kind == "skip":
        n_in = len(layout[0])
        return np.concatenate([arr[:, n_in:], arr[:, :n_in][:, layout[0]]], 1)
    return arr


def _to_official(arr: np.ndarray, kind: str, layout: tuple) -> np.ndarray:
    if kind == "in":
        out = np.empty_like(arr)
        out[:, layout[0]] = arr
        return out
    if kind == "skip":
        width, n_in = layout[1], len(layout[0])
        out = np.empty_like(arr)
        out[:, :n_in][:, layout[0]] = arr[:, width:]
        out[:, n_in:] = arr[:, :width]
        return out
    return arr


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _official_model(repo: str, f: dict, overrides: tuple[str, ...] = ()):
    """aebench's model under train.preset=official (plus ``overrides``) at the fixture's sizes, holding
    the fixture's weights (with learned slots, ``dfrf.slot_init=learned``, both slots start at the
    official mu)."""
    from golden_weights import weight

    from aebench.config import load_config
    from aebench.registry import method_class
    from aebench.settings import TrainSettings

    width, samples = int(f["netwidth"]), (int(f["N_samples"]), int(f["N_importance"]))
    cfg = load_config(
        [
            f"method={repo}",
            "train.preset=official",
            "scale=paper",
            f"{repo}.width={width}",
            f"train.n_coarse={samples[0]}",
            f"train.n_fine={samples[1]}",
            *overrides,
        ]
    )
    cls = method_class(repo)
    settings = cls.settings_cls.from_tree(cfg, repo)
    model = cls.model_cls(settings, 29, TrainSettings.from_tree(cfg, "train")).double()
    mapping = _mapping(repo, width, settings.depth, f)
    shapes = dict(zip((str(k) for k in f["param_names"]), (tuple(int(v) for v in str(s).split(",")) for s in f["param_shapes"])))
    state = {
        ours: torch.from_numpy(_to_ours(weight(off, shapes[off], int(f["seed"])), kind, layout)) for off, ours, kind, layout in mapping
    }
    own = model.state_dict()
    if "slots.slots_mu" in state and own["slots.slots_mu"].shape != state["slots.slots_mu"].shape:
        state["slots.slots_mu"] = state["slots.slots_mu"].reshape(1, -1).expand(own["slots.slots_mu"].shape).clone()
        state.pop("slots.slots_logsigma")
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    assert all(k.startswith("audio.") for k in missing), missing  # only the audio encoder: the code is given
    return model, mapping, cfg


def _render(repo: str, model, f: dict, train: bool, samples: tuple[int, int] | None = None) -> tuple[dict, torch.Tensor, dict]:
    """aebench's render of the fixture's rays (training or test mode) from the fixture's draw
    seed, the references built from its images and poses; returns the output, the code and refs."""
    from aebench.engine.rays import pixel_rays

    # the scene's principal point, off the image centre (official pixel i sits at our i + 0.5); the
    # official projection into the references ignores it and uses (W/2, H/2)
    intr = torch.tensor([float(f["focal"]), float(f["cx"]) + 0.5, float(f["cy"]) + 0.5])
    uv = torch.stack([t(f["cols"]) + 0.5, t(f["rows"]) + 0.5], -1)
    rays_o, rays_d = pixel_rays(t(_gl_to_cv(f["pose"])), intr, uv)
    np.testing.assert_allclose(rays_o.numpy(), f["rays_o"], rtol=0, atol=1e-12)  # the same rays (get_rays)
    np.testing.assert_allclose(rays_d.numpy(), f["rays_d"], rtol=0, atol=1e-12)
    refs = None
    if repo == "dfrf":
        c2w = torch.stack([t(_gl_to_cv(p)) for p in f["ref_poses"]])
        refs = model.references(t(f["ref_images"]), c2w, intr, None)
    code = t(f["aud"]).requires_grad_(True)
    torch.manual_seed(int(f["draw_seed"]))
    out = model.render(
        code, refs, rays_o, rays_d, t(f["bc_rgb"]), float(f["near"]), float(f["far"]), None, perturb=train, generator=None, samples=samples
    )
    return out, code, refs


@pytest.mark.parametrize("repo", REPOS)
@pytest.mark.parametrize("mode", ["train", "test"])
def test_preset_official_renders_as_the_official_render_rays(repo, mode, float64):
    """Coarse and fine rgb, weights and depth of a whole render_rays equal the official code's
    within 1e-6 (float64, the same weights and draws: stratified jitter, DFRF's slot noise at both
    passes, the importance samples). Fails on the code before issue 19 (pi in the encoding, the
    extra slot FC, the jittered last sample, learned slots, the continuous token...)."""
    f = fixture(repo, "render")
    model, _, _ = _official_model(repo, f)
    with torch.no_grad():
        out, _, _ = _render(repo, model, f, mode == "train")
    for level in ("coarse", "fine"):
        np.testing.assert_allclose(out[level]["rgb"].numpy(), f[f"{mode}.rgb_{level}"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(out[level]["weights"].numpy(), f[f"{mode}.weights_{level}"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(out[level]["depth"].numpy(), f[f"{mode}.depth_{level}"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["fine"]["weights"].sum(-1).numpy(), f[f"{mode}.acc_fine"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("repo", REPOS)
def test_preset_official_training_step_has_the_official_gradients(repo, float64):
    """One training step's loss (MSE fine + coarse, DFRF's depth-weighted offset penalty) and the
    gradient of every official parameter and of the audio code within 1e-6 relative."""
    from golden_weights import probes

    f = fixture(repo, "render")
    model, mapping, _ = _official_model(repo, f)
    out, code, _ = _render(repo, model, f, True)
    target = t(f["target"])
    loss = sum(torch.mean((o["rgb"] - target) ** 2) for o in out.values())
    extra, _ = model.extra_loss(out, None)
    loss = loss + extra
    np.testing.assert_allclose(loss.item(), float(f["train.loss"]), rtol=1e-9)
    loss.backward()
    params = dict(model.named_parameters())
    grads = {
        off: (params[ours].grad.numpy() if params[ours].grad is not None else None, kind, layout) for off, ours, kind, layout in mapping
    }
    grads["aud"] = (code.grad.numpy(), "same", ())
    checked = 0
    for off, (g, kind, layout) in grads.items():
        if f"grad.{off}" in f:
            ref = f[f"grad.{off}"]
            assert g is not None, off
            ours = _to_official(g, kind, layout)
            np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6 * max(np.abs(ref).max(), 1e-12), err_msg=off)
        elif f"gradnorm.{off}" in f:
            ours = _to_official(g, kind, layout).reshape(-1)
            np.testing.assert_allclose(np.linalg.norm(ours), f[f"gradnorm.{off}"], rtol=1e-6, err_msg=off)
            proj = probes(off, g.shape) @ ours
            np.testing.assert_allclose(proj, f[f"gradproj.{off}"], rtol=0, atol=1e-6 * float(f[f"gradnorm.{off}"]), err_msg=off)
        else:  # the official parameter got no gradient (e.g. slots' log-sigma never does without noise)
            assert g is None or not np.any(g), off
            continue
        checked += 1
    assert checked >= len(mapping) // 2


@pytest.mark.parametrize("name,decay_unit", [("dfrf_lr_from_0", 1500), ("dfrf_lr_from_299999", 1500), ("adnerf_lr_from_0", 1000)])
def test_preset_official_lr_of_the_first_steps_is_the_official_schedule(name, decay_unit):
    """Under train.schedule=official (the preset) the lr of the NeRF, AudioNet and AudioAttNet
    groups at a run's first steps equal what the official update block gave its three optimizers
    (executed as written by tools/golden_official.py): the undecayed lr at step 0 (AudioNet's
    reloaded lr when fine-tuning), then the lr of the step before, AudioAttNet's 5x."""
    from omegaconf import OmegaConf

    from aebench.config import load_config
    from aebench.engine.trainer import Trainer

    repo = name.split("_")[0]
    f = fixture(repo, name.split("_", 1)[1])
    base = int(f["base_step"])

    class Groups(torch.nn.Module):  # NeRFModel.param_groups' layout: networks, AudioNet, AudioAttNet (5x)
        def __init__(self):
            super().__init__()
            self.net, self.aud, self.att = (torch.nn.Linear(1, 1) for _ in range(3))

        def param_groups(self):
            return [
                {"params": list(self.net.parameters())},
                {"params": list(self.aud.parameters())},
                {"params": list(self.att.parameters()), "lr_mult": 5.0},
            ]

    cfg = OmegaConf.merge(
        load_config([f"method={repo}", "train.preset=official"]).train,
        {"lr": float(f["lrate"]), "lr_decay_steps": int(f["lrate_decay"]) * decay_unit},
    )
    assert cfg.schedule == "official"
    model = Groups()
    trainer = Trainer(model, cfg, Path("unused"), lambda s, g: {}, torch.device("cpu"), step_offset=base + 1 if base else 0)
    if base:  # the fine-tune reloaded AudioNet's Adam state (train.reload_audio_optimizer)
        trainer._reloaded = {id(p) for p in model.aud.parameters()}
    for k, want in enumerate(f["lr"]):
        trainer.set_lr(k)
        got = [g["lr"] * g.get("lr_mult", 1.0) for g in trainer.optimizer.param_groups]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"step {k}")


@pytest.mark.parametrize("repo", REPOS)
def test_face_rect_draw_is_the_official_one(repo):
    """``train.face_rect=official`` takes ``int(N_rand * sample_rate)`` rays inside the official
    (transposed) rectangle, without replacement, face rays first, and counts as inside exactly the
    pixels the official loop does, for ray counts whose product with the rate is not whole (DFRF's
    850 x 0.95 = 807.5: 807, not 808)."""
    from aebench.engine.views import Views, sample_rays

    f = fixture(repo, "face_rect")
    h, w = int(f["H"]), int(f["W"])
    x, y, rw, rh = (int(v) for v in f["rect"])
    views = Views(
        name="v",
        frames=torch.zeros(1, h, w, 3, dtype=torch.uint8),
        masks=torch.zeros(1, h, w, dtype=torch.uint8),
        poses=torch.eye(4)[None],
        intrinsics=torch.tensor([10.0, w / 2, h / 2]),
        background=torch.zeros(h, w, 3),
        near=1.0,
        far=2.0,
        audio=None,
        indices=np.arange(1),
        face_box=torch.tensor([[x, y, x + rw, y + rh]]),
    )  # the official rect (x, y, w, h) as our box
    k = 0
    while f"draw{k}.n_rand" in f:
        n, rate = int(f[f"draw{k}.n_rand"]), float(f[f"draw{k}.rate"])
        b = sample_rays(views, 0, n, rate, torch.Generator().manual_seed(k), "official")
        rows, cols = (b["uv"][:, 1] - 0.5).long(), (b["uv"][:, 0] - 0.5).long()
        inside = torch.from_numpy(f[f"draw{k}.inside"])[rows, cols]
        n_in = int(f[f"draw{k}.rect_num"])
        assert n_in == int(n * rate) and n - n_in == int(f[f"draw{k}.norect_num"])
        assert inside[:n_in].all() and not inside[n_in:].any(), (n, rate)
        official = f[f"draw{k}.select_coords"]
        assert official.shape == (n, 2) and f[f"draw{k}.inside"][official[:n_in, 0], official[:n_in, 1]].all()
        pix = (rows * w + cols).tolist()
        assert len(set(pix[:n_in])) == n_in and len(set(pix[n_in:])) == n - n_in  # without replacement
        k += 1
    assert k == 4
