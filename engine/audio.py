"""AudioNet and AudioAttNet: the audio encoder and temporal smoother that AD-NeRF introduced,
DFRF reuses unchanged, and every NeRF method here shares (AE-NeRF included: the paper's
"audio features with temporal smoothing").

Facts from the official code (``YudongGuo/AD-NeRF`` NeRFs/HeadNeRF/run_nerf_helpers.py and
``sstzal/DFRF`` NeRFs/run_nerf_helpers_deform.py, identical classes in both):

* **AudioNet**: input one DeepSpeech window of 16 steps x 29 character logits per video frame.
  Four ``Conv1d(k=3, stride=2, pad=1)`` layers 29->32->32->64->64 with LeakyReLU(0.02) reduce
  the 16 steps to 1, then ``Linear(64, 64)`` - LeakyReLU(0.02) - ``Linear(64, dim_aud)``;
  ``dim_aud = 64`` in both papers.
* **AudioAttNet**: over ``smo_size = 8`` consecutive AudioNet codes centred on the frame.
  Five ``Conv1d(k=3, pad=1)`` layers dim->16->8->4->2->1 with LeakyReLU(0.02) over the time
  axis, then ``Linear(8, 8)`` and a softmax give one weight per window; the output is the
  weighted sum of the 8 codes. The conv stack reads only the first ``att_dims = 32`` channels
  (``AudioAttNet(dim_aud=32)`` applied to 64-d codes); the weighted sum uses all of them.
* It starts late in training: ``nosmo_iters`` = 200k of 400k iterations (AD-NeRF head),
  100k of 600k (DFRF); here ``train.smooth_from``, shared by every method. Before that the
  frame's own AudioNet code conditions the NeRF; after, the smoothed code does, and
  AudioAttNet is optimised with 5x the learning rate (:data:`ATT_LR_MULT`).

Deviation (every method): the suite's audio features replace DeepSpeech (TensorFlow,
unavailable offline). ``identity.features(cfg.features)`` gives ``(n, T, C)`` windows
(``mfcc`` by default), normalised per channel with the training clip's statistics
(:class:`aebench.data.features.AudioNorm`). AudioNet takes ``C`` input channels instead of 29 and, when ``T``
is not 16, keeps the four stride-2 convs and average-pools what remains of the time axis
to length 1 (for T = 16 this pooling is the identity, i.e. the original network).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

LEAK = 0.02
#: AD-NeRF and DFRF step AudioAttNet's optimizer with 5x the learning rate (``new_lrate*5``)
ATT_LR_MULT = 5.0


class AudioNet(nn.Module):
    """(B, T, C) feature windows -> (B, dim_aud) audio codes."""

    def __init__(self, in_channels: int, dim_aud: int = 64):
        super().__init__()
        chans = [in_channels, 32, 32, 64, 64]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(cin, cout, kernel_size=3, stride=2, padding=1), nn.LeakyReLU(LEAK)]
        self.encoder_conv = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.encoder_fc = nn.Sequential(nn.Linear(64, 64), nn.LeakyReLU(LEAK), nn.Linear(64, dim_aud))
        self.in_channels, self.dim_aud = in_channels, dim_aud

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_channels:
            raise ValueError(f"AudioNet expects (B, T, {self.in_channels}) windows, got {tuple(x.shape)}")
        h = self.encoder_conv(x.transpose(1, 2))  # (B, 64, T')
        return self.encoder_fc(self.pool(h).squeeze(-1))


class AudioAttNet(nn.Module):
    """(B, S, dim) codes of S = ``seq_len`` consecutive frames -> (B, dim) smoothed code."""

    def __init__(self, att_dims: int = 32, seq_len: int = 8):
        super().__init__()
        chans = [att_dims, 16, 8, 4, 2, 1]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(cin, cout, kernel_size=3, stride=1, padding=1), nn.LeakyReLU(LEAK)]
        self.attention_conv = nn.Sequential(*layers)
        self.attention_fc = nn.Linear(seq_len, seq_len)
        self.att_dims, self.seq_len = att_dims, seq_len

    def weights(self, x: Tensor) -> Tensor:
        """(B, S) softmax weights over the window."""
        y = self.attention_conv(x[..., : self.att_dims].transpose(1, 2))  # (B, 1, S)
        return torch.softmax(self.attention_fc(y.squeeze(1)), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] != self.seq_len:
            raise ValueError(f"AudioAttNet expects (B, {self.seq_len}, dim) codes, got {tuple(x.shape)}")
        return (self.weights(x)[..., None] * x).sum(1)


class AudioEncoder(nn.Module):
    """AudioNet plus AudioAttNet smoothing from a given step on: the audio input of every
    NeRF method here (AD-NeRF, DFRF, and AE-NeRF's "audio features with temporal smoothing").

    ``forward(features, index, smooth)``: ``features`` (n, T, C) are a clip's normalised
    feature windows, ``index`` (k,) the frames to encode. Without ``smooth`` each frame's own
    AudioNet code is returned; with it, the AudioAttNet-weighted sum over the ``smo_size``
    frames ``[i - smo_size//2, i + smo_size//2)``. Frames outside ``[0, n)`` enter as *zero
    feature windows* before AudioNet, as the official code pads (``torch.zeros_like(auds_win)``
    then ``AudNet``: DFRF ``NeRFs/run_nerf_deform.py`` 971-980, AD-NeRF HeadNeRF ``run_nerf.py``
    805-825), or as ``pad`` (T, C) when given (the normalised value of a zero *raw* window,
    ``train.audio_pad=raw``: the official zeros are raw DeepSpeech zeros). Returns (k, dim_aud).
    """

    def __init__(self, in_channels: int, dim_aud: int = 64, smo_size: int = 8, att_dims: int = 32):
        super().__init__()
        self.audio_net = AudioNet(in_channels, dim_aud)
        self.att_net = AudioAttNet(min(att_dims, dim_aud), smo_size)
        self.smo_size = smo_size

    def forward(self, features: Tensor, index: Tensor, smooth: bool, pad: Tensor | None = None) -> Tensor:
        index = torch.as_tensor(index, device=features.device).reshape(-1)
        if not smooth:
            return self.audio_net(features[index])
        n = features.shape[0]
        offsets = torch.arange(self.smo_size, device=features.device) - self.smo_size // 2
        idx = index[:, None] + offsets[None]  # (k, S)
        valid = (idx >= 0) & (idx < n)
        fill = torch.zeros_like(features[0]) if pad is None else pad.to(features.dtype)
        windows = torch.where(valid[..., None, None], features[idx.clamp(0, n - 1)], fill)  # (k, S, T, C)
        k, s = idx.shape
        codes = self.audio_net(windows.reshape(k * s, *features.shape[1:])).reshape(k, s, -1)
        return self.att_net(codes)

    def encode_all(self, features: Tensor, smooth: bool, pad: Tensor | None = None) -> Tensor:
        """(n, dim_aud) codes of every frame (used when rendering)."""
        return self(features, torch.arange(features.shape[0], device=features.device), smooth, pad)
