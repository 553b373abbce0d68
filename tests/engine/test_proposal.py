"""The proposal sampler (train.sampler=proposal): mip-NeRF 360's interlevel loss, the render that
evaluates only the proposed samples, and every method trained and rendered with it."""

import pytest
import torch

from aebench.engine.proposal import ProposalField, interlevel_loss, interval_envelope
from aebench.engine.volume import count_samples, render_rays
from tests.aenerf.helpers import model_on_a_batch, smoke_cfg
from tests.engine.test_occupancy import RADIUS, camera_rays, sphere_field

torch.set_num_threads(1)


def test_the_envelope_sums_every_interval_that_overlaps_the_query():
    g = torch.Generator().manual_seed(0)
    edges = torch.sort(torch.rand(3, 9, generator=g) * 4 + 2, -1).values
    weights = torch.rand(3, 8, generator=g)
    q = torch.sort(torch.rand(3, 12, generator=g) * 5 + 1.5, -1).values
    starts, ends = q[:, :-1], q[:, 1:]
    got = interval_envelope(edges, starts, ends, weights)
    for r in range(3):
        for j in range(11):
            overlap = (edges[r, 1:] > starts[r, j]) & (edges[r, :-1] < ends[r, j])
            assert torch.isclose(got[r, j], weights[r][overlap].sum(), atol=1e-6), (r, j)


def test_the_interlevel_loss_is_zero_when_the_proposal_bounds_the_fine_weights_and_trains_only_the_proposal():
    z = torch.linspace(2.0, 6.0, 9).expand(2, 9)
    fine_z = torch.linspace(2.0, 6.0, 17).expand(2, 17)
    w_fine = torch.zeros(2, 16)
    w_fine[:, 6:8] = 0.5  # inside the proposal's 4th interval [3.5, 4.0]
    w_prop = torch.zeros(2, 8, requires_grad=True)
    with torch.no_grad():
        w_prop[:, 3] = 1.0
    assert interlevel_loss(z, w_prop, fine_z, w_fine).item() == 0.0
    missing = torch.zeros(2, 8, requires_grad=True)  # a proposal that puts nothing there
    w_fine_grad = w_fine.clone().requires_grad_()
    loss = interlevel_loss(z, missing, fine_z, w_fine_grad)
    assert loss.item() == pytest.approx(2 * 0.5)  # sum over two intervals of 0.5^2 / 0.5
    loss.backward()
    assert missing.grad[:, 3].lt(0).all() and w_fine_grad.grad is None


def test_the_field_evaluates_only_the_proposed_samples_and_renders_the_sphere():
    """A proposal that knows the sphere puts the field's 8 samples on it: the render matches a
    dense 256-sample one (but for a few half-transparent rays grazing the silhouette), with 9
    evaluations per ray (8 + the background's)."""
    rays_o, rays_d = camera_rays(200)
    bg = torch.zeros(200, 3)

    def knows(points):
        return torch.nn.functional.softplus((RADIUS - points.norm(dim=-1)) * 60.0) * 20.0

    with count_samples() as counted:
        out = render_rays(sphere_field(), rays_o, rays_d, 2.0, 6.0, bg, 64, 8, perturb=False, proposal=knows)
    assert set(out) == {"fine"} and counted.per_ray == 9
    dense = render_rays(sphere_field(), rays_o, rays_d, 2.0, 6.0, bg, 256, 0, perturb=False)["coarse"]
    error = (out["fine"]["rgb"] - dense["rgb"]).abs().amax(-1)
    assert error.mean() < 0.01 and (dense["acc"][error > 0.05] < 0.9).all()
    with torch.no_grad():  # rendering: no loss to compute
        assert (
            "proposal_loss" not in render_rays(sphere_field(), rays_o, rays_d, 2.0, 6.0, bg, 16, 4, perturb=False, proposal=knows)["fine"]
        )


@pytest.mark.parametrize("method_name", ["aenerf", "dfrf"])
def test_a_reference_method_computes_features_only_for_the_proposed_samples(method_name):
    from aebench.registry import get_method

    method = get_method(method_name)
    model, batch, code, refs = model_on_a_batch(method, smoke_cfg("train.sampler=proposal"))
    assert isinstance(model.proposal, ProposalField)
    views = batch["views"]
    with count_samples() as counted:
        out = model.render(
            code,
            refs,
            batch["rays_o"],
            batch["rays_d"],
            batch["bg"],
            views.near,
            views.far,
            model.ray_groups(batch["label"], torch.Generator().manual_seed(1)),
            perturb=True,
            generator=torch.Generator().manual_seed(2),
        )
    assert (counted.per_ray, counted.features_per_ray) == (4 + 1, 4 + 1)  # smoke_cfg: n_fine 4, + the background's
    out["fine"]["proposal_loss"].backward()
    assert all(p.grad is not None for p in model.proposal.parameters())
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("proposal."))


@pytest.mark.parametrize("method_name", ["aenerf", "dfrf", "adnerf"])
def test_every_method_trains_with_the_proposal_and_its_checkpoint_renders_with_it(method_name, synth_root, tmp_path):
    """Fine-tuned with train.sampler=proposal (no base model: the fine-tune's own init), the
    checkpoint records it and renders through it even when the render's config says otherwise."""
    import json

    from aebench.data import Identity
    from aebench.data.identity import list_identities
    from aebench.registry import get_method
    from aebench.media import probe

    method = get_method(method_name)
    ident = Identity.open(list_identities(synth_root)[0]).at_size(32)
    cfg = smoke_cfg("data.size=32", "train.batch_rays=64", "train.sampler=proposal", "train.iters=4")
    ckpt = method.finetune(ident, ident.clip(1.0), None, cfg, tmp_path / "ft")
    assert json.loads((ckpt / "state.json").read_text())["meta"]["proposal"] is True
    model, _ = method.load(ckpt, smoke_cfg("data.size=32"), "cpu")
    assert model.proposal is not None
    out = method.render(ckpt, ident, ident.split("test").audio[:1000], smoke_cfg("data.size=32"), tmp_path / "o.mp4")
    assert probe(out).n_frames >= 1


def test_a_render_skips_what_the_proposal_bounds_as_empty_and_stops_rays_early():
    """With stop_eps (rendering) the samples the proposal bounds below EMPTY_BOUND are not
    evaluated and a ray stops behind the opaque sphere: fewer evaluations, the same picture."""
    rays_o, rays_d = camera_rays(200)
    bg = torch.zeros(200, 3)

    def knows(points):
        return torch.nn.functional.softplus((RADIUS - points.norm(dim=-1)) * 60.0) * 20.0

    with torch.no_grad():
        with count_samples() as every:
            full = render_rays(sphere_field(), rays_o, rays_d, 2.0, 6.0, bg, 64, 16, perturb=False, proposal=knows)
        with count_samples() as skipped:
            fast = render_rays(sphere_field(), rays_o, rays_d, 2.0, 6.0, bg, 64, 16, perturb=False, proposal=knows, stop_eps=1e-4)
    assert every.per_ray == 17 and skipped.per_ray < 8
    assert (full["fine"]["rgb"] - fast["fine"]["rgb"]).abs().max() < 2e-3
