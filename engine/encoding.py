"""NeRF positional encoding as the official code computes it: gamma(p) = (p, sin(2^0 p),
cos(2^0 p), sin(2^1 p), cos(2^1 p), ..., sin(2^(n-1) p), cos(2^(n-1) p)), each block over all
input dimensions (``Embedder`` / ``get_embedder(multires)``, ``log_sampling=True``, no factor pi:
NeRFs/run_nerf_helpers_deform.py lines 21-71 of sstzal/DFRF, NeRFs/HeadNeRF/run_nerf_helpers.py
lines 21-70 of YudongGuo/AD-NeRF; tests/baselines/test_golden.py compares it with their output).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    """(..., in_dim) -> (..., out_dim) with ``out_dim = in_dim (1 + 2 n_freqs)`` (without the
    input when ``include_input`` is False)."""

    def __init__(self, n_freqs: int, include_input: bool = True, in_dim: int = 3):
        super().__init__()
        self.n_freqs, self.include_input, self.in_dim = n_freqs, include_input, in_dim
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs).float(), persistent=False)  # exact powers of two

    @property
    def out_dim(self) -> int:
        return self.in_dim * (int(self.include_input) + 2 * self.n_freqs)

    def forward(self, x: Tensor) -> Tensor:
        parts = [x] if self.include_input else []
        if self.n_freqs:
            xf = x[..., None, :] * self.freqs.to(x.dtype)[:, None]  # (..., F, in)
            parts.append(torch.stack([torch.sin(xf), torch.cos(xf)], -2).flatten(-3))  # sin, cos per frequency
        return torch.cat(parts, -1)
