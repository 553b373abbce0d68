"""Volume rendering (NeRF eq. / AE-NeRF eq. 8) and the coarse-to-fine ray renderer.

A *field* is any callable ``field(points, viewdirs, level, rays=None) -> dict`` with
``points`` (N, S, 3), unit ``viewdirs`` (N, 3) and ``level`` ``"coarse"`` or ``"fine"``;
it returns at least ``"sigma"`` (N, S) non-negative densities and ``"rgb"`` (N, S, 3)
colours in [0, 1]. Any other (N, S, C) or (N, S) output (e.g. a parsing mask) is composited
the same way; keys beginning with ``aux_`` are passed through untouched (e.g. warper
offsets for a regulariser). With empty-space skipping (:mod:`aebench.engine.occupancy`) only
the samples in occupied space are evaluated, packed as N = M "rays" of one sample each;
``rays`` (M,) then names the batch ray each row belongs to, for per-ray conditioning (AE-NeRF's
ray groups), and skipped samples have density 0 and value 0.

A field may also have a ``features(points, viewdirs, rays=None) -> dict`` attribute: the
per-sample inputs that do not depend on the level (e.g. reference features aggregated at the
point), each (N, S, ...); then ``field(..., features=...)`` takes them instead of computing
them. The fine pass evaluates the coarse samples again, so with it the renderer computes each
sample's features once per call (:class:`FeatureCache`) and the fine pass reuses the coarse
samples': the same numbers, fewer evaluations of the expensive part.

Background convention (the official AD-NeRF/DFRF ``raw2outputs``: ``NeRFs/HeadNeRF/run_nerf.py``
and ``NeRFs/run_nerf_deform.py``, ``rgb = torch.cat((rgb[:, :-1], bc_rgb[:, None]), 1)`` with a
last interval of 1e10): the *last sample's* value is the ray's background value and it absorbs
all transmittance left, so ``C = sum_{i<S} T_i alpha_i c_i + T_S * B``. A field that is empty
(any small density, softplus or ReLU) therefore shows the background exactly; the field's own
output at the last sample is never used.
"""

from __future__ import annotations

import math

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from aebench.engine.sampling import sample_pdf, stratified, stratified_levels

if TYPE_CHECKING:
    from aebench.engine.occupancy import OccupancyGrid

SUM_STOP = 1e-4  # a sum_ value counts the samples before the transmittance falls below this (ER-NeRF's T_thresh)
STOP_ROUNDS = 4  # with early termination a pass evaluates its samples in this many depth rounds

Field = Callable[..., dict]


def composite(
    sigma: Tensor, values: Mapping[str, Tensor], z: Tensor, rays_d: Tensor, backgrounds: Mapping[str, Tensor | float] | None = None
) -> dict[str, Tensor]:
    """Alpha-composite per-sample ``values`` (N, S[, C]) along rays, sigma (N, S), z (N, S).

    alpha_i = 1 - exp(-sigma_i delta_i) with delta_i = (z_{i+1} - z_i) |d| for i < S; the last
    sample is the background: alpha_S = 1 and its value is ``backgrounds[name]`` ((N, C) or a
    scalar; 0 when not given). T_i = prod_{j<i} (1 - alpha_j), w_i = T_i alpha_i. Returns each
    composited value, ``weights`` (N, S; the last column is the background's share),
    ``acc`` (N,) the field's opacity (sum of the first S-1 weights) and ``depth`` (N,)
    (expected z, the background counting as the last sample's z).

    A value whose name begins with ``sum_`` (N, S) is summed *unweighted* over the field's
    samples before the ray's transmittance falls below :data:`SUM_STOP` (ER-NeRF's ambient
    terms, as its CUDA ``composite_rays_train_triplane`` accumulates them).
    """
    backgrounds = backgrounds or {}
    dists = (z[:, 1:] - z[:, :-1]) * rays_d.norm(dim=-1, keepdim=True)
    alpha = 1.0 - torch.exp(-sigma[:, :-1] * dists)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], -1), -1)  # (N, S)
    weights = torch.cat([alpha * trans[:, :-1], trans[:, -1:]], -1)
    acc = weights[:, :-1].sum(-1)
    out = {"weights": weights, "acc": acc, "depth": (weights * z).sum(-1)}
    for name, v in values.items():
        if name.startswith("sum_"):
            out[name] = (v[:, :-1] * (trans[:, :-1] >= SUM_STOP)).sum(-1)
            continue
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


