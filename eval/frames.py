"""Loading what is evaluated: a video, a folder of frames or an array; frame-count and
resolution alignment of prediction and ground truth."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from aebench.media import MediaError, probe, read_audio, read_video

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
DEFAULT_FPS = 25.0


def load_frames(src) -> tuple[np.ndarray, float]:
    """uint8 (n, H, W, 3) RGB frames and their fps (25 for folders and arrays)."""
    if isinstance(src, np.ndarray):
        a = np.asarray(src)
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise ValueError(f"frame arrays must be uint8 (n, H, W, 3), got {a.dtype} {a.shape}")
        return a, DEFAULT_FPS
    p = Path(src)
    if p.is_dir():
        import cv2

        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXT)
        if not files:
            raise MediaError(f"{p}: no image files ({', '.join(sorted(IMAGE_EXT))})")
        imgs = []
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise MediaError(f"{f}: cannot be read as an image")
            imgs.append(img[:, :, ::-1])
        if len({i.shape for i in imgs}) != 1:
            raise MediaError(f"{p}: frames have different sizes")
        return np.ascontiguousarray(np.stack(imgs)), DEFAULT_FPS
    frames, fps = read_video(p)
    return frames, fps or DEFAULT_FPS


def load_audio(audio, pred) -> tuple[np.ndarray | None, str | None]:
    """16 kHz mono float32 audio and where it came from: the given path or array, else the
    prediction video's own audio track, else (None, None)."""
    if audio is not None:
        if isinstance(audio, np.ndarray):
            return np.asarray(audio, dtype=np.float32).reshape(-1), "array"
        return read_audio(audio, 16000), str(audio)
    if isinstance(pred, (str, Path)) and Path(pred).is_file() and probe(pred).has_audio:
        return read_audio(pred, 16000), f"{pred} (its own audio track)"
    return None, None


def align(pred: np.ndarray, gt: np.ndarray, mode: str = "strict") -> tuple[np.ndarray, np.ndarray, dict]:
    """Equal frame counts (or truncation with ``mode="truncate"``) and gt resized to pred's
    resolution (INTER_AREA) when the aspect ratios agree; returns a record of what was done."""
    import cv2

    info: dict = {}
    if len(pred) != len(gt):
        if mode != "truncate":
            raise ValueError(f"prediction has {len(pred)} frames, ground truth {len(gt)}: refusing to compare. "
                             "Pass align='truncate' (CLI --align truncate) to trim both to the shorter.")
        n = min(len(pred), len(gt))
        warnings.warn(f"frame counts differ (pred {len(pred)}, gt {len(gt)}): both truncated to {n}", stacklevel=2)
        info["truncated"] = {"pred": len(pred), "gt": len(gt), "to": n}
        pred, gt = pred[:n], gt[:n]
    ph, pw = pred.shape[1:3]
    gh, gw = gt.shape[1:3]
    if (ph, pw) != (gh, gw):
        if abs(ph / pw - gh / gw) > 1e-3:
            raise ValueError(f"aspect ratios differ (pred {pw}x{ph}, gt {gw}x{gh}): refusing to compare")
        gt = np.stack([cv2.resize(g, (pw, ph), interpolation=cv2.INTER_AREA) for g in gt])
        info["gt_resized"] = {"from": [gw, gh], "to": [pw, ph], "interpolation": "INTER_AREA"}
    return pred, gt, info
