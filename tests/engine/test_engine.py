import math

import pytest
import torch

from aebench.engine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, step_dir
from aebench.engine.encoding import PositionalEncoding
from aebench.engine.rays import image_rays, pixel_rays, project
from aebench.engine.references import FeatureExtractor, clamp_to_image, project_to_refs, reference_tokens, sample_features
from aebench.engine.volume import composite, render_rays
from aebench.engine.sampling import sample_pdf, stratified

torch.set_num_threads(1)  # 2 threads on the shared 2-core machine spin-wait badly under load


def look_at_origin(dist=4.0):
    """Camera at (0, 0, -dist) looking along +z at the origin (OpenCV axes)."""
    c2w = torch.eye(4)
    c2w[2, 3] = -dist
    return c2w


def test_composite_hand_computed():
    # three samples at z 0, 1, 2 (|d| = 1), sigma 1, 2, (anything): the last sample is the background
    sigma = torch.tensor([[1.0, 2.0, 7.0]])
    z = torch.tensor([[0.0, 1.0, 2.0]])
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, 0.3, 0.3]]])
    out = composite(
        sigma,
        {"rgb": rgb, "m": torch.tensor([[1.0, 0.0, 0.9]])},
        z,
        torch.tensor([[0.0, 0.0, 1.0]]),
        {"rgb": torch.tensor([[0.0, 0.0, 1.0]]), "m": 0.5},
    )
    a1, a2 = 1 - math.exp(-1), 1 - math.exp(-2)
    w = [a1, (1 - a1) * a2, (1 - a1) * (1 - a2)]
    assert torch.allclose(out["weights"], torch.tensor([w]), atol=1e-6)
    assert torch.allclose(out["rgb"], torch.tensor([[w[0], w[1], w[2]]]), atol=1e-6)  # bg blue takes the rest
    assert torch.allclose(out["m"], torch.tensor([w[0] + 0.5 * w[2]]), atol=1e-6)
    assert torch.allclose(out["acc"], torch.tensor([w[0] + w[1]]), atol=1e-6)
    assert torch.allclose(out["depth"], torch.tensor([w[1] + 2 * w[2]]), atol=1e-6)


@pytest.mark.parametrize("raw,tol", [(-5.0, 0.05), (-10.0, 1e-3), (-20.0, 1e-6)])
def test_empty_softplus_field_shows_the_background(raw, tol):
    """The bug this guards against: with a 1e10 last interval and softplus density (> 0),
    opacity was 1 on every ray and background.png never showed."""
    import torch.nn.functional as F

    def field(pts, dirs, level):
        n, s = pts.shape[:2]
        return {"sigma": F.softplus(torch.full((n, s), raw)), "rgb": torch.zeros(n, s, 3), "mask": torch.full((n, s), 0.7)}

    c2w = look_at_origin()
    o, d = pixel_rays(c2w, torch.tensor([10.0, 0.0, 0.0]), torch.rand(50, 2) * 20 - 10)
    bg = torch.rand(50, 3)
    out = render_rays(field, o, d, 2.0, 6.0, bg, 32, 32, perturb=True, backgrounds={"mask": 1.0})
    for level in ("coarse", "fine"):
        assert torch.allclose(out[level]["rgb"], bg, atol=tol)  # softplus(-5) = 0.0067: 3% opacity over 4 units
        assert torch.allclose(out[level]["mask"], torch.ones(50), atol=tol)
        assert out[level]["acc"].max() < tol
    # and a white background shows white behind a black, empty field
    white = render_rays(field, o, d, 2.0, 6.0, torch.ones(50, 3), 16, 0, perturb=False)["coarse"]["rgb"]
    assert white.min() > 1 - tol


