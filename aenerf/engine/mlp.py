"""The NeRF MLP body with colour, density and optional parsing-mask heads.

Layout of the original NeRF (and DFRF's face NeRF): ``depth`` ReLU layers of ``width`` on
[gamma(x), cond] with a skip connection re-injecting the input at ``depth // 2``; density
from the trunk; colour from a ``width // 2`` layer on [trunk feature, gamma(d)]. ``cond``
is whatever conditions the field (audio code, aggregated reference features).
Activations: density softplus (>= 0; mip-NeRF's choice: NeRF's ReLU can leave a whole
network with zero density and no gradient at init), colour and mask sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NeRFMLP(nn.Module):
    def __init__(self, in_dim: int, dir_dim: int, cond_dim: int = 0, width: int = 256, depth: int = 8,
                 with_mask: bool = False):
        super().__init__()
        self.skip = depth // 2
        first = in_dim + cond_dim
        layers = []
        for i in range(depth):
            fan_in = first if i == 0 else width + (first if i == self.skip else 0)
            layers.append(nn.Linear(fan_in, width))
        self.layers = nn.ModuleList(layers)
        self.sigma = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.rgb = nn.Sequential(nn.Linear(width + dir_dim, width // 2), nn.ReLU(True), nn.Linear(width // 2, 3))
        self.mask = nn.Linear(width, 1) if with_mask else None

    def forward(self, x: Tensor, d: Tensor, cond: Tensor | None = None) -> dict[str, Tensor]:
        """``x`` (..., in_dim) encoded points, ``d`` (..., dir_dim) encoded directions, ``cond``
        (..., cond_dim). Returns sigma (...), rgb (..., 3) and, with a mask head, mask (...)."""
        inp = x if cond is None else torch.cat([x, cond], -1)
        h = inp
        for i, layer in enumerate(self.layers):
            if i == self.skip and i > 0:
                h = torch.cat([h, inp], -1)
            h = torch.relu(layer(h))
        out = {"sigma": F.softplus(self.sigma(h)[..., 0]),
               "rgb": torch.sigmoid(self.rgb(torch.cat([self.feature(h), d], -1)))}
        if self.mask is not None:
            out["mask"] = torch.sigmoid(self.mask(h)[..., 0])
        return out