class SampleCount:
    """Samples the field evaluated and rays rendered inside :func:`count_samples` (summed over
    coarse and fine passes: today's sampler evaluates n_coarse + (n_coarse + n_fine) per ray),
    and the samples whose level-independent features were computed (a field with ``features``:
    each sample once, n_coarse + n_fine per ray at most)."""

    def __init__(self) -> None:
        self.evaluated: Tensor | int = 0  # device tensors: counting never synchronises
        self.features: Tensor | int = 0
        self.rays = 0

    @property
    def per_ray(self) -> float:
        return float(self.evaluated) / max(self.rays, 1)

    @property
    def features_per_ray(self) -> float:
        return float(self.features) / max(self.rays, 1)


_COUNTERS: list[SampleCount] = []


@contextmanager
def count_samples() -> Iterator[SampleCount]:
    """Count the field evaluations of every :func:`render_rays` call inside the block."""
    counter = SampleCount()
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        _COUNTERS.remove(counter)


def render_rays(
    field: Field,
    rays_o: Tensor,
    rays_d: Tensor,
    near: float,
    far: float,
    bg_rgb: Tensor,
    n_coarse: int,
    n_fine: int,
    perturb: bool,
    generator: torch.Generator | None = None,
    backgrounds: Mapping[str, Tensor | float] | None = None,
    occupancy: OccupancyGrid | None = None,
    stop_eps: float = 0.0,
    proposal: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, dict[str, Tensor]]:
    """Coarse pass on stratified samples, then (``n_fine`` > 0) a fine pass on the coarse
    samples plus ``n_fine`` importance samples. Colour is composited over ``bg_rgb`` (N, 3)
    (the identity's background pixel of each ray); other outputs over ``backgrounds``.

    With an ``occupancy`` grid only samples in occupied cells are evaluated (never the last,
    background sample), and with ``stop_eps`` > 0 (inference) a ray stops once its
    transmittance falls below it: its later samples are skipped. Without them every sample is
    evaluated, as NeRF does.

    With a ``proposal`` (density (P,) at points (P, 3); :mod:`aebench.engine.proposal`)
    the stratified samples go through it instead of the field, and the field's one pass
    ("fine") evaluates only the ``n_fine`` samples drawn from the proposal's weights and the
    background sample at ``far``; while gradients are on, that pass also holds
    ``proposal_loss`` (the interlevel loss that trains the proposal).

    Returns ``{"coarse": {...}, "fine": {...}}`` (``fine`` absent without fine samples;
    ``coarse`` absent with a proposal), each with the composited outputs, ``weights``, ``acc``,
    ``depth``, ``z`` and the aux_ keys (none with early termination).
    """
    from aebench.engine.rays import view_dirs

    n = rays_o.shape[0]
    _count(0, n)
    dirs = view_dirs(rays_d)
    bgs = dict(backgrounds or {})
    bgs["rgb"] = bg_rgb
    z = stratified(near, far, n, n_coarse, perturb, rays_o.device, generator)
    skip = (occupancy, stop_eps)
    if proposal is not None:
        return {"fine": _proposal_pass(field, proposal, rays_o, rays_d, dirs, z, n_fine, perturb, generator, bgs, skip)}
    cache = FeatureCache(n, n_coarse, z.device) if hasattr(field, "features") else None
    result = {"coarse": _pass(field, "coarse", rays_o, rays_d, dirs, z, bgs, *skip, cache)}
    if n_fine > 0:
        zc = result["coarse"]["z"]
        mids = 0.5 * (zc[:, 1:] + zc[:, :-1])
        extra = sample_pdf(
            mids, result["coarse"]["weights"][:, 1:-1].detach(), n_fine, deterministic=not perturb, generator=generator
        ).detach()
        z_all, order = torch.sort(torch.cat([zc, extra], -1), -1)
        if cache is not None:
            extra_feats = None
            if occupancy is None and stop_eps <= 0:  # the dense pass evaluates every sample
                extra_feats = field.features(_points(rays_o, rays_d, extra), dirs)
                _count(extra.numel(), features=True)
            cache = cache.merged(order, extra_feats)
        result["fine"] = _pass(field, "fine", rays_o, rays_d, dirs, z_all, bgs, *skip, cache)
    return result


