"""LMD, landmark distance on the mouth (Chen et al. 2018, as used by AD-NeRF/DFRF/AE-NeRF tables).

Source: ``LMDMeter(backend="dlib", region="mouth")`` in ``nerf/utils.py`` of RAD-NeRF
(ashawkey) and ER-NeRF (Fictionarry), the community's evaluation code: landmarks 48:68,
``lms - lms.mean(0)`` on each set, ``np.sqrt(((p - t) ** 2).sum(1)).mean(0)`` per frame,
averaged over frames. Differences, stated: that code takes dlib's *first* detection, we
take the largest face (identical with one face); it crashes on a frame without a face,
we exclude and count such frames.

Recipe: dlib 68-point landmarks (``aebench.data.landmarks.LandmarkDetector``, HOG face
detector with 1 upsample, largest face) on every predicted and ground-truth frame; mouth
points 48-67 (20 points); each set mean-centred per frame (so a global translation of the
head is not counted, only mouth shape); per frame the mean Euclidean distance over the 20
points; the summary is the mean over frames. Units: pixels of the evaluated resolution,
which is the prediction's (ground truth is resized to it), recorded as
``info["lmd"]["resolution"]``.

Frames where dlib finds no face in the prediction or in the ground truth have no LMD
value (empty in ``frames.csv``): they are excluded from the mean and counted in
``info["lmd"]["frames_without_face"]``. If no frame has a face in both, LMD is missing.
"""

from __future__ import annotations

import numpy as np

from aebench.data.landmarks import MOUTH


def mouth_centred(landmarks: np.ndarray) -> np.ndarray:
    """(n, 68, 2) -> (n, 20, 2) mouth points minus their per-frame mean (NaN stays NaN)."""
    m = np.asarray(landmarks, dtype=np.float64)[:, MOUTH]
    return m - m.mean(axis=1, keepdims=True)


def lmd_frames(pred_lm: np.ndarray, gt_lm: np.ndarray) -> np.ndarray:
    """Per-frame LMD (pixels); NaN where either landmark set is missing."""
    d = mouth_centred(pred_lm) - mouth_centred(gt_lm)
    return np.linalg.norm(d, axis=-1).mean(axis=1)
