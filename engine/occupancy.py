"""Empty-space skipping: an occupancy grid over the cameras' view volume (``train.sampler=occupancy``).

As Instant-NGP's density grid and nerfacc's ``OccGridEstimator`` (``nerfacc/estimators/occ_grid.py``:
``update_every_n_steps``, ``ema_decay`` 0.95, ``occ_thre`` 0.01, one jittered point per cell):
a (R, R, R) grid over the axis-aligned box that holds every sample of every training (or
rendering) camera between ``near`` and ``far`` keeps, per cell, the largest density seen
there, decayed by ``decay`` at each update; a cell is occupied while that density could give
a sample an opacity of at least ``threshold`` (alpha = 1 - exp(-sigma * step), ``step`` the
coarse sample spacing). The occupied set is dilated by one cell, so a surface that moves with
the audio (the mouth) or falls between the jittered points is not cut off. Points outside the
box count as occupied (nothing there is skipped).

The fields here are conditioned (audio code, reference frames), so the grid holds the union
of the densities of the conditions it was updated with: while training, one update every
``train.occ_every`` steps with that step's audio code and references (decaying, as the field
changes); for a render, a fresh grid holding the union (no decay) of the densities under the
audio codes of every 10th frame of the driving audio. It lives outside the
model's state dict: checkpoints are the same whichever sampler trained them, and a resumed
training run starts a fresh grid (updated at its first step).

Cost: an update evaluates the density at R^3 points (all cells for the first
``OCC_FULL_UPDATES`` updates, then a random quarter), and packing the occupied samples
(``nonzero``) synchronises a CUDA device once per pass, which the hierarchical sampler never does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.engine.rays import pixel_rays

EMA_DECAY = 0.95  # nerfacc OccGridEstimator.update_every_n_steps default
UPDATE_CHUNK = 65536  # points per density evaluation while updating


def frustum_bounds(poses: Tensor, intrinsics: Tensor, h: int, w: int, near: float, far: float) -> Tensor:
    """(2, 3) min/max corner of the box holding every camera ray of ``poses`` (V, 4, 4) between
    depths ``near`` and ``far`` (the rays of the image corners bound them)."""
    corners = torch.tensor([[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]], device=poses.device, dtype=poses.dtype)
    _, cam = pixel_rays(torch.eye(4, device=poses.device, dtype=poses.dtype), intrinsics.to(poses.dtype), corners)
    d = torch.einsum("vij,cj->vci", poses[:, :3, :3], cam)  # (V, 4, 3) corner directions in the world
    o = poses[:, None, :3, 3]
    pts = torch.cat([o + d * near, o + d * far], 1).reshape(-1, 3).float()
    return torch.stack([pts.min(0).values, pts.max(0).values])


def cameras_box(cameras: list[tuple]) -> Tensor:
    """(2, 3) union of the :func:`frustum_bounds` of ``cameras`` ((poses, intrinsics, h, w, near, far) each)."""
    boxes = torch.stack([frustum_bounds(*cam) for cam in cameras])  # (C, 2, 3)
    return torch.stack([boxes[:, 0].min(0).values, boxes[:, 1].max(0).values])


class OccupancyGrid:
    """A density grid over ``bounds`` (2, 3); see the module docstring.

    ``resolution`` cells per axis; ``sigma_threshold`` the density below which a cell is empty.
    A new grid has seen nothing and counts every cell as occupied until its first update.
    """

    def __init__(self, bounds: Tensor, resolution: int, sigma_threshold: float, decay: float = EMA_DECAY):
        self.bounds = bounds.float()
        self.resolution = int(resolution)
        self.sigma_threshold = float(sigma_threshold)
        self.decay = float(decay)
        r = self.resolution
        dev = self.bounds.device
        self.density = torch.zeros(r, r, r, device=dev)
        self.occupied_cells = torch.ones(r, r, r, dtype=torch.bool, device=dev)
        self.updates = 0

    @classmethod
    def for_cameras(
        cls, cameras: list[tuple], resolution: int, alpha_threshold: float, n_samples: int, decay: float = EMA_DECAY
    ) -> OccupancyGrid:
        """A grid over the view volume of ``cameras`` ((poses, intrinsics, h, w, near, far) each; the
        union of their boxes): a cell is occupied while its density gives a sample
        ``alpha_threshold`` opacity at the spacing of ``n_samples`` samples in [near, far] (the
        finest spacing of the cameras)."""
        bounds = cameras_box(cameras)
        sigma = min(-math.log(1.0 - alpha_threshold) / ((far - near) / max(n_samples, 1)) for *_, near, far in cameras)
        return cls(bounds, resolution, sigma, decay)

    @property
    def occupied_fraction(self) -> float:
        return float(self.occupied_cells.float().mean())

    def _cell_points(self, cells: Tensor, generator: torch.Generator | None) -> Tensor:
        """One uniformly jittered point (P, 3) in each cell of flat indices ``cells`` (P,)."""
        r = self.resolution
        ijk = torch.stack([cells // (r * r), (cells // r) % r, cells % r], -1).float()
        u = torch.rand(ijk.shape, device=ijk.device, generator=generator)
        lo, hi = self.bounds
        return lo + (ijk + u) / r * (hi - lo)

    @torch.no_grad()
    def update(self, density_fn: Callable[[Tensor], Tensor], generator: torch.Generator | None = None, fraction: float = 1.0) -> None:
        """Decay every cell's density and take the maximum with ``density_fn(points)`` (P, 3) ->
        (P,) at one jittered point per cell, for all cells (the first update, or ``fraction`` 1)
        or a random ``fraction`` of them; then recompute the occupied (dilated) cells."""
        n = self.resolution**3
        dev = self.density.device
        if self.updates == 0 or fraction >= 1.0:
            cells = torch.arange(n, device=dev)
        else:
            cells = torch.randperm(n, device=dev, generator=generator)[: max(1, int(n * fraction))]
        pts = self._cell_points(cells, generator)
        sigma = torch.cat([density_fn(pts[i : i + UPDATE_CHUNK]).float() for i in range(0, cells.numel(), UPDATE_CHUNK)])
        flat = self.density.view(-1)
        flat.mul_(self.decay)
        flat[cells] = torch.maximum(flat[cells], sigma)
        occ = (self.density > self.sigma_threshold).float()[None, None]
        self.occupied_cells = F.max_pool3d(occ, 3, stride=1, padding=1)[0, 0] > 0
        self.updates += 1

    def occupied(self, points: Tensor) -> Tensor:
        """Boolean (...,) for points (..., 3): inside an occupied cell, or outside the grid."""
        lo, hi = self.bounds
        rel = (points - lo) / (hi - lo)
        inside = ((rel >= 0) & (rel < 1)).all(-1)
        r = self.resolution
        ijk = (rel * r).long().clamp(0, r - 1)
        return ~inside | self.occupied_cells[ijk[..., 0], ijk[..., 1], ijk[..., 2]]
