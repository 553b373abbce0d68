"""Samples along rays: stratified (coarse) and hierarchical inverse-CDF (fine), as in NeRF."""

from __future__ import annotations

import torch
from torch import Tensor


def stratified(
    near: float, far: float, n_rays: int, n_samples: int, perturb: bool, device=None, generator: torch.Generator | None = None
) -> Tensor:
    """(n_rays, n_samples) depths: ``n_samples`` evenly spaced depths from near to far (NeRF's
    linspace), each jittered uniformly inside its bin when ``perturb``, except the last, which
    stays at ``far`` (the background sample: official ``t_rand[..., -1] = 1.0``, DFRF
    run_nerf_deform.py 515, AD-NeRF run_nerf.py 459)."""
    t = torch.linspace(0.0, 1.0, n_samples, device=device)
    z = (near * (1 - t) + far * t).expand(n_rays, n_samples)
    if perturb:
        mids = 0.5 * (z[:, 1:] + z[:, :-1])
        upper = torch.cat([mids, z[:, -1:]], -1)
        lower = torch.cat([z[:, :1], mids], -1)
        u = torch.rand(z.shape, device=device, generator=generator)
        u[:, -1] = 1.0
        z = lower + (upper - lower) * u
    return z.contiguous()


def stratified_levels(n_rays: int, n_samples: int, perturb: bool, device=None, generator: torch.Generator | None = None) -> Tensor:
    """(n_rays, n_samples) CDF levels, one in each of ``n_samples`` equal slices of [0, 1]: at a
    random place in it when ``perturb`` (training), at its middle otherwise (rendering), so the
    samples a render draws are where training's fall on average (the proposal sampler, whose
    samples alone bound the field's intervals)."""
    base = torch.arange(n_samples, device=device, dtype=torch.float32)
    jitter = torch.rand(n_rays, n_samples, device=device, generator=generator) if perturb else 0.5
    return ((base + jitter) / n_samples).expand(n_rays, n_samples).contiguous()


def sample_pdf(
    bins: Tensor, weights: Tensor, n_samples: int, deterministic: bool, generator: torch.Generator | None = None, u: Tensor | None = None
) -> Tensor:
    """Inverse-transform samples from the piecewise-constant pdf given by ``weights`` (N, B-1)
    over ``bins`` (N, B), at CDF levels ``u`` (N, n_samples) when given (else NeRF's: evenly
    spaced from 0 to 1 when ``deterministic``, uniform at random otherwise). Returns
    (N, n_samples) depths (not sorted)."""
    weights = weights + 1e-5
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    if u is not None:
        u = u.to(cdf.dtype)
    elif deterministic:
        u = torch.linspace(0.0, 1.0, n_samples, device=bins.device, dtype=cdf.dtype).expand(cdf.shape[0], n_samples)
    else:
        u = torch.rand(cdf.shape[0], n_samples, device=bins.device, dtype=cdf.dtype, generator=generator)
    u = u.contiguous()
    idx = torch.searchsorted(cdf.detach(), u, right=True)
    below = (idx - 1).clamp(min=0)
    above = idx.clamp(max=cdf.shape[-1] - 1)
    cdf_b, cdf_a = torch.gather(cdf, 1, below), torch.gather(cdf, 1, above)
    bin_b, bin_a = torch.gather(bins, 1, below), torch.gather(bins, 1, above)
    denom = cdf_a - cdf_b
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_b) / denom
    return bin_b + t * (bin_a - bin_b)
