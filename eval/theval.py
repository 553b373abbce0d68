"""Shared parts of the THEval metrics (Quignon et al., CVPR 2026), computed on 68-point
landmarks: the landmark mapping, voice activity, loudness and the closeness score.

Source: github.com/Newbyl/THEval at cfe23fe (metric code unchanged since the release commit
3603338); file and line of each constant are cited where it is used. THEval runs MediaPipe
FaceMesh (``mediapipe==0.10.21``, ``requirements.txt:30``), whose releases that still ship the
model pin numpy<2 and protobuf<5; aebench computes the metrics on the dlib 68-point
landmarks every landmark metric shares (:meth:`aebench.eval.registry.Context.landmarks`, detected once
per frame per evaluation) and labels them ``(dlib)``, as ``lmd_dlib`` is labelled.

FaceMesh -> 68-point mapping (same anatomical points; FaceMesh has more of them):

=========================  ====================================================  ==============
what                       FaceMesh indices (THEval)                              68-point
=========================  ====================================================  ==============
inner upper lip            191, 80, 81, 82, 13, 312, 311, 310                     61, 62, 63
inner lower lip            95, 88, 178, 87, 14, 317, 402, 318                     67, 66, 65
vertical lip pairs         (191,95) (80,88) (81,178) (82,87) (13,14) ...          (61,67) (62,66) (63,65)
eye corners, image left    33 (outer), 133 (inner)                                36, 39
eye corners, image right   362 (inner), 263 (outer)                               42, 45
lips (all)                 40 points of FACEMESH_LIPS                             48-67 (20)
brow / eye, image left     FACEMESH_RIGHT_EYEBROW (10) / RIGHT_EYE (16)           17-21 / 36-41
brow / eye, image right    FACEMESH_LEFT_EYEBROW (10) / LEFT_EYE (16)             22-26 / 42-47
=========================  ====================================================  ==============

Voice activity: ``silero-vad`` with THEval's call, ``get_speech_timestamps(wav, model,
return_seconds=True)`` at every default (threshold 0.5, 16 kHz, 250 ms minimum speech,
100 ms minimum silence, 30 ms padding, seconds rounded to 0.1). THEval pins silero-vad 5.1.2,
whose install requires torchaudio and onnxruntime releases that conflict with this torch;
aebench uses silero-vad 6 (same function and defaults, newer model), so speech segments can
differ from THEval's by the model's own differences.

Regression tolerances (in each metric's registry entry) come from two runs of
``real_quick`` that differ only in the seed (seed 0, the committed reference, and seed 1):
each is the largest change between the two seeds over the rows and voices, rounded up
(Lip-Sync 0.094 -> 0.1, its closeness 0.20 -> 0.25, Lip Dynamics 0.42 -> 0.5, its closeness
0.17 -> 0.2, Eyebrow Dynamics 0.006 -> 0.01, its closeness 0.16 -> 0.2). Silent Lip
Stability was missing in every cell of those runs (1.6 s of speech has no 300 ms silence):
its tolerances (0.02, 0.3) are set by hand and untested against repeated runs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from aebench.media import AUDIO_RATE

#: 68-point indices (see the table above)
UPPER_INNER_LIP = [61, 62, 63]
LOWER_INNER_LIP = [67, 66, 65]
LIP_PAIRS = list(zip(UPPER_INNER_LIP, LOWER_INNER_LIP))
EYE_CORNERS_LEFT_IMG, EYE_CORNERS_RIGHT_IMG = [36, 39], [42, 45]
OUTER_EYE_CORNERS = (36, 45)
LIPS = list(range(48, 68))
BROW_LEFT_IMG, EYE_LEFT_IMG = list(range(17, 22)), list(range(36, 42))
BROW_RIGHT_IMG, EYE_RIGHT_IMG = list(range(22, 27)), list(range(42, 48))
#: THEval resizes frames to 256x256 before FaceMesh in Silent Lip Stability and Lip Dynamics
#: (``Synchronization/silent_lip_stability.py:118``, ``Naturalness/lip_dynamics.py:41-44,72-81``)
WORK_SIZE = 256
#: the distributions behind :func:`speech_frames` (THEval's voice activity detector)
VAD_PACKAGES = ("silero-vad", "torch")
#: THEval's scoring.py:124: a ground truth this close to 0 has no closeness score
EPS = 1e-9


@lru_cache(maxsize=1)
def vad_model():
    import warnings

    from silero_vad import load_silero_vad

    with warnings.catch_warnings():  # torch.jit.load's deprecation notice
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # and importlib_resources.path, in silero's loader
        return load_silero_vad()


def speech_segments(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono ``audio`` (THEval's silero call,
    ``Synchronization/lip_sync.py:32-43``)."""
    import torch
    from silero_vad import get_speech_timestamps

    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    with torch.inference_mode():
        stamps = get_speech_timestamps(wav, vad_model(), return_seconds=True)
    return [(float(s["start"]), float(s["end"])) for s in stamps]


