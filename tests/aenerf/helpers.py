"""Tiny tensors shaped like a training clip and its batches, for module tests that need no data on disk."""

from __future__ import annotations

import numpy as np
import torch

from aebench.config import load_config
from aebench.data.features import AudioNorm


def smoke_cfg(*overrides: str):
    return load_config(["device=cpu", "train.n_coarse=4", "train.n_fine=4", *overrides], scale="smoke")


def orbit_pose(yaw: float, dist: float = 4.0) -> torch.Tensor:
    """Camera at distance ``dist`` looking at the origin, rotated by ``yaw`` about y (OpenCV axes)."""
    c, s = torch.cos(torch.tensor(float(yaw))), torch.sin(torch.tensor(float(yaw)))
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    c2w = torch.eye(4)
    c2w[:3, :3] = rot
    c2w[:3, 3] = rot @ torch.tensor([0.0, 0.0, -dist])
    return c2w


def fake_views(n: int = 6, size: int = 16, channels: int = 8, window: int = 8, seed: int = 0):
    """A random clip of ``n`` frames as :class:`aebench.engine.views.Views` (head labels in the middle)."""
    from aebench.engine.views import Views, face_boxes

    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    masks[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    masks[:, size // 2 : 3 * size // 4, size // 3 : 2 * size // 3] = 2
    masks[:, 3 * size // 4 :, :] = 3
    raw = torch.randn(n, window, channels, generator=g).numpy()
    norm = AudioNorm.of(raw)
    return Views(
        name="fake",
        frames=torch.randint(0, 256, (n, size, size, 3), generator=g, dtype=torch.uint8),
        masks=masks,
        poses=torch.stack([orbit_pose(0.1 * i) for i in range(n)]),
        intrinsics=torch.tensor([size * 1.2, size / 2, size / 2]),
        background=torch.rand(size, size, 3, generator=g),
        near=2.0,
        far=6.0,
        audio=torch.from_numpy(norm(raw)),
        indices=np.arange(n),
        face_box=face_boxes(masks),
        norm=norm,
    )


def build_model(method, cfg, channels: int = 8):
    """``method``'s network from ``cfg`` (as the skeleton builds it)."""
    return method.model_cls(method.settings(cfg), channels, method.train_settings(cfg))


def model_on_a_batch(method, cfg, seed: int = 0):
    """``method``'s network (torch seeded with ``seed`` first), a batch of a fake clip, its audio
    code (A,) and its references, unsmoothed: what a test needs to call the field or ``render``."""
    torch.manual_seed(seed)
    model = build_model(method, cfg)
    batch = fake_batch(method, cfg, fake_views())
    views = batch["views"]
    code = model.audio(views.audio, torch.tensor([batch["frame_index"]]), False)[0]
    idx = batch["refs"]
    refs = model.references(
        views.frames[idx].float() / 255.0,
        views.poses[idx],
        views.intrinsics,
        model.audio(views.audio, idx, False) if model.uses_ref_audio else None,
    )
    return model, batch, code, refs


def fake_batch(method, cfg, views=None, step: int = 0, seed: int = 0):
    """The batch the skeleton's batch_fn gives ``method`` at ``step`` on ``views`` (default: a fake clip)."""
    views = views or fake_views()
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return method.batch_fn([views], method.train_settings(cfg), method.settings(cfg).n_refs)(step, g)
