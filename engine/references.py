"""The reference scheme shared by DFRF and AE-NeRF (DFRF's, which AE-NeRF builds on): a
shallow CNN without downsampling gives dense features of each reference image; 3D samples
are projected into every reference (its own pose and intrinsics), the projection is clamped
into the image and features are sampled bilinearly there.

Facts from ``sstzal/DFRF`` (``NeRFs/run_nerf_deform.py`` 134-141, ``run_nerf_helpers_deform.py``
476-488): the CNN's input per pixel is gamma_5 of the reference's RGB (33 channels, the raw
RGB only as the identity term of the encoding) and gamma_5 of the reference camera position
(33), i.e. 66 channels; two 3x3 convolutions, stride 1, 64 channels, ReLU; then a per-pixel
linear layer to 128 channels. The sampled token is that feature plus the pixel position
(``torch.cat((features, indices.int().float()), -1)``, 293-295): no raw RGB is appended.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.engine.encoding import PositionalEncoding
from aebench.engine.rays import project


class FeatureExtractor(nn.Module):
    """DFRF's reference CNN: [gamma(rgb), gamma(camera position)] -> 2 x conv3x3 -> linear."""

    def __init__(self, pe: int = 5, width: int = 64, feat_dim: int = 128):
        super().__init__()
        self.pe = PositionalEncoding(pe)
        self.convs = nn.Sequential(
            nn.Conv2d(2 * self.pe.out_dim, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(width, feat_dim)
        self.out_dim = feat_dim

    def forward(self, images: Tensor, c2w: Tensor) -> Tensor:
        """(L, H, W, 3) images in [0, 1] and (L, 4, 4) poses -> (L, feat_dim, H, W)."""
        l, h, w, _ = images.shape
        cam = self.pe(c2w[:, :3, 3])[:, None, None].expand(l, h, w, -1)
        x = torch.cat([self.pe(images), cam], -1).permute(0, 3, 1, 2)
        return self.fc(self.convs(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def project_to_refs(points: Tensor, ref_c2w: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """World points (P, 3) into L references (L, 4, 4): pixel positions (L, P, 2) and unit
    directions (L, P, 3) from each reference camera centre to the point (d_ref_i)."""
    uv = torch.stack([project(points, c2w, intrinsics)[0] for c2w in ref_c2w])
    dirs = points[None] - ref_c2w[:, None, :3, 3]
    return uv, dirs / dirs.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def clamp_to_image(uv: Tensor, h: int, w: int) -> Tensor:
    """Pixel positions (..., 2) clamped to the centres of the border pixels (DFRF clamps its
    projected indices into the image before sampling)."""
    lo = uv.new_tensor([0.5, 0.5])
    hi = uv.new_tensor([w - 0.5, h - 0.5])
    return torch.maximum(torch.minimum(uv, hi), lo)


def sample_features(maps: Tensor, uv: Tensor, padding: str = "zeros") -> Tensor:
    """Bilinear features of ``maps`` (L, C, H, W) at pixel positions ``uv`` (L, P, 2)
    (continuous, pixel i spans [i, i+1)); outside the image gives zeros (``padding`` "zeros")
    or the border pixels ("border"). Returns (L, P, C)."""
    h, w = maps.shape[-2:]
    grid = torch.stack([uv[..., 0] / w * 2 - 1, uv[..., 1] / h * 2 - 1], -1)[:, :, None]  # (L, P, 1, 2)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out[..., 0].permute(0, 2, 1)


def reference_tokens(maps: Tensor, uv: Tensor) -> Tensor:
    """DFRF's per-reference token at (already clamped) positions ``uv`` (L, P, 2): the sampled
    feature and the position divided by the image size, (L, P, C + 2)."""
    h, w = maps.shape[-2:]
    return torch.cat([sample_features(maps, uv), uv / uv.new_tensor([w, h])], -1)
