"""Camera rays and projections in the identity's convention: camera-to-world poses with
OpenCV axes (x right, y down, z forward) and pinhole intrinsics (focal, cx, cy) in pixels.

Ray directions are *not* normalised: ``d = R @ ((u - cx) / f, (v - cy) / f, 1)``, so the ray
parameter ``t`` is the depth along the camera's z axis and ``near``/``far`` are depths
(as NeRF's LLFF/face setups use them). Pixel ``(u, v)`` means the pixel's centre
``(u + 0.5, v + 0.5)`` when built from integer indices.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_rays(c2w: Tensor, intrinsics: Tensor, uv: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through pixel positions ``uv`` (N, 2) (continuous x, y) of a camera (4, 4)."""
    f, cx, cy = intrinsics[0], intrinsics[1], intrinsics[2]
    dirs = torch.stack([(uv[:, 0] - cx) / f, (uv[:, 1] - cy) / f, torch.ones_like(uv[:, 0])], -1)
    rays_d = dirs @ c2w[:3, :3].T
    rays_o = c2w[:3, 3].expand_as(rays_d)
    return rays_o, rays_d


def pixel_centers(h: int, w: int, device=None) -> Tensor:
    """(H*W, 2) centres (x + 0.5, y + 0.5) of every pixel, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).float() + 0.5


def image_rays(h: int, w: int, intrinsics: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """Rays of every pixel of an (h, w) image, row-major: (H*W, 3) origins and directions."""
    return pixel_rays(c2w, intrinsics, pixel_centers(h, w, c2w.device))


def project(points: Tensor, c2w: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points (..., 3) into a camera: pixel coordinates (..., 2) (x, y, in the
    same continuous convention as :func:`pixel_rays`) and camera depth (...,)."""
    rot, trans = c2w[:3, :3], c2w[:3, 3]
    cam = (points - trans) @ rot  # R^T (p - t), row-vector form
    z = cam[..., 2]
    zs = z.clamp(min=1e-6)
    f, cx, cy = intrinsics[0], intrinsics[1], intrinsics[2]
    uv = torch.stack([f * cam[..., 0] / zs + cx, f * cam[..., 1] / zs + cy], -1)
    return uv, z


def view_dirs(rays_d: Tensor) -> Tensor:
    """Unit viewing directions."""
    return rays_d / rays_d.norm(dim=-1, keepdim=True).clamp(min=1e-9)
