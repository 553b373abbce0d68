"""An identity's frames as tensors for training, and ray batches drawn from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aebench.media import FPS
from aebench.data.features import AudioNorm
from aebench.engine.rays import pixel_rays

HEAD_LABELS = (1, 2)  # labels of the face/head region whose bounding box is the face box


@dataclass
class Views:
    """Everything a NeRF needs from one identity (or a view of it), on one device.

    ``frames`` uint8 (n, H, W, 3), converted to float [0, 1] per batch (a 512 px identity stays
    a quarter of its float32 size on the device); ``masks`` uint8 labels (n, H, W) (0 background,
    1 head, 2 audio-related lower face, 3 torso); ``poses`` (n, 4, 4) camera-to-world;
    ``intrinsics`` (3,) focal, cx, cy; ``background`` (H, W, 3); ``audio`` float (n, T, C)
    feature windows normalised by ``norm`` (or None); ``face_box`` long (n, 4) inclusive pixel
    bounds x0, y0, x1, y1 of the head labels; ``indices`` the identity-level frame numbers;
    ``landmarks`` (n, 68, 2) pixel (x, y) of the 68-point face landmarks (None when not loaded).
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
    face_box: Tensor
    norm: AudioNorm | None = None
    fps: float = float(FPS)
    landmarks: Tensor | None = None

    def __post_init__(self) -> None:
        if self.frames.dtype != torch.uint8:
            raise TypeError(f"Views.frames must be uint8 (n, H, W, 3), got {self.frames.dtype}")

    @property
    def n(self) -> int:
        return self.frames.shape[0]

    @property
    def hw(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    @classmethod
    def from_identity(cls, identity, features: str | None = "mfcc", device="cpu", norm: AudioNorm | None = None) -> Views:
        """Load a view's frames, masks, poses and (when ``features`` is set) audio windows,
        normalised with ``norm`` (default: this view's own statistics, i.e. the training clip's)."""
        audio = None
        if features:
            raw = identity.features(features)
            norm = norm or AudioNorm.of(raw)
            audio = torch.from_numpy(norm(raw)).to(device)
        masks = torch.from_numpy(identity.masks()).to(device)
        return cls(
            name=identity.name,
            frames=torch.from_numpy(identity.frames()).to(device),  # uint8: a quarter of float32's memory
            masks=masks,
            poses=torch.from_numpy(np.ascontiguousarray(identity.poses)).to(device),
            intrinsics=torch.from_numpy(identity.intrinsics.copy()).to(device),
            background=torch.from_numpy(identity.background().copy()).to(device).float().div_(255.0),
            near=identity.near,
            far=identity.far,
            audio=audio,
            indices=np.asarray(identity.indices),
            face_box=face_boxes(masks),
            norm=norm,
            fps=identity.fps,
            landmarks=torch.from_numpy(np.ascontiguousarray(identity.landmarks)).to(device),
        )


def face_boxes(masks: Tensor) -> Tensor:
    """(n, 4) inclusive bounds x0, y0, x1, y1 of the head labels of each (n, H, W) mask; the
    whole image for a frame without them."""
    n, h, w = masks.shape
    head = torch.zeros_like(masks, dtype=torch.bool)
    for lab in HEAD_LABELS:
        head |= masks == lab
    rows, cols = head.any(2), head.any(1)  # (n, H), (n, W)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    big = torch.tensor(10**9, device=masks.device)
    y0 = torch.where(rows, ar_h, big).min(1).values
    y1 = torch.where(rows, ar_h, -big).max(1).values
    x0 = torch.where(cols, ar_w, big).min(1).values
    x1 = torch.where(cols, ar_w, -big).max(1).values
    box = torch.stack([x0, y0, x1, y1], 1)
    empty = ~rows.any(1)
    box[empty] = torch.tensor([0, 0, w - 1, h - 1], device=masks.device)
    return box.long()


def sample_rays(
    views: Views, frame: int, n_rays: int, face_fraction: float, generator: torch.Generator | None = None, face_rect: str = "box"
) -> dict[str, Tensor]:
    """``n_rays`` random pixels of ``frame``, a ``face_fraction`` share of them in the face.

    ``face_rect`` ``box``: that share uniform inside the face box (the bounding box of the head
    labels), the rest uniform over the image, with replacement. ``official``: as AD-NeRF and DFRF
    draw ``sample_rate`` of their rays (DFRF run_nerf_deform.py 999-1021, AD-NeRF run_nerf.py
    845-866): ``int(N * rate)`` rays inside (truncated, where ``box`` rounds); the rectangle test compares rows with
    the box's x range and columns with its y range
    (the official code's transposed rectangle), the face share is drawn without replacement from
    inside it and the rest without replacement from outside, face rays first.
    Returns rays, target colours, labels, background colours and pixel positions."""
    h, w = views.hw
    dev = views.frames.device
    share = n_rays * face_fraction
    n_face = int(share) if face_rect == "official" else int(round(share))  # official: int(N_rand * sample_rate)
    x0, y0, x1, y1 = (int(v) for v in views.face_box[frame])
    if face_rect == "official":
        ys, xs = _official_rect_draw(h, w, (x0, y0, x1, y1), n_face, n_rays - n_face, dev, generator)
    else:
        xs = torch.cat(
            [
                torch.randint(x0, x1 + 1, (n_face,), device=dev, generator=generator),
                torch.randint(w, (n_rays - n_face,), device=dev, generator=generator),
            ]
        )
        ys = torch.cat(
            [
                torch.randint(y0, y1 + 1, (n_face,), device=dev, generator=generator),
                torch.randint(h, (n_rays - n_face,), device=dev, generator=generator),
            ]
        )
    return pixel_batch(views, frame, xs, ys)


def pixel_batch(views: Views, frame: int, xs: Tensor, ys: Tensor) -> dict[str, Tensor]:
    """The rays of pixels (``xs``, ``ys``) (N,) of ``frame``: origins, directions, target colours,
    labels, background colours, pixel positions (centres) and the frame."""
    dev = views.frames.device
    mask = views.masks[frame]
    uv = torch.stack([xs, ys], -1).float() + 0.5
    rays_o, rays_d = pixel_rays(views.poses[frame], views.intrinsics, uv)
    return {
        "rays_o": rays_o,
        "rays_d": rays_d,
        "rgb": views.frames[frame, ys, xs].float() / 255.0,
        "label": mask[ys, xs].long(),
        "bg": views.background[ys, xs],
        "uv": uv,
        "frame": torch.tensor(frame, device=dev),
    }


def _official_rect_draw(
    h: int, w: int, box: tuple[int, int, int, int], n_in: int, n_out: int, dev, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Rows and columns (each (n_in + n_out,)) of the official draw: ``rect = (x, y, w, h)``, inside
    means ``x <= row <= x + w`` and ``y <= col <= y + h``; without replacement on each side (with
    replacement only where a side has fewer pixels than it must give, where the official draw fails)."""
    x0, y0, x1, y1 = box
    rows, cols = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    inside = (rows >= x0) & (rows <= x1) & (cols >= y0) & (cols <= y1)
    picks = []
    for pool, k in ((inside.nonzero()[:, 0], n_in), ((~inside).nonzero()[:, 0], n_out)):
        if k == 0:
            continue
        if pool.numel() == 0:
            pool = torch.arange(h * w, device=dev)
        if pool.numel() >= k:
            picks.append(pool[torch.randperm(pool.numel(), device=dev, generator=generator)[:k]])
        else:
            picks.append(pool[torch.randint(pool.numel(), (k,), device=dev, generator=generator)])
    sel = torch.cat(picks)
    return rows[sel], cols[sel]