def _proposal_pass(
    field: Field, proposal: Callable[[Tensor], Tensor], rays_o, rays_d, dirs, z: Tensor, n_fine: int, perturb: bool, generator, bgs, skip
) -> dict[str, Tensor]:
    """The field on ``n_fine`` samples drawn from the proposal's weights at the stratified ``z``
    (N, P), one per equal slice of its CDF (:func:`stratified_levels`), plus the background
    sample (see :func:`render_rays`). Rendering with early termination (``stop_eps`` > 0) also
    skips each sample whose interval the proposal bounds below
    :data:`~aebench.engine.proposal.EMPTY_BOUND`: the interlevel loss trains that bound
    to hold the field's weight there, so a skipped sample would have added less than it."""
    from aebench.engine.proposal import EMPTY_BOUND, interlevel_loss, interval_envelope

    if n_fine < 1:
        raise ValueError("the proposal sampler draws the field's samples from the proposal: train.n_fine must be at least 1")
    n, p = z.shape
    sigma = proposal(_points(rays_o, rays_d, z).reshape(-1, 3)).reshape(n, p)
    weights = composite(sigma, {}, z, rays_d)["weights"]
    mids = 0.5 * (z[:, 1:] + z[:, :-1])
    levels = stratified_levels(n, n_fine, perturb, z.device, generator)
    drawn = sample_pdf(mids, weights[:, 1:-1].detach(), n_fine, deterministic=not perturb, u=levels)
    z_fine = torch.cat([torch.sort(drawn.detach(), -1).values, z[:, -1:]], -1)
    cache = FeatureCache(n, n_fine + 1, z.device) if hasattr(field, "features") else None
    active = None
    if skip[1] > 0:  # rendering: the intervals the proposal bounds as empty are skipped
        bound = interval_envelope(z, z_fine[:, :-1], z_fine[:, 1:], weights[:, :-1])
        active = torch.cat([bound >= EMPTY_BOUND, torch.zeros_like(bound[:, :1], dtype=torch.bool)], -1)
    out = _pass(field, "fine", rays_o, rays_d, dirs, z_fine, bgs, *skip, cache, active)
    if torch.is_grad_enabled():
        out["proposal_loss"] = interlevel_loss(z, weights[:, :-1], z_fine, out["weights"][:, :-1])
    return out


class FeatureCache:
    """Per-sample features of a field with ``features`` (see the module docstring): dense
    (N, S, ...) tensors, zero where not computed, and ``have`` (N, S) which samples hold them."""

    def __init__(self, n: int, s: int, device) -> None:
        self.feats: dict[str, Tensor] | None = None
        self.have = torch.zeros(n, s, dtype=torch.bool, device=device)

    def dense(self, field: Field, pts: Tensor, dirs: Tensor) -> dict[str, Tensor]:
        """Every sample's features (computed now for a pass that has none yet)."""
        if self.feats is None:
            self.feats = field.features(pts, dirs)
            self.have = torch.ones_like(self.have)
            _count(pts.shape[0] * pts.shape[1], features=True)
        return self.feats

    def packed(self, field: Field, pts: Tensor, dirs: Tensor, r: Tensor, c: Tensor, col0: int = 0) -> dict[str, Tensor]:
        """The features (M, 1, ...) of samples (r, c) of ``pts`` (N, S', 3) (columns ``col0`` +
        c of the cache), computing those it does not have as packed (M', 1) rows."""
        gc = c + col0
        missing = ~self.have[r, gc]
        if missing.any():
            rm, cm = r[missing], c[missing]
            new = field.features(pts[rm, cm][:, None], dirs[rm], rays=rm)
            _count(rm.shape[0], features=True)
            n, s = self.have.shape
            if self.feats is None:
                self.feats = {k: v.new_zeros((n, s) + v.shape[2:]) for k, v in new.items()}
            self.feats = {k: self.feats[k].index_put((rm, cm + col0), new[k][:, 0]) for k in self.feats}
            self.have = self.have.index_put((rm, cm + col0), torch.ones_like(rm, dtype=torch.bool))
        return {k: v[r, gc][:, None] for k, v in self.feats.items()}

    def merged(self, order: Tensor, extra: dict[str, Tensor] | None) -> FeatureCache:
        """The cache of the fine pass: these samples followed by the importance samples (their
        features ``extra`` (N, E, ...) when computed, else none), reordered by ``order`` (N, S + E)."""
        n, e = order.shape[0], order.shape[1] - self.have.shape[1]
        rows = torch.arange(n, device=order.device)[:, None]
        out = FeatureCache(n, order.shape[1], order.device)
        out.have = torch.cat([self.have, torch.full((n, e), extra is not None, device=order.device)], 1)[rows, order]
        if self.feats is not None:
            out.feats = {
                k: torch.cat([v, extra[k] if extra is not None else v.new_zeros((n, e) + v.shape[2:])], 1)[rows, order]
                for k, v in self.feats.items()
            }
        elif extra is not None:
            raise ValueError("importance-sample features without the coarse samples' features")
        return out