def speech_frames(segments: list[tuple[float, float]], fps: float, n: int) -> np.ndarray:
    """(n,) bool: video frames inside speech, ``int(start * fps)`` to ``int(end * fps)``
    inclusive (``lip_sync.py:36-41``; ``silent_lip_stability.py:51-60`` the same)."""
    mask = np.zeros(n, bool)
    for start, end in segments:
        mask[int(start * fps) : min(int(end * fps) + 1, n)] = True
    return mask


def rms_at_frames(audio: np.ndarray, fps: float, n: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """(n,) RMS loudness at the video frame times ``i / fps``: ``librosa.feature.rms`` with
    0.05 s frames and 0.05 s hop (``center=True``, zero padding), frame k at ``k * hop / rate``,
    linearly interpolated (``lip_sync.py:45-50``). Written out (librosa is not a dependency)
    and checked against librosa's own function where it is installed (tests)."""
    y = np.asarray(audio, dtype=np.float32)
    frame = hop = int(rate * 0.05)
    y = np.pad(y, (frame // 2, frame // 2), mode="constant")
    k = 1 + max(0, (len(y) - frame) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(y, frame)[::hop][:k]
    rms = np.sqrt(np.mean(np.abs(frames) ** 2, axis=1))
    times = np.arange(len(rms)) * hop / rate
    return np.interp(np.arange(n) / fps, times, rms)


def in_work_size(lms: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(n, 68, 2) pixel landmarks of an (h, w) frame in THEval's 256x256 working frame."""
    h, w = hw
    return np.asarray(lms, np.float64) * np.array([WORK_SIZE / w, WORK_SIZE / h])


def closeness(method: float | None, gt: float | None) -> float | None:
    """THEval's score against the ground truth, ``1 - |method - gt| / |gt|`` (``theval/scoring.py:
    131-143``; higher is better, 1 = as the ground truth, unclipped so it can go below 0);
    None when either is missing or the ground truth is 0."""
    if method is None or gt is None or not np.isfinite(method) or not np.isfinite(gt) or abs(gt) <= EPS:
        return None
    return float(1.0 - abs(method - gt) / abs(gt))


def pred_and_gt(ctx, names: list[str], name: str, raw) -> dict:
    """Values of one THEval metric: ``name`` (raw, on the prediction) and ``name_close``
    (closeness to the same metric on the ground truth), those of them in ``names``.
    ``raw(which)`` returns ``(value or None, info)`` for "pred" or "gt"; ``info["why"]`` says
    why a value is None. Both sides are recorded in ``ctx.info[name]``."""
    from aebench.eval.registry import Value

    p, p_info = raw("pred")
    rec = {"pred": p, **{f"pred_{k}": v for k, v in p_info.items()}}
    out = {name: Value(summary=p) if p is not None else Value(missing=f"prediction: {p_info.get('why')}")}
    if f"{name}_close" in names and ctx.gt is not None:
        g, g_info = raw("gt")
        rec.update({"gt": g, **{f"gt_{k}": v for k, v in g_info.items()}})
        c = closeness(p, g)
        why = (
            f"ground truth: {g_info.get('why')}"
            if g is None
            else f"prediction: {p_info.get('why')}"
            if p is None
            else "the ground truth's value is 0"
        )
        out[f"{name}_close"] = Value(summary=c) if c is not None else Value(missing=why)
    ctx.info[name] = rec
    return {k: v for k, v in out.items() if k in names}


def voice(ctx) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Speech segments and per-frame speech mask of the evaluation's audio, computed once."""
    if "vad" not in ctx.cache:
        segments = speech_segments(ctx.audio)
        ctx.cache["vad"] = (segments, speech_frames(segments, ctx.fps, ctx.n))
    return ctx.cache["vad"]
