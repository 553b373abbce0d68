"""Volume rendering (NeRF eq. / AE-NeRF eq. 8) and the coarse-to-fine ray renderer.

A *field* is any callable ``field(points, viewdirs, level) -> dict`` with
``points`` (N, S, 3), unit ``viewdirs`` (N, 3) and ``level`` ``"coarse"`` or ``"fine"``;
it returns at least ``"sigma"`` (N, S) non-negative densities and ``"rgb"`` (N, S, 3)
colours in [0, 1]. Any other (N, S, C) or (N, S) output (e.g. a parsing mask) is composited
the same way; keys beginning with ``aux_`` are passed through untouched (e.g. warper
offsets for a regulariser).

Background convention (the official AD-NeRF/DFRF ``raw2outputs``: ``NeRFs/HeadNeRF/run_nerf.py``
and ``NeRFs/run_nerf_deform.py``, ``rgb = torch.cat((rgb[:, :-1], bc_rgb[:, None]), 1)`` with a
last interval of 1e10): the *last sample's* value is the ray's background value and it absorbs
all transmittance left, so ``C = sum_{i<S} T_i alpha_i c_i + T_S * B``. A field that is empty
(any small density, softplus or ReLU) therefore shows the background exactly; the field's own
output at the last sample is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from aenerf.engine.sampling import sample_pdf, stratified

Field = Callable[[Tensor, Tensor, str], dict]


def composite(sigma: Tensor, values: Mapping[str, Tensor], z: Tensor, rays_d: Tensor,
              backgrounds: Mapping[str, Tensor | float] | None = None) -> dict[str, Tensor]:
    """Alpha-composite per-sample ``values`` (N, S[, C]) along rays, sigma (N, S), z (N, S).

    alpha_i = 1 - exp(-sigma_i delta_i) with delta_i = (z_{i+1} - z_i) |d| for i < S; the last
    sample is the background: alpha_S = 1 and its value is ``backgrounds[name]`` ((N, C) or a
    scalar; 0 when not given). T_i = prod_{j<i} (1 - alpha_j), w_i = T_i alpha_i. Returns each
    composited value, ``weights`` (N, S; the last column is the background's share),
    ``acc`` (N,) the field's opacity (sum of the first S-1 weights) and ``depth`` (N,)
    (expected z, the background counting as the last sample's z).
    """
    backgrounds = backgrounds or {}
    dists = (z[:, 1:] - z[:, :-1]) * rays_d.norm(dim=-1, keepdim=True)
    alpha = 1.0 - torch.exp(-sigma[:, :-1] * dists)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], -1), -1)  # (N, S)
    weights = torch.cat([alpha * trans[:, :-1], trans[:, -1:]], -1)
    acc = weights[:, :-1].sum(-1)
    out = {"weights": weights, "acc": acc, "depth": (weights * z).sum(-1)}
    for name, v in values.items():
        squeeze = v.dim() == 2
        v3 = v[..., None] if squeeze else v
        res = (weights[:, :-1, None] * v3[:, :-1]).sum(-2)
        bg = backgrounds.get(name)
        if bg is not None:
            bg = torch.as_tensor(bg, dtype=res.dtype, device=res.device)
            if squeeze and bg.dim() == 1:
                bg = bg[:, None]
            res = res + weights[:, -1:] * (bg if bg.dim() == 2 else bg.expand_as(res))
        out[name] = res[:, 0] if squeeze else res
    return out


def render_rays(field: Field, rays_o: Tensor, rays_d: Tensor, near: float, far: float, bg_rgb: Tensor,
                n_coarse: int, n_fine: int, perturb: bool, generator: torch.Generator | None = None,
                backgrounds: Mapping[str, Tensor | float] | None = None) -> dict[str, dict[str, Tensor]]:
    """Coarse pass on stratified samples, then (``n_fine`` > 0) a fine pass on the coarse
    samples plus ``n_fine`` importance samples. Colour is composited over ``bg_rgb`` (N, 3)
    (the identity's background pixel of each ray); other outputs over ``backgrounds``.

    Returns ``{"coarse": {...}, "fine": {...}}`` (``fine`` absent without fine samples),
    each with the composited outputs, ``weights``, ``acc``, ``depth``, ``z`` and the aux_ keys.
    """
    from aenerf.engine.rays import view_dirs

    n = rays_o.shape[0]
    dirs = view_dirs(rays_d)
    bgs = dict(backgrounds or {})
    bgs["rgb"] = bg_rgb
    z = stratified(near, far, n, n_coarse, perturb, rays_o.device, generator)
    result = {"coarse": _pass(field, "coarse", rays_o, rays_d, dirs, z, bgs)}
    if n_fine > 0:
        zc = result["coarse"]["z"]
        mids = 0.5 * (zc[:, 1:] + zc[:, :-1])
        extra = sample_pdf(mids, result["coarse"]["weights"][:, 1:-1].detach(), n_fine,
                           deterministic=not perturb, generator=generator)
        z_all, _ = torch.sort(torch.cat([zc, extra.detach()], -1), -1)
        result["fine"] = _pass(field, "fine", rays_o, rays_d, dirs, z_all, bgs)
    return result


def _pass(field: Field, level: str, rays_o, rays_d, dirs, z, bgs) -> dict[str, Tensor]:
    pts = rays_o[:, None, :] + rays_d[:, None, :] * z[..., None]
    raw = field(pts, dirs, level)
    aux = {k: v for k, v in raw.items() if k.startswith("aux_")}
    values = {k: v for k, v in raw.items() if k != "sigma" and not k.startswith("aux_")}
    out = composite(raw["sigma"], values, z, rays_d, bgs)
    out["z"] = z
    out.update(aux)
    return out