def test_opaque_shell_hides_the_background():
    """A thin opaque shell (radius 0.9..1) of softplus density renders its colour, not the background."""
    import torch.nn.functional as F

    def field(pts, dirs, level):
        r = pts.norm(dim=-1)
        shell = ((r > 0.9) & (r < 1.0)).float()
        raw = shell * 60.0 - (1 - shell) * 10.0
        return {"sigma": F.softplus(raw), "rgb": torch.tensor([0.2, 0.9, 0.1]).expand(*pts.shape[:2], 3)}

    c2w = look_at_origin()
    o, d = pixel_rays(c2w, torch.tensor([10.0, 0.0, 0.0]), torch.tensor([[0.0, 0.0], [30.0, 0.0]]))
    bg = torch.tensor([[1.0, 0.0, 1.0]]).expand(2, 3)
    fine = render_rays(field, o, d, 2.0, 6.0, bg, 64, 64, perturb=False)["fine"]
    assert torch.allclose(fine["rgb"][0], torch.tensor([0.2, 0.9, 0.1]), atol=1e-2)  # through the shell
    assert torch.allclose(fine["rgb"][1], torch.tensor([1.0, 0.0, 1.0]), atol=1e-3)  # misses it
    assert fine["acc"][0] > 0.99 and fine["acc"][1] < 1e-3


def test_composite_background_and_ray_length():
    # empty space shows the background; density scales with |d|
    z = torch.tensor([[1.0, 2.0, 3.0]])
    zero = composite(
        torch.zeros(1, 3), {"rgb": torch.ones(1, 3, 3)}, z, torch.tensor([[0.0, 0.0, 1.0]]), {"rgb": torch.tensor([[0.2, 0.3, 0.4]])}
    )
    assert torch.allclose(zero["rgb"], torch.tensor([[0.2, 0.3, 0.4]]))
    sig = torch.tensor([[0.5, 0.0, 0.0]])
    one = composite(sig, {}, z, torch.tensor([[0.0, 0.0, 1.0]]))
    two = composite(sig, {}, z, torch.tensor([[0.0, 0.0, 2.0]]))
    assert one["weights"][0, 0] == pytest.approx(1 - math.exp(-0.5), abs=1e-6)
    assert two["weights"][0, 0] == pytest.approx(1 - math.exp(-1.0), abs=1e-6)


def test_rays_and_projection_roundtrip():
    c2w = look_at_origin()
    intr = torch.tensor([40.0, 16.0, 16.0])
    o, d = image_rays(32, 32, intr, c2w)
    assert o.shape == (1024, 3) and torch.allclose(d[:, 2], torch.ones(1024))
    # the centre pixel's ray passes through the origin
    o1, d1 = pixel_rays(c2w, intr, torch.tensor([[16.0, 16.0]]))
    assert torch.allclose(o1 + 4.0 * d1, torch.zeros(1, 3), atol=1e-6)
    # a point along a pixel ray projects back onto that pixel at its depth
    uv = torch.tensor([[3.5, 27.25]])
    o2, d2 = pixel_rays(c2w, intr, uv)
    back, depth = project(o2 + 2.5 * d2, c2w, intr)
    assert torch.allclose(back, uv, atol=1e-4) and depth.item() == pytest.approx(2.5)
    # y down: a point above the axis (negative y) lands in the upper half
    assert project(torch.tensor([[0.0, -0.5, 0.0]]), c2w, intr)[0][0, 1] < 16


def test_sample_features_reads_the_projected_pixel():
    maps = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5)
    uv = torch.tensor([[[2.5, 1.5]], [[0.5, 3.5]]])  # pixel centres (x=2, y=1) and (x=0, y=3)
    out = sample_features(maps, uv)
    assert out.shape == (2, 1, 1)
    assert out[0, 0, 0] == maps[0, 0, 1, 2] and out[1, 0, 0] == maps[1, 0, 3, 0]
    assert sample_features(maps, torch.tensor([[[-5.0, -5.0]], [[50.0, 1.0]]])).abs().sum() == 0
    enc = FeatureExtractor(pe=2, width=8, feat_dim=4)
    feats = enc(torch.rand(2, 16, 12, 3), torch.stack([look_at_origin(), look_at_origin(3.0)]))
    assert feats.shape == (2, 4, 16, 12)  # no downsampling, no raw RGB appended
    uv = clamp_to_image(torch.tensor([[[-3.0, 5.0], [40.0, 100.0]]]), 16, 12)
    assert torch.equal(uv, torch.tensor([[[0.5, 5.0], [11.5, 15.5]]]))
    tok = reference_tokens(feats[:1], uv)
    assert tok.shape == (1, 2, 6) and torch.allclose(tok[0, 1, 4:], torch.tensor([11.5 / 12, 15.5 / 16]))
    uvs, dirs = project_to_refs(torch.zeros(5, 3), torch.stack([look_at_origin(), look_at_origin(3.0)]), torch.tensor([20.0, 6.0, 8.0]))
    assert torch.allclose(uvs, torch.tensor([6.0, 8.0]).expand(2, 5, 2)) and torch.allclose(dirs[..., 2], torch.ones(2, 5))


