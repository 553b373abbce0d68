"""``lmd_dlib``: LMD (mouth landmark distance, Chen et al. 2018) with dlib's 68 points, the
offline *variant* of the community's LMD (which runs face-alignment's FAN): always labelled
"LMD (dlib)", never presented as the community's LMD.

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
points; the summary is the mean over frames. Units: pixels of the evaluated resolution
(the ground truth's), recorded as ``info["lmd_dlib"]["resolution"]``.

Frames where dlib finds no face in the prediction or in the ground truth have no value
(empty in ``frames.csv``): they are excluded from the mean and counted in
``info["lmd_dlib"]["frames_without_face"]``; ``face_coverage`` is the share of frames with a
face in both. Below :data:`MIN_COVERAGE` (90%) the metric is missing: a mean over a few
lucky frames is not the clip's LMD.
"""

from __future__ import annotations

import numpy as np

from aebench.data.landmarks import MOUTH
from eval.registry import Context, Metric, Value

MIN_COVERAGE = 0.9  # share of frames that must have a face in prediction and ground truth


def mouth_centred(landmarks: np.ndarray) -> np.ndarray:
    """(n, 68, 2) -> (n, 20, 2) mouth points minus their per-frame mean (NaN stays NaN)."""
    m = np.asarray(landmarks, dtype=np.float64)[:, MOUTH]
    return m - m.mean(axis=1, keepdims=True)


def lmd_frames(pred_lm: np.ndarray, gt_lm: np.ndarray) -> np.ndarray:
    """Per-frame LMD (pixels); NaN where either landmark set is missing."""
    d = mouth_centred(pred_lm) - mouth_centred(gt_lm)
    return np.linalg.norm(d, axis=-1).mean(axis=1)


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    pred_lm, gt_lm = ctx.landmarks("pred"), ctx.landmarks("gt")
    vals = lmd_frames(pred_lm, gt_lm)
    ok = ~np.isnan(vals)
    coverage = float(ok.mean()) if len(ok) else 0.0
    ctx.info["lmd_dlib"] = {"resolution": [int(ctx.pred.shape[2]), int(ctx.pred.shape[1])],
                            "units": "pixels of the evaluated (ground-truth) resolution", "landmarks": "dlib 68",
                            "face_coverage": coverage, "frames_without_face": int((~ok).sum()),
                            "pred_without_face": int(np.isnan(pred_lm).any(axis=(1, 2)).sum()),
                            "gt_without_face": int(np.isnan(gt_lm).any(axis=(1, 2)).sum())}
    if coverage < MIN_COVERAGE:
        return {"lmd_dlib": Value(per_frame=vals, missing=f"dlib found a face in both prediction and ground truth in "
                                  f"{int(ok.sum())}/{len(ok)} frames ({coverage:.0%}; needs {MIN_COVERAGE:.0%})")}
    return {"lmd_dlib": Value(per_frame=vals, summary=float(vals[ok].mean()))}


METRICS = [Metric("lmd_dlib", "lower", "LMD (dlib)", tolerance=0.5, compute=compute, needs_gt=True)]
