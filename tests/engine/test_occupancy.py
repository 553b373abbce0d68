"""Empty-space skipping (train.sampler=occupancy): the grid, the sparse render, early termination,
and every method through it."""

import pytest
import torch

from aebench.engine.occupancy import OccupancyGrid, frustum_bounds
from aebench.engine.rays import pixel_rays
from aebench.engine.volume import count_samples, render_rays
from aebench.aenerf.modules.rrs import RayGroups
from tests.aenerf.helpers import build_model, fake_batch, fake_views, model_on_a_batch, orbit_pose, smoke_cfg

torch.set_num_threads(1)

RADIUS = 1.0
INTRINSICS = torch.tensor([8.0, 8.0, 8.0])  # focal, cx, cy of a 16 x 16 camera


def sphere_field(calls=None):
    """An opaque sphere whose colour depends on the position (so a skipped sample would show)."""

    def field(pts, dirs, level, rays=None):
        if calls is not None:
            calls.append(pts.shape[0] * pts.shape[1])
        r = pts.norm(dim=-1)
        sigma = torch.nn.functional.softplus((RADIUS - r) * 60.0) * 20.0  # ~0 outside (< 1e-20 a cell away)
        rgb = torch.sigmoid(pts * 3.0)
        return {"sigma": sigma, "rgb": rgb}

    return field


def camera_rays(n=400, seed=0, focal=8.0):
    g = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4)
    c2w[2, 3] = -4.0
    uv = torch.rand(n, 2, generator=g) * 16
    return pixel_rays(c2w, torch.tensor([focal, 8.0, 8.0]), uv)


def updated_grid(field, resolution=24):
    c2w = torch.eye(4)
    c2w[2, 3] = -4.0
    bounds = frustum_bounds(c2w[None], INTRINSICS, 16, 16, 2.0, 6.0)
    grid = OccupancyGrid(bounds, resolution, sigma_threshold=-torch.log(torch.tensor(0.99)).item() / (4.0 / 32))
    dirs = torch.zeros(1, 3)
    grid.update(lambda x: field(x[:, None], dirs.expand(x.shape[0], 3), "fine")["sigma"][:, 0])
    return grid


def test_grid_marks_the_sphere_and_nothing_far_from_it():
    field = sphere_field()
    grid = OccupancyGrid(torch.tensor([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]]), 16, sigma_threshold=0.1)
    assert grid.occupied(torch.tensor([[1.8, 1.8, 1.8]])).all()  # a grid that saw nothing skips nothing
    grid.update(lambda x: field(x[:, None], x, "fine")["sigma"][:, 0])
    inside = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0], [0.0, -0.95, 0.0]])
    far = torch.tensor([[1.8, 1.8, 1.8], [-1.9, 0.0, 1.9], [0.0, 1.7, -1.7]])
    assert grid.occupied(inside).all()
    assert not grid.occupied(far).any()
    assert grid.occupied(torch.tensor([[5.0, 0.0, 0.0]])).all()  # outside the grid: never skipped
    assert 0.05 < grid.occupied_fraction < 0.5


def test_grid_dilates_by_one_cell_and_decays():
    grid = OccupancyGrid(torch.tensor([[0.0] * 3, [8.0] * 3]), 8, sigma_threshold=1.0, decay=0.5)
    centre = torch.tensor([3.5, 3.5, 3.5])  # the centre of cell (3, 3, 3)
    grid.update(lambda x: ((x - centre).abs().max(-1).values < 0.5).float() * 3.0)  # that cell only
    assert grid.occupied_fraction == pytest.approx(27 / 8**3)
    assert grid.occupied(torch.tensor([[2.5, 4.5, 3.5], [4.9, 4.9, 4.9]])).all()  # neighbours
    assert not grid.occupied(torch.tensor([[5.5, 3.5, 3.5], [1.5, 1.5, 1.5]])).any()  # two cells away
    grid.update(lambda x: torch.zeros(x.shape[0]))  # 3 * 0.5 = 1.5: still above the threshold
    assert grid.occupied(centre[None]).all()
    grid.update(lambda x: torch.zeros(x.shape[0]))  # 0.75: empty now
    assert grid.occupied_fraction == 0.0


