"""A prepared identity on disk and its views (splits, few-shot clips, working resolution).

On-disk format (DESIGN.md, "Prepared identity")::

    <root>/<name>/meta.json          schema, source + sha256, fps, n_frames, size, intrinsics,
                                     near/far, audio_rate, settings, library versions,
                                     "frames_format": "jpg" | "png" | "npy",
                                     content_sha256 (of the data files: :func:`content_sha256`)
    <root>/<name>/frames/00000.jpg   (or frames.npy, uint8 (n, H, W, 3))
    <root>/<name>/masks/00000.png    (or masks.npy, uint8 (n, H, W)) labels:
                                     0 background, 1 audio-independent head, 2 audio-related
                                     lower face, 3 torso/neck
    <root>/<name>/landmarks.npy      float32 (n, 68, 2) pixels (x, y)
    <root>/<name>/poses.npy          float32 (n, 4, 4) camera-to-world, head in canonical frame
    <root>/<name>/audio.wav          16 kHz mono
    <root>/<name>/features/<extractor>.npy  float32 (n, T, C), one window per frame
    <root>/<name>/background.png

An identity is written into a staging folder ``.<name>.<pid>.partial`` (under a lock per
identity, :mod:`aebench.data.staging`) and renamed when complete, so a folder with
``meta.json`` is always whole, and a staging folder is never listed as an identity.

A view (:meth:`Identity.split`, :meth:`Identity.clip`, :meth:`Identity.at_size`) has the
same API over a subset of frames and/or another resolution; indices are view-local.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from aebench.media import AUDIO_RATE

SCHEMA_VERSION = 1
LABELS = {"background": 0, "head": 1, "audio": 2, "torso": 3}
#: the fewest frames an identity can have: :meth:`Identity.split` gives the first half of the
#: frames to training and the second half to testing, and each needs at least one frame
MIN_FRAMES = 2
#: what :func:`content_sha256` covers: the data a method and a metric read (not ``meta.json``,
#: not ``features/``, which is derived and may be added later); a folder or its one-array form
DATA_FILES = ("frames", "frames.npy", "masks", "masks.npy", "landmarks.npy", "poses.npy", "audio.wav", "background.png")


class IdentityError(RuntimeError):
    """A prepared identity is missing, incomplete or asked for something it lacks."""


def content_sha256(path: str | Path) -> str:
    """sha256 over an identity folder's data files (:data:`DATA_FILES`: each file's name relative
    to the folder, its length and its bytes, in sorted order), so two identities with the same
    data have the same hash whatever their name, source path or preparation time. The one
    function that defines it: :func:`aebench.data.prepare.prepare` and the synthetic corpus
    record its value in ``meta.json``, :attr:`Identity.content_sha256` reads it."""
    path = Path(path)
    files = []
    for name in DATA_FILES:
        p = path / name
        files += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
    if not files:
        raise IdentityError(f"{path}: no identity data files ({', '.join(DATA_FILES)})")
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relative_to(path).as_posix()):
        h.update(f"{f.relative_to(path).as_posix()}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


_CONTENT_HASHES: dict[tuple[str, int], str] = {}  # identities prepared before meta recorded it


class Identity:
    """Read access to a prepared identity (or a view of one)."""

    def __init__(self, path: Path, meta: dict, indices: np.ndarray | None = None, size: int | None = None):
        self.path = Path(path)
        self.meta = meta
        self._all = int(meta["n_frames"])
        self.indices = np.arange(self._all) if indices is None else np.asarray(indices, dtype=np.int64)
        self._native = tuple(meta["size"])  # (H, W)
        self._size = size  # square working size, or None for native

    # ----- construction -------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Identity:
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.exists():
            left = list(path.parent.glob(f".{path.name}.*.partial")) if path.parent.is_dir() else []
            hint = " (an interrupted preparation left a staging folder; re-run it)" if left else ""
            raise IdentityError(f"{path} is not a prepared identity: no meta.json{hint}")
        meta = json.loads(meta_path.read_text())
        if meta.get("schema") != SCHEMA_VERSION:
            raise IdentityError(f"{path}: schema {meta.get('schema')} is not the supported {SCHEMA_VERSION}; prepare it again")
        return cls(path, meta)

    def _view(self, indices=None, size=None) -> Identity:
        return Identity(self.path, self.meta, self.indices if indices is None else indices, self._size if size is None else size)

    # ----- basic facts --------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)

    @property
    def content_sha256(self) -> str:
        """The identity's content hash (:func:`content_sha256`; the whole identity's, also for a
        view): recorded in ``meta.json`` at preparation, so reading it is free; computed from the
        files (once per process) for identities prepared before it was recorded."""
        if self.meta.get("content_sha256"):
            return str(self.meta["content_sha256"])
        meta_path = self.path / "meta.json"
        key = (str(self.path.resolve()), meta_path.stat().st_mtime_ns if meta_path.exists() else 0)
        if key not in _CONTENT_HASHES:
            _CONTENT_HASHES[key] = content_sha256(self.path)
        return _CONTENT_HASHES[key]

    @property
    def n_frames(self) -> int:
        return len(self.indices)

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def audio_rate(self) -> int:
        return int(self.meta.get("audio_rate", AUDIO_RATE))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames this view returns."""
        return (self._size, self._size) if self._size else self._native

    @property
    def scale(self) -> float:
        """Working size over native size (1.0 for native views)."""
        return self.size[0] / self._native[0]

    @property
    def near(self) -> float:
        return float(self.meta["near"])

    @property
    def far(self) -> float:
        return float(self.meta["far"])

    @property
    def intrinsics(self) -> np.ndarray:
        """(focal, cx, cy) in pixels of this view's resolution."""
        return np.asarray(self.meta["intrinsics"], dtype=np.float32) * self.scale

    def K(self) -> np.ndarray:
        f, cx, cy = self.intrinsics
        return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=np.float32)

    # ----- per-frame data -------------------------------------------------------------
    def _resize(self, img: np.ndarray, nearest: bool = False) -> np.ndarray:
        if not self._size or img.shape[:2] == (self._size, self._size):
            return img
        interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
        return cv2.resize(img, (self._size, self._size), interpolation=interp)

    @cached_property
    def _frames_npy(self):
        return np.load(self.path / "frames.npy", mmap_mode="r")

    @cached_property
    def _masks_npy(self):
        return np.load(self.path / "masks.npy", mmap_mode="r")

    def frame(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) RGB frame ``i`` of this view."""
        j = int(self.indices[i])
        fmt = self.meta.get("frames_format", "jpg")
        if fmt == "npy":
            img = np.asarray(self._frames_npy[j])
        else:
            img = cv2.imread(str(self.path / "frames" / f"{j:05d}.{fmt}"), cv2.IMREAD_COLOR)
            if img is None:
                raise IdentityError(f"{self.path}: frame {j} is missing")
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return self._resize(img)

    def mask(self, i: int) -> np.ndarray:
        """uint8 (H, W) region labels of frame ``i`` (see :data:`LABELS`)."""
        j = int(self.indices[i])
        if (self.path / "masks.npy").exists():
            m = np.asarray(self._masks_npy[j])
        else:
            m = cv2.imread(str(self.path / "masks" / f"{j:05d}.png"), cv2.IMREAD_UNCHANGED)
            if m is None:
                raise IdentityError(f"{self.path}: mask {j} is missing")
        return self._resize(m, nearest=True)

    def frames(self) -> np.ndarray:
        """All frames of the view, uint8 (n, H, W, 3)."""
        return np.stack([self.frame(i) for i in range(self.n_frames)])

    def masks(self) -> np.ndarray:
        return np.stack([self.mask(i) for i in range(self.n_frames)])

    @cached_property
    def _landmarks(self) -> np.ndarray:
        return np.load(self.path / "landmarks.npy").astype(np.float32)

    @property
    def landmarks(self) -> np.ndarray:
        """float32 (n, 68, 2) pixel coordinates (x, y) at this view's resolution."""
        return self._landmarks[self.indices] * self.scale

    @cached_property
    def _poses(self) -> np.ndarray:
        return np.load(self.path / "poses.npy").astype(np.float32)

    @property
    def poses(self) -> np.ndarray:
        """float32 (n, 4, 4) camera-to-world matrices."""
        return self._poses[self.indices]

    def background(self) -> np.ndarray:
        img = cv2.imread(str(self.path / "background.png"), cv2.IMREAD_COLOR)
        if img is None:
            raise IdentityError(f"{self.path}: background.png is missing")
        return self._resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

    # ----- audio ---------------------------------------------------------------------------
    @cached_property
    def _audio(self) -> np.ndarray:
        from aebench.media import read_audio

        return read_audio(self.path / "audio.wav", self.audio_rate)

    @property
    def samples_per_frame(self) -> float:
        return self.audio_rate / self.fps

    @property
    def audio(self) -> np.ndarray:
        """float32 16 kHz mono samples covering this view's frames (contiguous views)."""
        spf = self.samples_per_frame
        start = int(round(self.indices[0] * spf))
        stop = int(round((self.indices[-1] + 1) * spf))
        return self._audio[start:stop]

    def features(self, name: str = "mfcc") -> np.ndarray:
        """float32 (n, T, C) audio feature windows, one per frame of the view.

        Computed over the whole identity's audio on first use and cached under
        ``features/<name>.npy``."""
        from aebench.data.features import load_or_compute

        return load_or_compute(self, name)[self.indices]

    # ----- views ---------------------------------------------------------------------------
    def split(self, which: str) -> Identity:
        """The paper's split: first half of the frames trains, second half tests."""
        half = self._all // 2
        if which == "train":
            idx = self.indices[self.indices < half]
        elif which == "test":
            idx = self.indices[self.indices >= half]
        else:
            raise IdentityError(f"split must be 'train' or 'test', got {which!r}")
        return self._view(indices=idx)

    def clip(self, seconds: float) -> Identity:
        """The first ``seconds`` of the training half (the few-shot clip)."""
        train = self.split("train")
        n = int(round(seconds * self.fps))
        if n <= 0:
            raise IdentityError(f"clip length must be positive, got {seconds} s")
        if n > train.n_frames:
            raise IdentityError(
                f"{self.name}: a {seconds} s clip needs {n} frames but the training half has only "
                f"{train.n_frames} ({train.n_frames / self.fps:.1f} s)"
            )
        return self._view(indices=train.indices[:n])

    def fewshot_clip(self, seconds: float) -> Identity:
        """The fine-tuning clip: the first ``seconds`` of the training half, or the whole
        training half for ``seconds`` <= 0 (``data.clip_seconds``)."""
        return self.clip(seconds) if seconds > 0 else self.split("train")

    def select(self, indices) -> Identity:
        """A view of the given identity-level frame numbers (e.g. a checkpoint's references)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self._all):
            raise IdentityError(f"{self.name}: frames {idx.tolist()} are not all in 0..{self._all - 1}")
        return self._view(indices=idx)

    # ----- rendering length -------------------------------------------------------------
    def frames_for_audio(self, n_samples: int, cap: int = 0) -> int:
        """Frames of a render driven by ``n_samples`` of audio: one per 1/fps, at most ``cap``
        (0 = no cap; ``train.render_frames``). Every method and the runner count this way."""
        n = int(round(n_samples / self.audio_rate * self.fps))
        if cap > 0:
            n = min(n, int(cap))
        if n <= 0:
            raise ValueError(f"driving audio of {n_samples} samples is shorter than one frame at {self.fps:g} fps")
        return n

    def samples_for_frames(self, n_frames: int) -> int:
        """Audio samples covering ``n_frames`` frames (the audio muxed with a render)."""
        return int(round(n_frames * self.samples_per_frame))

    def at_size(self, size: int | None) -> Identity:
        """The same frames at a square working resolution (None or 0 = native)."""
        if size and self._native[0] != self._native[1]:
            raise IdentityError(f"{self.name}: frames are not square {self._native}")
        return Identity(self.path, self.meta, self.indices, size or None)

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, frames={self.n_frames}, size={self.size})"


def list_identities(root: str | Path) -> list[Path]:
    """Folders under ``root`` that are complete prepared identities."""
    root = Path(root)
    if not root.is_dir():
        return []
    from aebench.data.staging import is_staging

    return sorted(p for p in root.iterdir() if p.is_dir() and not is_staging(p) and (p / "meta.json").exists())
