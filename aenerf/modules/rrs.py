"""Regionwise Ray Sampling (AE-NeRF, AAFG section).

Omega_ar = rays in the audio-related region (mask label 2); Omega_ad = every other ray of the
batch (head, torso and background: the audio-decoupled part of the image; background rays
must be rendered by some NeRF to learn empty space). eps x Omega = round(eps |Omega|) rays
drawn at random from Omega. Omega_overlap = (eps x Omega_ar) U (eps x Omega_ad) goes
through both NeRFs, Omega_aa = Omega_ar minus the overlap only through F_aa, Omega_ai =
Omega_ad minus the overlap only through F_ai.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

AUDIO_LABEL = 2


@dataclass
class RayGroups:
    """Boolean (N,) masks over a batch's rays; exactly one of them is true per ray."""

    overlap: Tensor
    aa_only: Tensor
    ai_only: Tensor
    audio_region: Tensor  # Omega_ar membership (the L_m target of F_aa)

    def take(self, rows: Tensor) -> RayGroups:
        """The groups of rays ``rows`` (M,) (e.g. the ray of each packed sample)."""
        return RayGroups(self.overlap[rows], self.aa_only[rows], self.ai_only[rows], self.audio_region[rows])

    @property
    def through_aa(self) -> Tensor:
        return self.overlap | self.aa_only

    @property
    def through_ai(self) -> Tensor:
        return self.overlap | self.ai_only


def all_overlap(n: int, audio_region: Tensor | None = None, device=None) -> RayGroups:
    """Every ray through both NeRFs (inference, and the "w/o RRS" ablation)."""
    ones = torch.ones(n, dtype=torch.bool, device=device)
    zeros = torch.zeros_like(ones)
    return RayGroups(ones, zeros, zeros.clone(), zeros.clone() if audio_region is None else audio_region)


def regionwise(labels: Tensor, eps: float, generator: torch.Generator | None = None) -> RayGroups:
    """Split rays by their mask ``labels`` (N,) with overlap fraction ``eps``."""
    ar = labels == AUDIO_LABEL
    overlap = torch.zeros_like(ar)
    for region in (ar, ~ar):
        idx = region.nonzero()[:, 0]
        k = int(round(eps * idx.numel()))
        if k:
            perm = torch.randperm(idx.numel(), device=labels.device, generator=generator)[:k]
            overlap[idx[perm]] = True
    return RayGroups(overlap, ar & ~overlap, ~ar & ~overlap, ar)
