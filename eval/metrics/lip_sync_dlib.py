"""``lip_sync_dlib``: THEval's Lip-Sync on 68-point landmarks (labelled "(dlib)"), and
``lip_sync_dlib_close``, its closeness to the ground truth's value.

Source: ``Synchronization/lip_sync.py`` of THEval (Newbyl/THEval @ cfe23fe); shared parts
and the FaceMesh -> 68-point mapping in :mod:`aebench.eval.theval`.

* Mouth openness per frame (``lip_sync.py:67-80``), in coordinates normalised by the frame
  size: ``|mean y(inner upper lip) - mean y(inner lower lip)| / |mean x(eye corners, image
  right) - mean x(eye corners, image left)|`` (a horizontal interocular distance); NaN
  without a face.
* Loudness (``lip_sync.py:45-50``): RMS over 0.05 s frames and hop of the 16 kHz audio,
  interpolated at the frame times (:func:`aebench.eval.theval.rms_at_frames`). THEval's documented
  path reads the clip's audio as 16 kHz mono (``theval/cli/extract_audio.py``), as here.
* Speech frames from silero-vad (:func:`aebench.eval.theval.speech_frames`); a frame counts when it
  is speech and has a face (``lip_sync.py:92``).
* NaN rule (``lip_sync.py:93-94``): no value when speech covers under 10% of the frames, or
  fewer than two frames count.
* Value (``lip_sync.py:96-104``): openness and loudness each min-max normalised over the
  counted frames (``+ 1e-8``), then ``mean |openness - loudness|``. Lower is better (the
  mouth follows the voice); THEval scores it by closeness to the ground truth.
"""

from __future__ import annotations

import math

import numpy as np

from aebench.eval import theval
from aebench.eval.registry import LANDMARK_PACKAGES, Context, Metric, Value

MIN_SPEECH_RATIO = 0.1  # lip_sync.py:93


def openness(lms: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(n,) normalised inner-lip gap per frame of (n, 68, 2) pixel landmarks (NaN: no face)."""
    h, w = hw
    lm = np.asarray(lms, np.float64)
    upper = lm[:, theval.UPPER_INNER_LIP, 1].mean(1) / h
    lower = lm[:, theval.LOWER_INNER_LIP, 1].mean(1) / h
    left = lm[:, theval.EYE_CORNERS_LEFT_IMG, 0].mean(1) / w
    right = lm[:, theval.EYE_CORNERS_RIGHT_IMG, 0].mean(1) / w
    inter = np.abs(right - left)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, np.abs(upper - lower) / inter, np.nan)


def lip_sync(o: np.ndarray, loudness: np.ndarray, speech: np.ndarray) -> tuple[float | None, dict]:
    """THEval's Lip-Sync of per-frame openness ``o``, ``loudness`` and ``speech`` mask."""
    ratio = float(speech.mean()) if len(speech) else 0.0
    mask = speech & ~np.isnan(o)
    info = {"speech_ratio": ratio, "frames_counted": int(mask.sum())}
    if ratio < MIN_SPEECH_RATIO:
        return None, {**info, "why": f"speech in {ratio:.0%} of the frames (needs {MIN_SPEECH_RATIO:.0%})"}
    if mask.sum() < 2:
        return None, {**info, "why": f"{int(mask.sum())} speech frames with a face (needs 2)"}
    os_, vs = o[mask], loudness[mask]
    on = (os_ - os_.min()) / (os_.max() - os_.min() + 1e-8)
    vn = (vs - vs.min()) / (vs.max() - vs.min() + 1e-8)
    return float(np.mean(np.abs(on - vn))), info


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    _, speech = theval.voice(ctx)
    loud = theval.rms_at_frames(ctx.audio, ctx.fps, ctx.n)
    return theval.pred_and_gt(ctx, names, "lip_sync_dlib", lambda which: lip_sync(openness(ctx.landmarks(which), ctx.hw), loud, speech))


#: dlib's landmarks and THEval's voice activity detector
PACKAGES = (*LANDMARK_PACKAGES, *theval.VAD_PACKAGES)
METRICS = [
    Metric(
        "lip_sync_dlib",
        "lower",
        "Lip-Sync (dlib)",
        tolerance=0.1,
        compute=compute,
        family="theval",
        needs_audio=True,
        group="lip_sync_dlib",
        per_frame=False,
        packages=PACKAGES,
        value_range=(0.0, math.inf),
    ),
    Metric(
        "lip_sync_dlib_close",
        "higher",
        "Lip-Sync (dlib) closeness",
        tolerance=0.25,
        compute=compute,
        family="theval",
        needs_gt=True,
        needs_audio=True,
        group="lip_sync_dlib",
        per_frame=False,
        packages=PACKAGES,
        value_range=(-math.inf, 1.0),
    ),
]