def test_positional_encoding():
    pe = PositionalEncoding(3)
    x = torch.tensor([[0.25, 0.0, 1.0]])
    y = pe(x)
    assert y.shape == (1, pe.out_dim) and pe.out_dim == 21
    assert y[0, 3].item() == pytest.approx(math.sin(0.25))  # sin(2^0 p): no pi, as the official Embedder
    assert y[0, 6].item() == pytest.approx(math.cos(0.25))  # cos of the same frequency right after it
    assert y[0, 9 + 2].item() == pytest.approx(math.sin(2.0))  # sin(2^1 p) of the third coordinate


def test_stratified_and_pdf_sampling():
    g = torch.Generator().manual_seed(0)
    z = stratified(2.0, 6.0, 5, 8, perturb=True, generator=g)
    assert z.shape == (5, 8) and (z >= 2).all() and (z <= 6).all() and (z.diff(dim=-1) >= 0).all()
    assert torch.allclose(stratified(2.0, 6.0, 1, 5, perturb=False), torch.tensor([[2.0, 3.0, 4.0, 5.0, 6.0]]))
    bins = torch.linspace(0, 4, 5).expand(2000, 5)
    weights = torch.tensor([0.0, 0.0, 1.0, 0.0]).expand(2000, 4)
    s = sample_pdf(bins, weights, 4, deterministic=False, generator=g)
    inside = ((s >= 2) & (s <= 3)).float().mean()
    assert inside > 0.99  # all mass in bin [2, 3]


def test_render_rays_on_a_sphere():
    """An opaque red unit sphere in front of a blue background, seen through its centre and its edge."""

    def field(pts, dirs, level):
        inside = (pts.norm(dim=-1) < 1.0).float()
        return {"sigma": inside * 50.0, "rgb": torch.tensor([1.0, 0.0, 0.0]).expand(*pts.shape[:2], 3)}

    c2w = look_at_origin()
    o, d = pixel_rays(c2w, torch.tensor([10.0, 0.0, 0.0]), torch.tensor([[0.0, 0.0], [30.0, 0.0]]))
    bg = torch.tensor([[0.0, 0.0, 1.0]]).expand(2, 3)
    out = render_rays(field, o, d, 2.0, 6.0, bg, 64, 64, perturb=False)
    assert torch.allclose(out["fine"]["rgb"][0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-2)
    assert torch.allclose(out["fine"]["rgb"][1], torch.tensor([0.0, 0.0, 1.0]), atol=1e-4)
    assert out["fine"]["depth"][0].item() == pytest.approx(3.0, abs=0.1)
    assert out["fine"]["z"].shape == (2, 128)


def test_checkpoint_roundtrip(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    save_checkpoint(step_dir(tmp_path, 7), net, opt, 7, {"a": 1})
    other = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(other.parameters())
    state = load_checkpoint(latest_checkpoint(tmp_path), other, opt2)
    assert state == {"step": 7, "meta": {"a": 1}}
    x = torch.rand(4, 3)
    assert torch.equal(net(x), other(x))
    assert opt2.state_dict()["state"][0]["step"] == 1


def test_the_last_stratified_sample_stays_at_far_while_training():
    """Official ``t_rand[..., -1] = 1.0``: the jittered samples keep their last one at far (the background)."""
    z = stratified(2.0, 6.0, 7, 16, perturb=True, generator=torch.Generator().manual_seed(1))
    assert torch.all(z[:, -1] == 6.0) and not torch.all(z[:, -2] == z[0, -2])  # the others are jittered
