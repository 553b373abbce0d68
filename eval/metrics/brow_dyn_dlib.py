"""``brow_dyn_dlib``: THEval's Eyebrow Dynamics on 68-point landmarks (labelled "(dlib)"),
and ``brow_dyn_dlib_close``, its closeness to the ground truth's value.

Source: ``Naturalness/eyebrow_dynamics.py`` of THEval (Newbyl/THEval @ cfe23fe, where it is
called Micro-Expression Intensity); the mapping in :mod:`aebench.eval.theval`.

* Per frame with a face, in pixels of the frame as given (not resized, l.54-64): the centre
  of each brow and each eye (mean of its points); ``scale`` = distance between the two eye
  centres (l.69-73; a frame with ``scale < 1e-3`` is skipped, l.100-102); per side the
  brow-to-eye distance over ``scale`` (l.104-112).
* Value (l.114-132): the mean absolute change of that distance from one counted frame to the
  next, pooled over both sides (sum of changes / number of transitions). Frames without a
  face are skipped and the previous value is kept, so a change may span a gap. Neither
  higher nor lower is better in itself: THEval scores it by closeness to the ground truth
  (``brow_dyn_dlib_close``). THEval returns 0.0 without any transition; here the value is
  missing.
"""

from __future__ import annotations

import math

import numpy as np

from aebench.eval import theval
from aebench.eval.registry import LANDMARK_PACKAGES, Context, Metric, Value


def brow_distances(lms: np.ndarray) -> np.ndarray:
    """(n, 2) brow-to-eye distance over the eye distance, image-left and image-right side
    (NaN rows: no face or eyes too close)."""
    lm = np.asarray(lms, np.float64)
    c = {
        k: lm[:, idx].mean(1)
        for k, idx in (
            ("bl", theval.BROW_LEFT_IMG),
            ("el", theval.EYE_LEFT_IMG),
            ("br", theval.BROW_RIGHT_IMG),
            ("er", theval.EYE_RIGHT_IMG),
        )
    }
    scale = np.linalg.norm(c["el"] - c["er"], axis=1)
    d = np.stack([np.linalg.norm(c["bl"] - c["el"], axis=1), np.linalg.norm(c["br"] - c["er"], axis=1)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((scale >= 1e-3)[:, None], d / scale[:, None], np.nan)


def brow_dynamics(lms: np.ndarray) -> tuple[float | None, dict]:
    d = brow_distances(lms)
    d = d[~np.isnan(d).any(axis=1)]
    if len(d) < 2:
        return None, {"frames_counted": int(len(d)), "why": f"{len(d)} frames with a face (needs 2)"}
    return float(np.abs(np.diff(d, axis=0)).sum() / (2 * (len(d) - 1))), {"frames_counted": int(len(d))}


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    return theval.pred_and_gt(ctx, names, "brow_dyn_dlib", lambda which: brow_dynamics(ctx.landmarks(which)))


METRICS = [
    Metric(
        "brow_dyn_dlib",
        "target",
        "Eyebrow Dynamics (dlib)",
        tolerance=0.01,
        compute=compute,
        family="theval",
        group="brow_dyn_dlib",
        per_frame=False,
        packages=LANDMARK_PACKAGES,
        value_range=(0.0, math.inf),
    ),
    Metric(
        "brow_dyn_dlib_close",
        "higher",
        "Eyebrow Dynamics (dlib) closeness",
        tolerance=0.2,
        compute=compute,
        family="theval",
        needs_gt=True,
        group="brow_dyn_dlib",
        per_frame=False,
        packages=LANDMARK_PACKAGES,
        value_range=(-math.inf, 1.0),
    ),
]