def _pass(
    field: Field,
    level: str,
    rays_o,
    rays_d,
    dirs,
    z,
    bgs,
    occupancy: OccupancyGrid | None = None,
    stop_eps: float = 0.0,
    cache: FeatureCache | None = None,
    active: Tensor | None = None,
) -> dict[str, Tensor]:
    """One pass of the field over samples at ``z`` (N, S): every sample, or only the ``active``
    ones (N, S), those in occupied cells of ``occupancy``, and (``stop_eps``) those before the
    ray's transmittance falls below ``stop_eps``."""
    pts = _points(rays_o, rays_d, z)
    if occupancy is None and stop_eps <= 0 and active is None:
        raw = field(pts, dirs, level) if cache is None else field(pts, dirs, level, features=cache.dense(field, pts, dirs))
        _count(pts.shape[0] * pts.shape[1])
    else:
        if active is None:
            active = occupancy.occupied(pts) if occupancy is not None else torch.ones_like(z, dtype=torch.bool)
        active[:, -1] = False  # the background sample: its field value is never used
        raw = _sparse(field, level, pts, dirs, active, z, rays_d, stop_eps, cache)
    aux = {k: v for k, v in raw.items() if k.startswith("aux_")}
    values = {k: v for k, v in raw.items() if k != "sigma" and not k.startswith("aux_")}
    out = composite(raw["sigma"], values, z, rays_d, bgs)
    out["z"] = z
    out.update(aux)
    return out


def _points(rays_o: Tensor, rays_d: Tensor, z: Tensor) -> Tensor:
    """Sample positions (N, S, 3) at depths ``z`` (N, S) along rays (N, 3)."""
    return rays_o[:, None, :] + rays_d[:, None, :] * z[..., None]


def _count(evaluated, rays: int = 0, features: bool = False) -> None:
    for c in _COUNTERS:
        if features:
            c.features = c.features + evaluated
        else:
            c.evaluated = c.evaluated + evaluated
        c.rays += rays


def _sparse(
    field: Field,
    level: str,
    pts: Tensor,
    dirs: Tensor,
    active: Tensor,
    z: Tensor,
    rays_d: Tensor,
    stop_eps: float,
    cache: FeatureCache | None = None,
) -> dict[str, Tensor]:
    """The field at the ``active`` (N, S) samples only, scattered into dense (N, S[, C]) outputs
    (0 elsewhere). With ``stop_eps`` the samples go in :data:`STOP_ROUNDS` depth rounds, and a
    ray's samples after its transmittance fell below ``stop_eps`` are not evaluated."""
    n, s = active.shape
    if stop_eps <= 0:
        _count(active.sum())
        return _packed(field, level, pts, dirs, active, cache)
    dists = (z[:, 1:] - z[:, :-1]) * rays_d.norm(dim=-1, keepdim=True)
    log_t = torch.zeros(n, device=z.device)  # log transmittance before the current round
    parts: list[dict[str, Tensor]] = []
    per = -(-s // STOP_ROUNDS)
    for c0 in range(0, s, per):
        cols = slice(c0, min(c0 + per, s))
        act = active[:, cols] & (log_t > math.log(stop_eps))[:, None]
        _count(act.sum())
        if parts and not act.any():  # every ray has stopped or this depth is empty: nothing to evaluate
            parts.append({k: v.new_zeros((n, act.shape[1]) + v.shape[2:]) for k, v in parts[0].items()})
            continue
        part = _packed(field, level, pts[:, cols], dirs, act, cache, cols.start)
        parts.append({k: v for k, v in part.items() if not k.startswith("aux_")})
        d = dists[:, cols] if cols.stop < s else torch.cat([dists[:, cols.start :], torch.zeros_like(dists[:, :1])], -1)
        log_t = log_t - (part["sigma"] * d).sum(-1)
    return {k: torch.cat([p[k] for p in parts], 1) for k in parts[0]}


def _packed(
    field: Field, level: str, pts: Tensor, dirs: Tensor, active: Tensor, cache: FeatureCache | None = None, col0: int = 0
) -> dict[str, Tensor]:
    """Evaluate ``field`` on the active samples as (M, 1) rays and scatter back to (N, S)
    (``pts`` and ``active`` may be columns ``col0``... of the cache's samples)."""
    n, s = active.shape
    idx = active.nonzero()
    empty = idx.shape[0] == 0
    if empty:  # still one call, so every output exists with its shape; zeroed below
        idx = torch.zeros(1, 2, dtype=torch.long, device=active.device)
    r, c = idx[:, 0], idx[:, 1]
    if cache is None:
        raw = field(pts[r, c][:, None], dirs[r], level, rays=r)
    else:
        raw = field(pts[r, c][:, None], dirs[r], level, rays=r, features=cache.packed(field, pts, dirs, r, c, col0))
    out: dict[str, Tensor] = {}
    for k, v in raw.items():
        if k.startswith("aux_"):
            out[k] = v
            continue
        v = v[:, 0] * (0.0 if empty else 1.0)
        dense = v.new_zeros((n, s) + v.shape[1:])
        out[k] = dense.index_put((r, c), v)
    return out
