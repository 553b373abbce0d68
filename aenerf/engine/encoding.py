"""NeRF positional encoding gamma(p) = (p, sin(2^k pi p), cos(2^k pi p)), k < n_freqs."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    def __init__(self, n_freqs: int, include_input: bool = True, in_dim: int = 3):
        super().__init__()
        self.n_freqs, self.include_input, self.in_dim = n_freqs, include_input, in_dim
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs)) * math.pi, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (int(self.include_input) + 2 * self.n_freqs)

    def forward(self, x: Tensor) -> Tensor:
        parts = [x] if self.include_input else []
        if self.n_freqs:
            xf = x[..., None, :] * self.freqs[:, None]  # (..., F, in)
            parts += [torch.sin(xf).flatten(-2), torch.cos(xf).flatten(-2)]
        return torch.cat(parts, -1)
