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

    def detect_many(self, frames, progress: bool = False, desc: str = "landmarks") -> np.ndarray:
        """(n, 68, 2) landmarks for a sequence of frames; NaN where no face was found."""
        from tqdm import tqdm

        out = []
        for img in tqdm(frames, desc=desc, disable=not progress, unit="frame"):
            lm = self.detect(img)
            out.append(np.full((68, 2), np.nan, np.float32) if lm is None else lm)
        return np.stack(out) if out else np.zeros((0, 68, 2), np.float32)
