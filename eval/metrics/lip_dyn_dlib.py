"""``lip_dyn_dlib``: THEval's Lip Dynamics on 68-point landmarks (labelled "(dlib)"), and
``lip_dyn_dlib_close``, its closeness to the ground truth's value.

Source: ``Naturalness/lip_dynamics.py`` of THEval (Newbyl/THEval @ cfe23fe); the mapping in
:mod:`aebench.eval.theval`.

* Per frame with a face, in THEval's 256x256 working frame (l.41-44, 72-81): the vector of
  every pairwise Euclidean distance between the lip points (THEval: the 40 FaceMesh lip
  points, 780 distances; here the 20 points 48-67, 190 distances). No normalisation, no
  smoothing.
* Value (l.85-97): the standard deviation over frames of each distance (``ddof=0``),
  averaged over the distances: how much the mouth shape varies. Neither higher nor lower is
  better in itself: THEval scores it only by closeness to the ground truth, which
  ``lip_dyn_dlib_close`` is. THEval returns 0.0 for a clip without any face; here the
  value is missing (a face that was never found did not hold still).
"""

from __future__ import annotations

import math

from itertools import combinations

import numpy as np

from aebench.eval import theval
from aebench.eval.registry import LANDMARK_PACKAGES, Context, Metric, Value

PAIRS = np.array(list(combinations(range(len(theval.LIPS)), 2)))


def lip_dynamics(lms: np.ndarray, hw: tuple[int, int]) -> tuple[float | None, dict]:
    pts = theval.in_work_size(lms, hw)[:, theval.LIPS]
    pts = pts[~np.isnan(pts).any(axis=(1, 2))]
    if len(pts) < 2:  # a spread over time needs two frames (as Eyebrow Dynamics says)
        return None, {"frames_counted": int(len(pts)), "why": f"{len(pts)} frames with a face (needs 2)"}
    dists = np.linalg.norm(pts[:, PAIRS[:, 0]] - pts[:, PAIRS[:, 1]], axis=-1)  # (frames, 190)
    return float(np.mean(np.std(dists, axis=0))), {"frames_counted": int(len(pts))}


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    return theval.pred_and_gt(ctx, names, "lip_dyn_dlib", lambda which: lip_dynamics(ctx.landmarks(which), ctx.hw))


METRICS = [
    Metric(
        "lip_dyn_dlib",
        "target",
        "Lip Dynamics (dlib)",
        tolerance=0.5,
        compute=compute,
        family="theval",
        group="lip_dyn_dlib",
        per_frame=False,
        packages=LANDMARK_PACKAGES,
        value_range=(0.0, math.inf),
    ),
    Metric(
        "lip_dyn_dlib_close",
        "higher",
        "Lip Dynamics (dlib) closeness",
        tolerance=0.2,
        compute=compute,
        family="theval",
        needs_gt=True,
        group="lip_dyn_dlib",
        per_frame=False,
        packages=LANDMARK_PACKAGES,
        value_range=(-math.inf, 1.0),
    ),
]
