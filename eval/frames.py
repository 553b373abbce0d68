"""Loading what is evaluated (a video, a folder of frames or an array) and the scoring rules
every method is held to (DESIGN.md, "Scoring rules"):

* predictions are scored exactly as given: decoded frames of the file, never re-encoded
  first; NeRF methods' renders are scored from their lossless PNG frames;
* at the ground truth's resolution: a prediction of another size is refused unless
  ``resize`` is asked for (the prediction is then resized to the ground truth's size with
  INTER_AREA, and the evaluation records it);
* at one frame rate: prediction and ground truth must have the same fps (frame folders and
  arrays take it as an argument, default 25);
* frame folders sort numerically (``frame_2`` before ``frame_10``).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from aebench.media import MediaError, probe, read_audio, read_video

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
DEFAULT_FPS = 25.0


def natural_key(name: str) -> list:
    """Sort key that orders the digit runs of a name by value: ``frame_2`` < ``frame_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in numeric order."""
    return sorted((f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_EXT), key=lambda f: natural_key(f.name))


def load_frames(src, fps: float | None = None) -> tuple[np.ndarray, float]:
    """uint8 (n, H, W, 3) RGB frames and their fps (``fps``, default 25, for folders and arrays;
    a video's own rate, which ``fps`` must then match if given)."""
    if isinstance(src, np.ndarray):
        a = np.asarray(src)
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise ValueError(f"frame arrays must be uint8 (n, H, W, 3), got {a.dtype} {a.shape}")
        return a, float(fps or DEFAULT_FPS)
    p = Path(src)
    if p.is_dir():
        import cv2

        files = frame_files(p)
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
        return np.ascontiguousarray(np.stack(imgs)), float(fps or DEFAULT_FPS)
    frames, own = read_video(p)
    own = float(own or DEFAULT_FPS)
    if fps is not None and abs(own - float(fps)) > 1e-3:
        raise ValueError(f"{p} runs at {own:g} fps, not the given {float(fps):g}; resample it (ffmpeg -r) or drop --fps")
    return frames, own


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


def align(pred: np.ndarray, gt: np.ndarray, mode: str = "strict", resize: bool = False,
          fps: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Apply the scoring rules to a prediction and its ground truth: equal fps, equal frame
    counts (or truncation with ``mode="truncate"``), the ground truth's resolution (the
    prediction resized only with ``resize``). Returns both and a record of what was done."""
    import cv2

    info: dict = {}
    if fps is not None and abs(fps[0] - fps[1]) > 1e-3:
        raise ValueError(f"prediction runs at {fps[0]:g} fps, ground truth at {fps[1]:g} fps: refusing to compare "
                         "frames of different times; resample one of them (ffmpeg -r), or give frame folders --fps")
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
        if not resize:
            raise ValueError(f"prediction is {pw}x{ph}, ground truth {gw}x{gh}: metrics are computed at the ground "
                             f"truth's resolution. Render at {gw}x{gh}, or pass resize=True (CLI --resize) to resize "
                             "the prediction to it (recorded in metrics.json)")
        if abs(ph / pw - gh / gw) > 1e-3:
            raise ValueError(f"aspect ratios differ (pred {pw}x{ph}, gt {gw}x{gh}): refusing to compare")
        pred = np.stack([cv2.resize(f, (gw, gh), interpolation=cv2.INTER_AREA) for f in pred])
        info["pred_resized"] = {"from": [pw, ph], "to": [gw, gh], "interpolation": "INTER_AREA"}
    return pred, gt, info
