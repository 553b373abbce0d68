"""The reference scheme shared by DFRF and AE-NeRF: a shallow CNN without downsampling
gives dense features of each reference image; 3D samples are projected into every
reference (its own pose and intrinsics) and features are sampled bilinearly there.

The sampled feature is concatenated with the reference's RGB at the same point (as DFRF
and IBRNet do), so each reference contributes ``feat_dim + 3`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aenerf.engine.rays import project


class RefEncoder(nn.Module):
    """``layers`` 3x3 convolutions, stride 1 and same padding (no downsampling), ReLU
    between, ``3 -> width -> ... -> feat_dim``."""

    def __init__(self, feat_dim: int = 128, width: int = 64, layers: int = 4):
        super().__init__()
        chans = [3] + [width] * (layers - 1) + [feat_dim]
        mods: list[nn.Module] = []
        for i in range(layers):
            mods.append(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1))
            if i < layers - 1:
                mods.append(nn.ReLU(True))
        self.net = nn.Sequential(*mods)
        self.out_dim = feat_dim + 3

    def forward(self, images: Tensor) -> Tensor:
        """(L, H, W, 3) images in [0, 1] -> (L, feat_dim + 3, H, W) feature maps (features, RGB)."""
        x = images.permute(0, 3, 1, 2)
        return torch.cat([self.net(x * 2.0 - 1.0), x], 1)


def project_to_refs(points: Tensor, ref_c2w: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """World points (P, 3) into L references (L, 4, 4): pixel positions (L, P, 2) and unit
    directions (L, P, 3) from each reference camera centre to the point (d_ref_i)."""
    uv = torch.stack([project(points, c2w, intrinsics)[0] for c2w in ref_c2w])
    dirs = points[None] - ref_c2w[:, None, :3, 3]
    return uv, dirs / dirs.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def sample_features(maps: Tensor, uv: Tensor) -> Tensor:
    """Bilinear features of ``maps`` (L, C, H, W) at pixel positions ``uv`` (L, P, 2)
    (continuous, pixel i spans [i, i+1)); outside the image gives zeros. Returns (L, P, C)."""
    h, w = maps.shape[-2:]
    grid = torch.stack([uv[..., 0] / w * 2 - 1, uv[..., 1] / h * 2 - 1], -1)[:, :, None]  # (L, P, 1, 2)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[..., 0].permute(0, 2, 1)
