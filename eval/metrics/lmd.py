"""``lmd``: LMD (mouth landmark distance, Chen et al. 2018) as the community computes it.

Reference: ``LMDMeter(backend="fan", region="mouth")`` in ``nerf/utils.py`` of RAD-NeRF
(ashawkey, lines 475-566), the same class in ER-NeRF and SyncTalk:

* landmarks: ``face_alignment.FaceAlignment(LandmarksType._2D, flip_input=False)`` (the
  package's S3FD face detector and its 2D FAN-4), ``get_landmarks(img)[-1]``: the landmarks
  of the *last* detected face, on the RGB uint8 frame;
* points 48:68 (the 20 mouth points), each set minus its own mean (so a global translation
  of the head is not counted, only mouth shape);
* per frame ``np.sqrt(((pred - truth) ** 2).sum(1)).mean(0)``; the summary is the mean over
  frames, in pixels of the evaluated resolution (the ground truth's).

Here it runs face-alignment's own code (``FaceAlignment.get_landmarks``, S3FD detection,
cropping, FAN, heat-map decoding) with the weights taken from the verified store
(``face_alignment_s3fd``, ``face_alignment_2dfan4``): the S3FD file goes in through the
package's ``path_to_detector``, the FAN file through a subclass whose ``_load_native`` reads
the store instead of downloading. ``compile=False`` (eager mode; torch.compile only speeds
it up). Where the weights are absent, ``lmd`` is missing with the command that fixes it;
the offline variant is :mod:`aebench.eval.metrics.lmd_dlib`, always labelled as such.

Differences from the reference, stated: a frame where S3FD finds no face crashes the
reference (``None[-1]``); here it has no value, is excluded from the mean and counted in
``info["lmd"]["frames_without_face"]``; below :data:`MIN_COVERAGE` (90% of frames with a
face in both) the metric is missing, with the coverage recorded.
"""

from __future__ import annotations

import math

from functools import lru_cache

import numpy as np

from aebench.data.landmarks import MOUTH
from aebench.eval.registry import Context, Metric, Value

MIN_COVERAGE = 0.9  # share of frames that must have a face in both prediction and ground truth
WEIGHTS = ("face_alignment_s3fd", "face_alignment_2dfan4")


def mouth_centred(landmarks: np.ndarray) -> np.ndarray:
    """(n, 68, 2) -> (n, 20, 2) mouth points minus their per-frame mean (NaN stays NaN)."""
    m = np.asarray(landmarks, dtype=np.float64)[:, MOUTH]
    return m - m.mean(axis=1, keepdims=True)


def lmd_frames(pred_lm: np.ndarray, gt_lm: np.ndarray) -> np.ndarray:
    """Per-frame LMD (pixels); NaN where either landmark set is missing."""
    d = mouth_centred(pred_lm) - mouth_centred(gt_lm)
    return np.linalg.norm(d, axis=-1).mean(axis=1)


def lmd_value(ctx: Context, name: str, pred_lm: np.ndarray, gt_lm: np.ndarray, landmarks: str) -> Value:
    """The LMD of two landmark tracks with the coverage rule, recording ``ctx.info[name]``."""
    vals = lmd_frames(pred_lm, gt_lm)
    ok = ~np.isnan(vals)
    coverage = float(ok.mean()) if len(ok) else 0.0
    ctx.info[name] = {
        "resolution": [int(ctx.hw[1]), int(ctx.hw[0])],
        "units": "pixels of the evaluated (ground-truth) resolution",
        "landmarks": landmarks,
        "face_coverage": coverage,
        "frames_without_face": int((~ok).sum()),
        "pred_without_face": int(np.isnan(pred_lm).any(axis=(1, 2)).sum()),
        "gt_without_face": int(np.isnan(gt_lm).any(axis=(1, 2)).sum()),
    }
    if coverage < MIN_COVERAGE:
        return Value(
            per_frame=vals,
            missing=f"{landmarks}: a face in both prediction and ground truth in "
            f"{int(ok.sum())}/{len(ok)} frames ({coverage:.0%}; needs {MIN_COVERAGE:.0%})",
        )
    return Value(per_frame=vals, summary=float(vals[ok].mean()))


@lru_cache(maxsize=2)
def face_alignment_from_store(s3fd_path: str, fan_path: str, device: str = "cpu"):
    """face-alignment's ``FaceAlignment`` (2D, S3FD, FAN-4, ``flip_input=False`` as LMDMeter)
    with both networks' weights read from the given files, never downloaded."""
    import face_alignment
    import torch
    from face_alignment.models import FAN

    from aebench import weights as wstore

    class StoreFaceAlignment(face_alignment.FaceAlignment):
        def _load_native(self, network_name, network_size, device, dtype):
            net = FAN(network_size)
            net.load_state_dict(wstore.load_state_dict(fan_path))
            return net.to(device, dtype=dtype).eval()

    return StoreFaceAlignment(
        face_alignment.LandmarksType.TWO_D,
        flip_input=False,
        device=device,
        dtype=torch.float32,
        face_detector="sfd",
        face_detector_kwargs={"path_to_detector": s3fd_path},
        compile=False,
    )


def fan_landmarks(fa, frames, n: int) -> np.ndarray:
    """(n, 68, 2) landmarks of the last detected face per frame of an iterable of ``n`` frames
    (``get_landmarks(img)[-1]``); NaN rows where none."""
    import warnings

    out = np.full((n, 68, 2), np.nan, np.float32)
    for i, img in enumerate(frames):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No faces were detected")
            found = fa.get_landmarks(np.ascontiguousarray(img))
        if found:
            out[i] = np.asarray(found[-1], dtype=np.float32)[:, :2]
    return out


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    s3fd, fan = (ctx.weights[w] for w in WEIGHTS)
    import torch

    fa = face_alignment_from_store(s3fd.path, fan.path, "cuda" if torch.cuda.is_available() else "cpu")
    tracks = {}
    for which in ("pred", "gt"):
        key = f"fan_landmarks_{which}"
        if key not in ctx.cache:
            ctx.cache[key] = fan_landmarks(fa, ctx.frames(which, f"fan landmarks ({which})"), len(ctx.pred))
        tracks[which] = ctx.cache[key]
    return {"lmd": lmd_value(ctx, "lmd", tracks["pred"], tracks["gt"], "face-alignment 2D FAN-4 + S3FD")}


METRICS = [
    Metric(
        "lmd",
        "lower",
        "LMD",
        tolerance=0.5,
        compute=compute,
        family="paper",
        needs_gt=True,
        weights=WEIGHTS,
        packages=("face-alignment", "torch"),
        value_range=(0.0, math.inf),
    )
]
