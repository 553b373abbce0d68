"""``lmd_dlib``: LMD (mouth landmark distance, Chen et al. 2018) with dlib's 68 points, the
offline *variant* of the community's LMD (:mod:`aebench.eval.metrics.lmd`, face-alignment's FAN):
always labelled "LMD (dlib)", never presented as the community's LMD. It needs no weights
download (dlib's model ships in face-recognition-models), so CI can compute it.

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

import math

from aebench.eval.metrics.lmd import lmd_value
from aebench.eval.registry import LANDMARK_PACKAGES, Context, Metric, Value


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    return {"lmd_dlib": lmd_value(ctx, "lmd_dlib", ctx.landmarks("pred"), ctx.landmarks("gt"), "dlib 68")}


METRICS = [
    Metric(
        "lmd_dlib",
        "lower",
        "LMD (dlib)",
        tolerance=0.5,
        compute=compute,
        family="paper",
        needs_gt=True,
        packages=LANDMARK_PACKAGES,
        value_range=(0.0, math.inf),
    )
]
