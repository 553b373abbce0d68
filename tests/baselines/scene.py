"""A tiny synthetic talking-head scene as engine ``Views`` (no prepared identity needed)."""

from __future__ import annotations

import numpy as np
import torch

from aebench.data.features import AudioNorm
from aebench.engine.views import Views, face_boxes


def toy_views(n: int = 6, size: int = 16, t: int = 16, c: int = 13, seed: int = 0) -> Views:
    """``n`` frames of a camera 2.5 units in front of the origin (OpenCV axes) seeing a
    coloured disc (labels: 1 upper, 2 lower half) whose lower half brightens with the audio."""
    g = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    r = np.hypot(xs - size / 2, ys - size / 2)
    disc = r < size * 0.35
    lower = disc & (ys > size / 2)
    audio = g.normal(size=(n, t, c)).astype(np.float32)
    frames = np.zeros((n, size, size, 3), np.float32)
    frames[:] = [0.1, 0.2, 0.3]
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        frames[i][disc] = [0.9, 0.6, 0.3]
        frames[i][lower] = [0.9, 0.3 + 0.3 * np.tanh(audio[i].mean()), 0.2]
        masks[i][disc] = 1
        masks[i][lower] = 2
    pose = np.eye(4, dtype=np.float32)
    pose[2, 3] = -2.5
    poses = np.repeat(pose[None], n, 0)
    f = size * 1.2
    frames = np.round(frames * 255.0).astype(np.uint8)  # Views hold uint8 frames, as prepared identities do
    return Views(
        name="toy",
        frames=torch.from_numpy(frames),
        masks=torch.from_numpy(masks),
        poses=torch.from_numpy(poses),
        intrinsics=torch.tensor([f, size / 2, size / 2]),
        background=torch.full((size, size, 3), 0.0) + torch.tensor([0.1, 0.2, 0.3]),
        near=1.5,
        far=3.5,
        audio=torch.from_numpy(audio),
        indices=np.arange(n),
        face_box=face_boxes(torch.from_numpy(masks)),
        norm=AudioNorm.of(audio),
        fps=25.0,
    )
