"""The proposal sampler (``train.sampler=proposal``): where along a ray to evaluate the field,
from a small density-only network instead of the method's own coarse pass.

In NeRF, DFRF and AE-NeRF the coarse pass runs the whole model (for the reference-based
methods: each sample's projection into the references, feature lookup, warper and
aggregation) only to learn where the importance samples go. Mip-NeRF 360 (Barron et al.,
CVPR 2022, section 3) replaces it with a *proposal* network that predicts density alone and
is supervised not by colour but by the fine weights: its weight over any interval must bound
the fine weights inside it (the interlevel loss, their eq. 13); nerfacto does the same
(nerfstudio). Here:

* :class:`ProposalField`: density from gamma(x) through a small ReLU MLP, softplus output; no
  audio, no view direction, no references (a proposal only has to cover where the head is,
  under every audio code; the head lives in canonical space, so it does not move).
* :func:`interlevel_loss`: mip-NeRF 360's eq. 13 over each ray's proposal intervals (the
  stratified samples) and fine intervals (the importance samples); the fine weights are
  detached, so only the proposal learns from it.

The field then evaluates only the ``n_fine`` importance samples (plus the background sample
at ``far``, whose value is never used): per ray ``n_fine + 1`` evaluations of the whole model
instead of ``n_coarse + (n_coarse + n_fine)``, and ``n_fine + 1`` reference lookups instead of
``n_coarse + n_fine``. The method's coarse networks are then not trained. This changes the
methods' definitions, so it is a switch, off by default, and a row of the deviations table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.engine.encoding import PositionalEncoding

#: mip-NeRF 360's eq. 13 divides by w + eps
EPS = 1e-7
#: rendering skips a sample whose interval holds less proposal weight than this: under the
#: interlevel loss's bound the field's weight there is smaller, so 16 skipped samples change a
#: pixel by under a third of an 8-bit grey level
EMPTY_BOUND = 1e-4


class ProposalField(nn.Module):
    """Density (P,) at points (P, 3): gamma(x) with ``freqs`` frequencies, ``depth`` ReLU
    layers of ``width``, a softplus density (biased down so a fresh proposal starts nearly empty
    and spreads its samples)."""

    def __init__(self, freqs: int, width: int = 64, depth: int = 2):
        super().__init__()
        self.pe = PositionalEncoding(freqs)
        layers: list[nn.Module] = []
        dim = self.pe.out_dim
        for _ in range(depth):
            layers += [nn.Linear(dim, width), nn.ReLU()]
            dim = width
        self.trunk = nn.Sequential(*layers)
        self.out = nn.Linear(dim, 1)

    def forward(self, points: Tensor) -> Tensor:
        return F.softplus(self.out(self.trunk(self.pe(points)))[:, 0] - 1.0)


def interval_envelope(edges: Tensor, starts: Tensor, ends: Tensor, weights: Tensor) -> Tensor:
    """For each query interval [``starts``, ``ends``] (N, Q), the summed ``weights`` (N, B) of
    the intervals between consecutive ``edges`` (N, B + 1) that overlap it."""
    cum = torch.cat([torch.zeros_like(weights[:, :1]), torch.cumsum(weights, -1)], -1)  # (N, B + 1)
    b = weights.shape[1]
    first = (torch.searchsorted(edges.contiguous(), starts.contiguous(), right=True) - 1).clamp(min=0)  # 0..b
    last = (torch.searchsorted(edges.contiguous(), ends.contiguous(), right=False) - 1).clamp(max=b - 1)  # -1..b-1
    return torch.gather(cum, 1, last + 1) - torch.gather(cum, 1, first)  # last + 1 >= first: 0 when none overlaps


def interlevel_loss(z_prop: Tensor, w_prop: Tensor, z_fine: Tensor, w_fine: Tensor) -> Tensor:
    """Mip-NeRF 360's eq. 13, averaged over rays: sum over fine intervals of
    max(0, w - bound)^2 / (w + eps), ``bound`` the proposal weight over the fine interval.

    ``z_prop`` (N, P) and ``z_fine`` (N, F) are the sample depths of the two passes (each sample
    the start of the interval to the next; the last, the background, ends them), ``w_prop``
    (N, P - 1) and ``w_fine`` (N, F - 1) the field's weights of those intervals (the composited
    ``weights`` without the background's column). ``w_fine`` is detached here."""
    w = w_fine.detach()
    bound = interval_envelope(z_prop.detach(), z_fine[:, :-1].detach(), z_fine[:, 1:].detach(), w_prop)
    return ((w - bound).clamp(min=0).pow(2) / (w + EPS)).sum(-1).mean()