def test_occupancy_render_equals_the_dense_render_with_fewer_samples():
    field = sphere_field()
    grid = updated_grid(field)
    o, d = camera_rays()
    bg = torch.rand(o.shape[0], 3)
    dense = render_rays(field, o, d, 2.0, 6.0, bg, 32, 32, perturb=False)
    with count_samples() as counted:
        sparse = render_rays(field, o, d, 2.0, 6.0, bg, 32, 32, perturb=False, occupancy=grid)
    for level in ("coarse", "fine"):
        assert torch.allclose(sparse[level]["rgb"], dense[level]["rgb"], atol=1e-5)
        assert torch.allclose(sparse[level]["acc"], dense[level]["acc"], atol=1e-5)
    assert counted.rays == o.shape[0]
    # the fine pass's 32 importance samples lie on the sphere, the 2 x 32 stratified ones mostly not
    assert counted.per_ray < 0.75 * (32 + 64)
    with count_samples() as all_of_them:
        render_rays(field, o, d, 2.0, 6.0, bg, 32, 32, perturb=False)
    assert all_of_them.per_ray == 32 + 64
    with count_samples() as coarse_only:
        render_rays(field, o, d, 2.0, 6.0, bg, 32, 0, perturb=False, occupancy=grid)
    assert coarse_only.per_ray < 0.5 * 32


def test_early_termination_stops_behind_an_opaque_surface():
    calls = []
    field = sphere_field(calls)
    o, d = camera_rays(focal=40.0)  # a narrow view: most rays hit the sphere
    bg = torch.rand(o.shape[0], 3)
    dense = render_rays(field, o, d, 2.0, 6.0, bg, 64, 0, perturb=False)["coarse"]
    with count_samples() as counted:
        stopped = render_rays(field, o, d, 2.0, 6.0, bg, 64, 0, perturb=False, occupancy=None, stop_eps=1e-4)["coarse"]
    assert torch.allclose(stopped["rgb"], dense["rgb"], atol=1e-3)
    hits = dense["acc"] > 0.99
    assert hits.float().mean() > 0.5
    # rays that hit the sphere stop about half way (its front at z 3, the far plane at 6)
    assert counted.per_ray < 0.85 * 63


def test_ray_groups_follow_packed_samples():
    g = RayGroups(
        torch.tensor([True, False, False]),
        torch.tensor([False, True, False]),
        torch.tensor([False, False, True]),
        torch.tensor([False, True, False]),
    )
    t = g.take(torch.tensor([2, 2, 0, 1]))
    assert t.ai_only.tolist() == [True, True, False, False] and t.overlap.tolist() == [False, False, True, False]
    assert t.audio_region.tolist() == [False, False, False, True]


@pytest.mark.parametrize("method_name", ["aenerf", "dfrf", "adnerf"])
def test_every_method_renders_the_same_through_a_grid_that_skips_nothing(method_name):
    """Packed (M, 1) evaluation gives every method's field the same per-sample inputs as the
    dense one, including AE-NeRF's per-ray groups (RRS) and references."""
    from aebench.registry import get_method

    method = get_method(method_name)
    cfg = smoke_cfg("train.sampler=occupancy")
    torch.manual_seed(0)
    model = build_model(method, cfg).eval()
    batch = fake_batch(method, cfg, fake_views())
    views = batch["views"]
    code = model.audio(views.audio, torch.tensor([batch["frame_index"]]), False)[0]
    refs = None
    if batch["refs"] is not None:
        idx = batch["refs"]
        codes = model.audio(views.audio, idx, False) if model.uses_ref_audio else None
        refs = model.references(views.frames[idx].float() / 255.0, views.poses[idx], views.intrinsics, codes)
    groups = model.ray_groups(batch["label"], torch.Generator().manual_seed(1))
    args = (code, refs, batch["rays_o"], batch["rays_d"], batch["bg"], views.near, views.far, groups, False)
    with torch.no_grad():
        model.occupancy = None
        dense = model.render(*args)
        model.occupancy = OccupancyGrid(torch.tensor([[-9.0] * 3, [9.0] * 3]), 4, 0.0)  # never updated: all occupied
        sparse = model.render(*args)
    for level in dense:
        for key in ("rgb", "acc", *model.mask_backgrounds):
            assert torch.allclose(sparse[level][key], dense[level][key], atol=1e-5), (level, key)


def test_training_updates_the_grid_and_a_render_builds_its_own(synth_root, tmp_path):
    from aebench.data import Identity
    from aebench.data.identity import list_identities
    from aebench.media import probe
    from aebench.baselines.adnerf import ADNeRF

    cfg = smoke_cfg(
        "data.size=32", "train.batch_rays=64", "train.sampler=occupancy", "train.occ_every=3", "train.iters=7", "train.occ_resolution=8"
    )
    ident = Identity.open(list_identities(synth_root)[0]).at_size(32)
    seen = []
    orig = OccupancyGrid.update

    def spy(self, density_fn, generator=None, fraction=1.0):
        seen.append(fraction)
        return orig(self, density_fn, generator, fraction)

    OccupancyGrid.update = spy
    try:
        ckpt = ADNeRF().finetune(ident, ident.clip(1.0), None, cfg, tmp_path / "ft")
        assert len(seen) == 3  # steps 0, 3, 6
        seen.clear()
        out = ADNeRF().render(ckpt, ident, ident.split("test").audio[:2000], cfg, tmp_path / "out.mp4")
    finally:
        OccupancyGrid.update = orig
    assert len(seen) >= 1 and probe(out).n_frames >= 1


