"""AudioNet: a per-frame audio feature window (T, C) -> audio code a (as in AD-NeRF/DFRF).

AD-NeRF's AudioNet runs 1-D convolutions over a 16-step DeepSpeech window (29 channels)
and two FC layers to a 64-d code. Feature extractors here vary (MFCC, wav2vec 2.0) in T and
C, so the convolutions are strided along time until it collapses (adaptive pooling makes
any T work), keeping the same conv -> LeakyReLU -> FC shape.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AudioNet(nn.Module):
    def __init__(self, in_channels: int, out_dim: int = 64, width: int = 64):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(in_channels, width // 2, 3, stride=2, padding=1), nn.LeakyReLU(0.02, True),
            nn.Conv1d(width // 2, width // 2, 3, stride=2, padding=1), nn.LeakyReLU(0.02, True),
            nn.Conv1d(width // 2, width, 3, stride=2, padding=1), nn.LeakyReLU(0.02, True),
            nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.02, True), nn.Linear(width, out_dim))

    def forward(self, window: Tensor) -> Tensor:
        """(B, T, C) feature windows -> (B, out_dim) codes."""
        return self.fc(self.convs(window.transpose(1, 2)).squeeze(-1))
