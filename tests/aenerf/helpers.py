"""Tiny tensors shaped like a training batch, for module tests that need no data on disk."""

from __future__ import annotations

import torch

from aebench.config import load_config


def smoke_cfg(*overrides: str):
    return load_config(["device=cpu", "train.n_coarse=4", "train.n_fine=4", *overrides], scale="smoke")


def orbit_pose(yaw: float, dist: float = 4.0) -> torch.Tensor:
    """Camera at distance ``dist`` looking at the origin, rotated by ``yaw`` about y (OpenCV axes)."""
    c, s = torch.cos(torch.tensor(float(yaw))), torch.sin(torch.tensor(float(yaw)))
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    c2w = torch.eye(4)
    c2w[:3, :3] = rot
    c2w[:3, 3] = rot @ torch.tensor([0.0, 0.0, -dist])
    return c2w


def fake_batch(n_rays: int = 64, n_refs: int = 4, size: int = 16, channels: int = 8, window: int = 8, seed: int = 0):
    from aenerf.engine.rays import pixel_rays

    g = torch.Generator().manual_seed(seed)
    intr = torch.tensor([size * 1.2, size / 2, size / 2])
    uv = torch.rand(n_rays, 2, generator=g) * size
    rays_o, rays_d = pixel_rays(orbit_pose(0.0), intr, uv)
    labels = torch.randint(0, 4, (n_rays,), generator=g)
    labels[:4] = 2
    labels[4:8] = 1
    return {
        "rays_o": rays_o, "rays_d": rays_d, "rgb": torch.rand(n_rays, 3, generator=g), "label": labels,
        "bg": torch.rand(n_rays, 3, generator=g), "audio": torch.randn(window, channels, generator=g),
        "ref_audio": torch.randn(n_refs, window, channels, generator=g),
        "ref_images": torch.rand(n_refs, size, size, 3, generator=g),
        "ref_c2w": torch.stack([orbit_pose(0.1 * (i + 1)) for i in range(n_refs)]),
        "intrinsics": intr, "near": 2.0, "far": 6.0, "generator": g,
    }