def test_orbit_cameras_are_inside_their_bounds():
    poses = torch.stack([orbit_pose(a) for a in (-0.3, 0.0, 0.4)])
    b = frustum_bounds(poses, torch.tensor([20.0, 8.0, 8.0]), 16, 16, 2.0, 6.0)
    o, d = pixel_rays(poses[2], torch.tensor([20.0, 8.0, 8.0]), torch.rand(100, 2) * 16)
    for t in (2.0, 4.0, 6.0):
        p = o + d * t
        assert ((p >= b[0] - 1e-5) & (p <= b[1] + 1e-5)).all()


@pytest.mark.slow
def test_compiled_networks_train_and_render_the_same_as_eager(synth_root, tmp_path):
    """train.compile=true (torch.compile, minutes of compiling on a CPU): same renders as eager."""
    import numpy as np

    from aebench.data import Identity
    from aebench.data.identity import list_identities
    from aebench.media import lossless_frames_dir
    from aebench.baselines.adnerf import ADNeRF

    ident = Identity.open(list_identities(synth_root)[0]).at_size(32)
    frames = []
    for flag in ("false", "true"):
        cfg = smoke_cfg("data.size=32", "train.batch_rays=64", "train.iters=3", f"train.compile={flag}")
        ckpt = ADNeRF().finetune(ident, ident.clip(1.0), None, cfg, tmp_path / flag)
        out = ADNeRF().render(ckpt, ident, ident.split("test").audio[:1000], cfg, tmp_path / f"{flag}.mp4")
        from PIL import Image

        frames.append(np.stack([np.asarray(Image.open(p)) for p in sorted(lossless_frames_dir(out).glob("*.png"))]))
    assert np.abs(frames[0].astype(int) - frames[1]).max() <= 1


@pytest.mark.parametrize("method_name", ["aenerf", "dfrf"])
@pytest.mark.parametrize("sampler", ["dense", "occupancy", "occupancy+stop"])
def test_fine_pass_reuses_the_coarse_samples_features(method_name, sampler):
    """A field with ``features`` has them computed once per sample (n_coarse + n_fine per ray,
    not 2 n_coarse + n_fine): the same outputs and gradients as computing them in every pass."""
    from aebench.registry import get_method

    method = get_method(method_name)
    model, batch, code, refs = model_on_a_batch(method, smoke_cfg())
    views = batch["views"]
    groups = model.ray_groups(batch["label"], torch.Generator().manual_seed(1))
    field = model.field(code, refs, groups)

    def plain(*args, **kwargs):  # the same field without the features attribute: every pass computes them
        return field(*args, **kwargs)

    grid = OccupancyGrid(torch.tensor([[-9.0] * 3, [9.0] * 3]), 4, 0.0) if sampler != "dense" else None
    stop = 1e-3 if sampler.endswith("stop") else 0.0
    outs, grads, counts = [], [], []
    for f in (field, plain):
        model.zero_grad()
        with count_samples() as counted:
            out = render_rays(
                f,
                batch["rays_o"],
                batch["rays_d"],
                views.near,
                views.far,
                batch["bg"],
                4,
                4,
                perturb=False,
                occupancy=grid,
                stop_eps=stop,
                backgrounds=model.mask_backgrounds,
            )
        (out["fine"]["rgb"].square().sum() + out["coarse"]["rgb"].sum()).backward(retain_graph=True)
        outs.append(out)
        grads.append([p.grad.clone() if p.grad is not None else None for p in model.parameters()])
        counts.append((counted.per_ray, counted.features_per_ray))
    for level in ("coarse", "fine"):
        assert torch.allclose(outs[0][level]["rgb"], outs[1][level]["rgb"], atol=1e-6)
    for a, b in zip(*grads):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, atol=1e-6))
    per_ray = 4 + 4 + 4 if sampler == "dense" else 3 + 7  # the background sample is not evaluated when skipping
    if sampler != "occupancy+stop":
        assert counts[0] == (per_ray, 4 + 4 - (0 if sampler == "dense" else 1))
        assert counts[1] == (per_ray, 0)
