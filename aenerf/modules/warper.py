"""Audio-aware warper (AE-NeRF eq. 5, supplementary Fig. 7).

dp_i = (du_i, dv_i) = Warper(x, a, a_ref_i, d, d_ref_i): three fully connected layers with
ReLU in between. Resolutions of the paper's open points:

- x enters positionally encoded (as everywhere else in the NeRF), d and d_ref_i as unit
  vectors, a and a_ref_i as the AudioNet codes.
- Offsets are in pixels of the reference image. The last layer starts at zero so training
  begins from plain projection (p'_i = p_i), the "w/o Warper" configuration.
- L_o (eq. 11) = mean over references and points of sqrt(du^2 + dv^2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Warper(nn.Module):
    def __init__(self, x_dim: int, audio_dim: int, width: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(x_dim + 2 * audio_dim + 6, width), nn.ReLU(True),
                                 nn.Linear(width, width), nn.ReLU(True), nn.Linear(width, 2))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, a: Tensor, a_ref: Tensor, d: Tensor, d_ref: Tensor) -> Tensor:
        """``x`` (P, x_dim) encoded points, ``a`` (A,) target audio code, ``a_ref`` (L, A),
        ``d`` (P, 3) target view directions, ``d_ref`` (L, P, 3). Returns (L, P, 2) offsets."""
        n_ref, p = d_ref.shape[:2]
        inp = torch.cat([x.expand(n_ref, -1, -1), a.expand(n_ref, p, -1), a_ref[:, None].expand(-1, p, -1),
                         d.expand(n_ref, -1, -1), d_ref], -1)
        return self.net(inp)


def offset_loss(offsets: Tensor) -> Tensor:
    """L_o = 1/(L|P|) sum_i sum_x ||dp_i(x)|| (eq. 11)."""
    return offsets.pow(2).sum(-1).add(1e-12).sqrt().mean()
