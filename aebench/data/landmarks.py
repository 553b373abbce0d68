"""dlib 68-point facial landmarks.

The predictor file ships in the ``face-recognition-models`` package. That package's
``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so the ``.dat`` is
located through the import system without importing the package.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

PREDICTOR_NAME = "shape_predictor_68_face_landmarks.dat"
MOUTH = slice(48, 68)

Box = tuple[int, int, int, int]  # a face box: left, top, right, bottom (pixels)

#: a face beside the largest one in a frame, not overlapping it and at least this wide relative
#: to it, is another person (dlib found no second face of any size in the eight real clips)
OTHER_FACE_RATIO = 0.5
#: the largest face's landmark box centre moving more than this many face sizes between two
#: consecutive frames with a face is a jump to another face: another person, or a cut (the eight
#: real clips, whole, at 256 px: at most 0.13, 99.9th percentile 0.07; two people side by side: ~2)
MAX_JUMP = 0.5


def predictor_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("dlib's 68-point model is missing: pip install face-recognition-models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / PREDICTOR_NAME
    if not path.exists():
        raise RuntimeError(f"dlib's 68-point model is missing at {path}: reinstall face-recognition-models")
    return path


@lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path()))


class LandmarkDetector:
    """Largest-face 68-point landmarks with dlib's HOG detector.

    ``upsample`` is the detector's upsampling count (1 finds faces down to ~40 px wide).
    """

    def __init__(self, upsample: int = 1):
        self.detector, self.predictor = _dlib_models()
        self.upsample = upsample

    def detect(self, img: np.ndarray) -> np.ndarray | None:
        """float32 (68, 2) pixel (x, y) landmarks of the largest face in an RGB uint8 image, or None."""
        import dlib

        img = np.ascontiguousarray(img, dtype=np.uint8)
        rects = self.detector(img, self.upsample)
        if len(rects) == 0:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self.predictor(img, dlib.rectangle(rect.left(), rect.top(), rect.right(), rect.bottom()))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    def boxes(self, img: np.ndarray, detect_size: int | None = None) -> list[Box]:
        """Every face box in an RGB uint8 image, largest first, in the image's pixels; found on a
        copy at most ``detect_size`` wide (faster; the landmarks are then predicted at full size)."""
        import cv2

        img = np.ascontiguousarray(img, dtype=np.uint8)
        s = min(1.0, detect_size / img.shape[1]) if detect_size else 1.0
        small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img
        rects = sorted(self.detector(small, self.upsample), key=lambda r: -r.width() * r.height())
        return [tuple(int(round(v / s)) for v in (r.left(), r.top(), r.right(), r.bottom())) for r in rects]

    def landmarks(self, img: np.ndarray, box: Box) -> np.ndarray:
        """float32 (68, 2) pixel (x, y) landmarks of the face in ``box``."""
        import dlib

        shape = self.predictor(np.ascontiguousarray(img, dtype=np.uint8), dlib.rectangle(*box))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    def detect_many(self, frames, progress: bool = False, desc: str = "landmarks") -> np.ndarray:
        """(n, 68, 2) landmarks for a sequence of frames; NaN where no face was found."""
        from tqdm import tqdm

        out = []
        for img in tqdm(frames, desc=desc, disable=not progress, unit="frame"):
            lm = self.detect(img)
            out.append(np.full((68, 2), np.nan, np.float32) if lm is None else lm)
        return np.stack(out) if out else np.zeros((0, 68, 2), np.float32)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area (1: one box lies inside the other)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0) * max(h, 0) / max(smaller, 1)


def another_face(boxes: list[Box], ratio: float = OTHER_FACE_RATIO) -> bool:
    """True when a frame's boxes (largest first) hold a second face of comparable size: another
    person, whose landmarks the largest-face rule may pick in the next frame."""
    if len(boxes) < 2:
        return False
    first = boxes[0]
    width = first[2] - first[0]
    return any(b[2] - b[0] >= ratio * width and _overlap(b, first) < 0.5 for b in boxes[1:])


def face_jumps(lms: np.ndarray, max_jump: float = MAX_JUMP) -> list[int]:
    """Frames whose face lies far from the face of the previous frame with one: the centre of the
    landmark box moved more than ``max_jump`` face sizes (the larger side of the box, the mean of
    the two frames', times the frames between them). Rows of NaN (no face) are skipped. A head
    does not move that far in one frame; the largest-face rule switching between two people, or a cut, does."""
    lms = np.asarray(lms, dtype=np.float64)
    idx = np.flatnonzero(~np.isnan(lms).any(axis=(1, 2)))
    if len(idx) < 2:
        return []
    lo, hi = lms[idx].min(axis=1), lms[idx].max(axis=1)
    centre, size = (lo + hi) / 2, (hi - lo).max(axis=1)
    moved = np.linalg.norm(np.diff(centre, axis=0), axis=1) / np.maximum((size[1:] + size[:-1]) / 2, 1.0)
    frames_apart = np.diff(idx)  # across frames without a face a head may move that much further
    return idx[1:][moved > max_jump * frames_apart].tolist()
