"""``silent_lip_dlib``: THEval's Silent Lip Stability on 68-point landmarks (labelled
"(dlib)"), and ``silent_lip_dlib_close``, its closeness to the ground truth's value.

Source: ``Synchronization/silent_lip_stability.py`` of THEval (Newbyl/THEval @ cfe23fe);
shared parts and the FaceMesh -> 68-point mapping in :mod:`aebench.eval.theval`.

* Silence: frames outside silero-vad's speech segments (``int(start * fps)`` to
  ``int(end * fps)`` inclusive, l.51-60), kept only in runs of consecutive silent frames at
  least ``MIN_SILENCE_DURATION = 300`` ms long (l.13, l.62-74: ``count >= 0.3 * fps``).
* Lip opening per kept frame with a face (l.76-101), in THEval's 256x256 working frame: the
  mean over the vertical inner-lip pairs of ``|y_upper - y_lower| / ||outer eye corner left -
  outer eye corner right||`` (a frame whose eye distance is under 1e-3 is skipped).
* Value (l.127-132): no value with fewer than two such frames; else the median absolute
  deviation from the *mean* opening, ``median(|x - mean(x)|)`` (THEval's definition, not
  the usual MAD about the median). Lower is better (still lips in silence); THEval scores
  it by closeness to the ground truth.
"""

from __future__ import annotations

import math

import numpy as np

from aebench.eval import theval
from aebench.eval.registry import LANDMARK_PACKAGES, Context, Metric, Value

MIN_SILENCE_S = 0.300  # silent_lip_stability.py:13 (MIN_SILENCE_DURATION = 300 ms)


def long_silences(speech: np.ndarray, fps: float) -> np.ndarray:
    """(n,) bool: silent frames in runs of at least 0.3 s (``count >= 0.3 * fps``)."""
    keep = np.zeros(len(speech), bool)
    start = None
    for i, s in enumerate(list(speech) + [True]):
        if not s and start is None:
            start = i
        elif s and start is not None:
            if i - start >= MIN_SILENCE_S * fps:
                keep[start:i] = True
            start = None
    return keep


def lip_openings(lms: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(n,) mean normalised vertical inner-lip gap per frame (NaN: no face or eyes too close)."""
    lm = theval.in_work_size(lms, hw)
    a, b = theval.OUTER_EYE_CORNERS
    eye = np.linalg.norm(lm[:, a] - lm[:, b], axis=1)
    gaps = np.stack([np.abs(lm[:, u, 1] - lm[:, d, 1]) for u, d in theval.LIP_PAIRS], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(eye >= 1e-3, (gaps / eye[:, None]).mean(1), np.nan)


def silent_lip_stability(openings: np.ndarray, silent: np.ndarray) -> tuple[float | None, dict]:
    x = openings[silent & ~np.isnan(openings)]
    info = {"silent_frames": int(silent.sum()), "frames_counted": int(len(x))}
    if len(x) < 2:
        return None, {**info, "why": f"{len(x)} frames in silences of at least {MIN_SILENCE_S * 1000:.0f} ms with a face (needs 2)"}
    return float(np.median(np.abs(x - x.mean()))), info


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    _, speech = theval.voice(ctx)
    silent = long_silences(speech, ctx.fps)
    return theval.pred_and_gt(
        ctx, names, "silent_lip_dlib", lambda which: silent_lip_stability(lip_openings(ctx.landmarks(which), ctx.hw), silent)
    )


#: dlib's landmarks and THEval's voice activity detector
PACKAGES = (*LANDMARK_PACKAGES, *theval.VAD_PACKAGES)
METRICS = [
    Metric(
        "silent_lip_dlib",
        "lower",
        "Silent Lip Stability (dlib)",
        tolerance=0.02,
        compute=compute,
        family="theval",
        needs_audio=True,
        group="silent_lip_dlib",
        per_frame=False,
        packages=PACKAGES,
        value_range=(0.0, math.inf),
    ),
    Metric(
        "silent_lip_dlib_close",
        "higher",
        "Silent Lip Stability (dlib) closeness",
        tolerance=0.3,
        compute=compute,
        family="theval",
        needs_gt=True,
        needs_audio=True,
        group="silent_lip_dlib",
        per_frame=False,
        packages=PACKAGES,
        value_range=(-math.inf, 1.0),
    ),
]
