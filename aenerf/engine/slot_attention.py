"""Slot attention (Locatello et al. 2020) used as an audio-free aggregation of the L
reference features of each point (AE-NeRF Table 4 "w/o AAA").

Per point, the L reference features are the inputs and ``n_slots`` slots compete for them
(softmax over slots, weighted mean over inputs, GRU update, residual MLP) for ``iters``
rounds; the slots are then flattened: DFRF feeds them straight into its NeRF (``out_dim``
None, as the official code: helpers 567-569, 720); AE-NeRF's "w/o AAA" maps them by
FC-ReLU-FC to the width of the aggregated feature its NeRF takes (``out_dim``).
As DFRF's ``SlotAttention`` (``sstzal/DFRF NeRFs/run_nerf_helpers_deform.py`` 492-569): q/k/v
linear layers with biases, softmax over slots plus eps, GRU update and residual MLP.
Deviation: slots start from learned per-slot means instead of ``mu + sigma * randn`` (DFRF
samples them, at test time too), so inference is deterministic and slots keep a fixed order
for the final FC.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SlotAggregation(nn.Module):
    def __init__(self, in_dim: int, dim: int = 128, out_dim: int | None = 128, n_slots: int = 2, iters: int = 3):
        super().__init__()
        self.iters, self.n_slots, self.dim = iters, n_slots, dim
        self.inp = nn.Linear(in_dim, dim)
        self.norm_in, self.norm_slots, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.slots_mu = nn.Parameter(torch.randn(n_slots, dim) * dim ** -0.5)
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))  # with biases, as DFRF's to_q/to_k/to_v
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(True), nn.Linear(dim, dim))
        self.out = (nn.Identity() if out_dim is None else
                    nn.Sequential(nn.Linear(n_slots * dim, out_dim), nn.ReLU(True), nn.Linear(out_dim, out_dim)))
        #: width of the output: the flattened slots, or ``out_dim``
        self.out_dim = n_slots * dim if out_dim is None else out_dim
        self.last_attention: Tensor | None = None

    def forward(self, feats: Tensor) -> Tensor:
        """(P, L, in_dim) reference features per point -> (P, :attr:`out_dim`)."""
        p = feats.shape[0]
        x = self.norm_in(self.inp(feats))
        k, v = self.k(x), self.v(x)
        slots = self.slots_mu.expand(p, -1, -1)
        for _ in range(self.iters):
            prev = slots
            q = self.q(self.norm_slots(slots))
            attn = torch.softmax(torch.einsum("pld,psd->psl", k, q) * self.dim ** -0.5, dim=1) + 1e-8
            self.last_attention = attn.detach()
            attn = attn / attn.sum(-1, keepdim=True)
            updates = torch.einsum("psl,pld->psd", attn, v)
            slots = self.gru(updates.reshape(-1, self.dim), prev.reshape(-1, self.dim)).reshape(p, self.n_slots, self.dim)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return self.out(slots.reshape(p, -1))
