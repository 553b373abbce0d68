"""The NeRF MLP body with colour, density and optional parsing-mask heads.

Layout of the official AD-NeRF/DFRF face NeRF (``Face_Feature_NeRF``,
``sstzal/DFRF NeRFs/run_nerf_helpers_deform.py`` 601-659; AD-NeRF ``run_nerf_helpers.py``
166-188): ``depth`` ReLU layers of ``width`` on [gamma(x), cond], the input re-injected after
layer ``depth // 2`` (``skips=[4]`` for D=8); density from the trunk feature h; colour from
``1 + depth // 4`` ReLU layers of ``width // 2`` on [h, gamma(d)] (``views_linears``; the
official ``feature = h``, no extra feature layer) and a linear layer to RGB. ``cond`` is
whatever conditions the field (audio code, aggregated reference features).
Activations: density ``softplus`` (>= 0) by default where the official code uses ReLU + 1e-6
(``density="relu"``, ``raw2alpha`` in both official ``raw2outputs``; the method's ``density``
setting, ``relu`` under ``train.preset=official``). Softplus is a deliberate deviation: NeRF's ReLU
can leave a whole network with zero density and no gradient at init; with the background as the
last sample, see :mod:`aebench.engine.volume`, a small positive density shows the background
just as ReLU's does. Colour and mask sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


#: density activations: softplus (aebench's default) or the official ReLU + 1e-6
DENSITIES = ("softplus", "relu")


class NeRFMLP(nn.Module):
    def __init__(
        self,
        in_dim: int,
        dir_dim: int,
        cond_dim: int = 0,
        width: int = 256,
        depth: int = 8,
        with_mask: bool = False,
        density: str = "softplus",
    ):
        super().__init__()
        if density not in DENSITIES:
            raise ValueError(f"density must be one of {', '.join(DENSITIES)}, got {density!r}")
        self.density = density
        self.skip = depth // 2
        first = in_dim + cond_dim
        layers = []
        for i in range(depth):
            fan_in = first if i == 0 else width + (first if i == self.skip + 1 else 0)
            layers.append(nn.Linear(fan_in, width))
        self.layers = nn.ModuleList(layers)
        self.sigma = nn.Linear(width, 1)
        colour: list[nn.Module] = [nn.Linear(width + dir_dim, width // 2), nn.ReLU(True)]
        for _ in range(depth // 4):
            colour += [nn.Linear(width // 2, width // 2), nn.ReLU(True)]
        self.rgb = nn.Sequential(*colour, nn.Linear(width // 2, 3))
        self.mask = nn.Linear(width, 1) if with_mask else None

    def forward(self, x: Tensor, d: Tensor, cond: Tensor | None = None) -> dict[str, Tensor]:
        """``x`` (..., in_dim) encoded points, ``d`` (..., dir_dim) encoded directions, ``cond``
        (..., cond_dim). Returns sigma (...), rgb (..., 3) and, with a mask head, mask (...)."""
        inp = x if cond is None else torch.cat([x, cond], -1)
        h = inp
        for i, layer in enumerate(self.layers):
            if i == self.skip + 1:
                h = torch.cat([h, inp], -1)
            h = torch.relu(layer(h))
        raw = self.sigma(h)[..., 0]
        out = {
            "sigma": F.softplus(raw) if self.density == "softplus" else torch.relu(raw) + 1e-6,
            "rgb": torch.sigmoid(self.rgb(torch.cat([h, d], -1))),
        }
        if self.mask is not None:
            out["mask"] = torch.sigmoid(self.mask(h)[..., 0])
        return out
