"""Audio-aware warper (AE-NeRF eq. 5, supplementary Fig. 7).

dp_i = (du_i, dv_i) = Warper(x, a, a_ref_i, d, d_ref_i): three fully connected layers with
ReLU in between. Resolutions of the paper's open points:

- x enters positionally encoded (as everywhere else in the NeRF), d and d_ref_i as unit
  vectors, a and a_ref_i as the AudioNet codes.
- Offsets are in pixels of the reference image. The last layer starts at zero so training
  begins from plain projection (p'_i = p_i), the "w/o Warper" configuration.
- L_o (eq. 11) = mean over references and points of sqrt(du^2 + dv^2).

The first layer on [x, a, a_ref_i, d, d_ref_i] is computed as the sum of its blocks, each on
the rows it varies over: x and d per point, a once, a_ref_i once per reference, only d_ref_i
per point and reference (the same linear map; x is not repeated L times).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Warper(nn.Module):
    def __init__(self, x_dim: int, audio_dim: int, width: int = 128):
        super().__init__()
        self.blocks = [x_dim, audio_dim, audio_dim, 3, 3]  # input columns: x, a, a_ref, d, d_ref
        self.net = nn.Sequential(
            nn.Linear(x_dim + 2 * audio_dim + 6, width), nn.ReLU(True), nn.Linear(width, width), nn.ReLU(True), nn.Linear(width, 2)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, a: Tensor, a_ref: Tensor, d: Tensor, d_ref: Tensor) -> Tensor:
        """``x`` (P, x_dim) encoded points, ``a`` (A,) target audio code, ``a_ref`` (L, A),
        ``d`` (P, 3) target view directions, ``d_ref`` (L, P, 3). Returns (L, P, 2) offsets."""
        first = self.net[0]
        w_x, w_a, w_ar, w_d, w_dr = first.weight.split(self.blocks, dim=1)
        per_point = x @ w_x.T + d @ w_d.T  # (P, W)
        shared = a @ w_a.T + first.bias  # (W,)
        per_ref = a_ref @ w_ar.T  # (L, W)
        h = per_point[None] + (per_ref + shared)[:, None] + d_ref @ w_dr.T  # (L, P, W)
        return self.net[2:](torch.relu(h))


def offset_norm(offsets: Tensor) -> Tensor:
    """(P,) each point's offset length ||dp_i(x)|| averaged over the L references, from offsets
    (L, P, 2): the mean over points is L_o = 1/(L|P|) sum_i sum_x ||dp_i(x)|| (eq. 11)."""
    return offsets.pow(2).sum(-1).add(1e-12).sqrt().mean(0)
