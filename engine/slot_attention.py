"""Slot attention (Locatello et al. 2020) used as an audio-free aggregation of the L
reference features of each point (AE-NeRF Table 4 "w/o AAA").

Per point, the L reference features are the inputs and ``n_slots`` slots compete for them
(softmax over slots, weighted mean over inputs, GRU update, residual MLP) for ``iters``
rounds; the slots are then flattened: DFRF feeds them straight into its NeRF (``out_dim``
None, as the official code: helpers 567-569, 720); AE-NeRF's "w/o AAA" maps them by
FC-ReLU-FC to the width of the aggregated feature its NeRF takes (``out_dim``).
As DFRF's ``SlotAttention`` (``sstzal/DFRF NeRFs/run_nerf_helpers_deform.py`` 492-569): q/k/v
linear layers with biases, softmax over slots plus eps, GRU update and residual MLP.
By default three deviations from DFRF's module, each behind a switch that
``train.preset=official`` turns to the official behaviour:

* ``init``: ``learned`` per-slot means (deterministic renders; slots keep a fixed order for
  a final FC); ``sampled`` is DFRF's ``mu + exp(logsigma) * randn`` with one ``mu`` and
  ``logsigma`` (1, 1, dim) shared by all slots, drawn anew at every call, at test time too.
* ``in_act``: the input layer (DFRF's ``fc7``) ``linear``; ``leaky_relu`` is DFRF's
  ``nn.LeakyReLU`` (slope 0.01) after it.
* ``mlp_width``: the residual MLP's hidden width, ``dim`` by default; DFRF's is max(dim, 128).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


SLOT_INITS = ("learned", "sampled")
INPUT_ACTIVATIONS = ("linear", "leaky_relu")


class SlotAggregation(nn.Module):
    def __init__(
        self,
        in_dim: int,
        dim: int = 128,
        out_dim: int | None = 128,
        n_slots: int = 2,
        iters: int = 3,
        init: str = "learned",
        in_act: str = "linear",
        mlp_width: int | None = None,
    ):
        super().__init__()
        if init not in SLOT_INITS or in_act not in INPUT_ACTIVATIONS:
            raise ValueError(
                f"slot init must be one of {SLOT_INITS} and input activation one of {INPUT_ACTIVATIONS}, got {init!r}, {in_act!r}"
            )
        self.iters, self.n_slots, self.dim, self.init = iters, n_slots, dim, init
        self.inp = nn.Linear(in_dim, dim)
        self.in_act = nn.LeakyReLU() if in_act == "leaky_relu" else nn.Identity()
        self.norm_in, self.norm_slots, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        if init == "learned":
            self.slots_mu = nn.Parameter(torch.randn(n_slots, dim) * dim**-0.5)
        else:  # DFRF: one mu and log-sigma for every slot (helpers 501-503)
            self.slots_mu = nn.Parameter(torch.randn(1, 1, dim))
            self.slots_logsigma = nn.Parameter(torch.zeros(1, 1, dim))
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))  # with biases, as DFRF's to_q/to_k/to_v
        self.gru = nn.GRUCell(dim, dim)
        hidden = mlp_width or dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(True), nn.Linear(hidden, dim))
        self.out = (
            nn.Identity()
            if out_dim is None
            else nn.Sequential(nn.Linear(n_slots * dim, out_dim), nn.ReLU(True), nn.Linear(out_dim, out_dim))
        )
        #: width of the output: the flattened slots, or ``out_dim``
        self.out_dim = n_slots * dim if out_dim is None else out_dim
        self.last_attention: Tensor | None = None

    def forward(self, feats: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(P, L, in_dim) reference features per point -> (P, :attr:`out_dim`). With ``init``
        ``sampled`` the slots' noise (P, n_slots, dim) is drawn from ``generator`` (the global
        generator when None, as DFRF's ``torch.randn``)."""
        p = feats.shape[0]
        x = self.norm_in(self.in_act(self.inp(feats)))
        k, v = self.k(x), self.v(x)
        if self.init == "learned":
            slots = self.slots_mu.expand(p, -1, -1)
        else:
            mu = self.slots_mu.expand(p, self.n_slots, -1)
            noise = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
            slots = mu + self.slots_logsigma.exp().expand(p, self.n_slots, -1) * noise
        for _ in range(self.iters):
            prev = slots
            q = self.q(self.norm_slots(slots))
            attn = torch.softmax(torch.einsum("pld,psd->psl", k, q) * self.dim**-0.5, dim=1) + 1e-8
            self.last_attention = attn.detach()
            attn = attn / attn.sum(-1, keepdim=True)
            updates = torch.einsum("psl,pld->psd", attn, v)
            slots = self.gru(updates.reshape(-1, self.dim), prev.reshape(-1, self.dim)).reshape(p, self.n_slots, self.dim)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return self.out(slots.reshape(p, -1))
