"""An identity's frames as tensors for training, and ray batches drawn from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aenerf.engine.rays import pixel_rays

HEAD_LABELS = (1, 2)  # labels of the face/head region the batch sampler favours


@dataclass
class Views:
    """Everything a NeRF needs from one identity (or a view of it), on one device.

    ``frames`` float (n, H, W, 3) in [0, 1]; ``masks`` uint8 labels (n, H, W) (0 background,
    1 head, 2 audio-related lower face, 3 torso); ``poses`` (n, 4, 4) camera-to-world;
    ``intrinsics`` (3,) focal, cx, cy; ``background`` (H, W, 3); ``audio`` float (n, T, C)
    feature windows (or None); ``indices`` the identity-level frame numbers.
    """

    name: str
    frames: Tensor
    masks: Tensor
    poses: Tensor
    intrinsics: Tensor
    background: Tensor
    near: float
    far: float
    audio: Tensor | None
    indices: np.ndarray
    fps: float = 25.0

    @property
    def n(self) -> int:
        return self.frames.shape[0]

    @property
    def hw(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    @classmethod
    def from_identity(cls, identity, features: str | None = "mfcc", device="cpu") -> "Views":
        """Load a view's frames, masks, poses and (when ``features`` is set) audio windows."""
        audio = None
        if features:
            audio = torch.from_numpy(np.ascontiguousarray(identity.features(features), dtype=np.float32)).to(device)
        return cls(
            name=identity.name,
            frames=torch.from_numpy(identity.frames()).to(device).float().div_(255.0),
            masks=torch.from_numpy(identity.masks()).to(device),
            poses=torch.from_numpy(np.ascontiguousarray(identity.poses)).to(device),
            intrinsics=torch.from_numpy(identity.intrinsics.copy()).to(device),
            background=torch.from_numpy(identity.background().copy()).to(device).float().div_(255.0),
            near=identity.near, far=identity.far, audio=audio,
            indices=np.asarray(identity.indices), fps=identity.fps)


def sample_rays(views: Views, frame: int, n_rays: int, face_fraction: float,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """``n_rays`` random pixels of ``frame``: a ``face_fraction`` share from the head region
    (labels 1 and 2; uniform when the frame has none), the rest uniform over the image
    (talking-head NeRFs bias rays to the face this way; AD-NeRF/DFRF sample inside the face
    box). Returns rays, target colours, labels, background colours and pixel positions."""
    h, w = views.hw
    dev = views.frames.device
    mask = views.masks[frame]
    n_face = int(round(n_rays * face_fraction))
    flat = []
    if n_face:
        head = torch.zeros_like(mask, dtype=torch.bool)
        for lab in HEAD_LABELS:
            head |= mask == lab
        idx = head.reshape(-1).nonzero()[:, 0]
        if idx.numel():
            pick = torch.randint(idx.numel(), (n_face,), device=dev, generator=generator)
            flat.append(idx[pick])
        else:
            n_face = 0
    flat.append(torch.randint(h * w, (n_rays - n_face,), device=dev, generator=generator))
    flat = torch.cat(flat)
    ys, xs = flat // w, flat % w
    uv = torch.stack([xs, ys], -1).float() + 0.5
    rays_o, rays_d = pixel_rays(views.poses[frame], views.intrinsics, uv)
    return {"rays_o": rays_o, "rays_d": rays_d, "rgb": views.frames[frame, ys, xs],
            "label": mask[ys, xs].long(), "bg": views.background[ys, xs], "uv": uv,
            "frame": torch.tensor(frame, device=dev)}
