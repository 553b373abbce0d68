"""SyncNet LSE-C (``sync_conf``) and LSE-D (``sync_dist``), as ``syncnet_python`` computes them.

Reference: joonson/syncnet_python ``SyncNetInstance.evaluate`` (reproduced by the
``syncnet-python`` PyPI package, whose ``SyncNetModel`` architecture is used here), as
run by ``run_syncnet.py`` (``--batch_size 20 --vshift 15``) and by the Wav2Lip /
talking-head LSE scripts. :func:`sync_scores` reproduces it step by step:

* video at 25 fps; the network sees BGR 224x224 crops (the reference reads its crop
  JPEGs with ``cv2.imread``) as float 0..255, no normalisation;
* audio 16 kHz as 16-bit PCM values (the reference reads an int16 wav with
  ``scipy.io.wavfile``; a float signal in [-1, 1] is converted with ``round(x * 32768)``,
  clipped), MFCC by ``python_speech_features.mfcc(audio, 16000)`` (13 coefficients,
  25 ms windows every 10 ms = 100 Hz);
* ``min_length = min(n_frames, floor(n_samples / 640))``; windows ``i`` in
  ``range(min_length - 5)`` (the reference's ``lastframe``: one fewer than would fit);
  video window = frames ``i .. i+4``, audio window = MFCC columns ``4i .. 4i+19``;
* per window a lip and an audio embedding (batches of 20; eval mode, so batching does
  not change values); the audio *embeddings* are zero-padded by ``vshift = 15`` on both
  sides and ``dists[i][k] = pairwise_distance(v_i, a_padded[i + k])`` (torch's, with
  its eps=1e-6); ``mdist = mean_i dists[i]`` over the 31 offsets;
* LSE-D = ``min(mdist)``, LSE-C = ``median(mdist) - min(mdist)`` (torch median of 31
  values), offset = ``vshift - argmin``.

Face crops. With the S3FD weights in the store (``syncnet_s3fd``, the ``sfd_face.pth`` of
syncnet_python), the metrics come from the package's own pipeline
(``syncnet_python.syncnet_pipeline.SyncNetPipeline.inference``: ffmpeg to 25 fps, S3FD,
scene detection, tracking with ``min_track`` 50 and ``min_face_size`` 100, 13-tap median
smoothing, crop scale 0.4, ``SyncNetInstance.evaluate``), called, not re-implemented
(:func:`run_pipeline`); LSE-C is its ``max(confs)`` and LSE-D its ``min(dists)`` over tracks,
and no track makes the metrics missing (the pipeline's 0.0 is not a score). It needs the
ffmpeg program.

Without S3FD weights, a clearly labelled variant (``info["sync"]["crop"] == "dlib"``, marked
in tables): the reference's smoothing and crop applied to boxes from dlib's 68 landmarks:
x from the jaw extremes (points 0-16), bottom at the chin (largest y), top at the eyebrows
(points 17-26) raised by a quarter of the brow-to-chin height, approximating S3FD's
forehead-to-chin box; the 13-tap median (scipy ``medfilt``, zero-padded at the ends; fewer
taps for a clip shorter than 13 frames); from the frame padded by ``bs * (1 + 2 * 0.4)``
pixels of grey 110, rows ``cy - bs .. cy + bs * (1 + 2 * 0.4)`` and columns
``cx - bs * 1.4 .. cx + bs * 1.4`` (``bs`` = half the larger box side), resized to 224x224.
Frames with no face take the box of the nearest frame with one; if fewer than half of the
frames have a face, the sync metrics are missing. A clip that is not 25 fps is resampled to
25 fps by nearest frame (as ``ffmpeg -r 25`` does). Every video frame is one track (no scene
cuts assumed).
"""

from __future__ import annotations

import math

from functools import lru_cache
from pathlib import Path

import numpy as np

from aebench.eval.registry import Context, Metric, Value
from aebench.media import AUDIO_RATE

SYNCNET_FPS = 25.0  # the frame rate syncnet-python's pipeline works at (its ffmpeg -r 25), a fact of SyncNet's
VSHIFT = 15
BATCH = 20
CROP_SCALE = 0.4
SIZE = 224


def load_syncnet(state_dict: dict):
    """``syncnet_python.SyncNetModel`` in eval mode with ``state_dict`` loaded (strict)."""
    from syncnet_python import SyncNetModel

    model = SyncNetModel()
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def to_int16(audio16k: np.ndarray) -> np.ndarray:
    """Float [-1, 1] audio -> int16 PCM (as a 16-bit wav holds it); int16 input unchanged."""
    a = np.asarray(audio16k)
    if a.dtype == np.int16:
        return a
    return np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def mfcc(audio16k: np.ndarray) -> np.ndarray:
    """(13, T) MFCC at 100 Hz exactly as the reference computes it."""
    import python_speech_features

    return np.asarray(python_speech_features.mfcc(to_int16(audio16k), AUDIO_RATE)).T


def sync_scores(
    crops: np.ndarray, audio16k: np.ndarray, model, vshift: int = VSHIFT, batch_size: int = BATCH, progress: bool = False
) -> tuple[int, float, float]:
    """(offset, LSE-C, LSE-D) of uint8 RGB face crops (n, 224, 224, 3) at 25 fps and 16 kHz audio."""
    import torch
    from tqdm import tqdm

    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (SIZE, SIZE, 3):
        raise ValueError(f"crops must be (n, 224, 224, 3) uint8, got {crops.shape}")
    audio = to_int16(audio16k)
    min_length = min(len(crops), len(audio) // 640)
    lastframe = min_length - 5
    if lastframe < 1:
        raise ValueError(
            f"too short for SyncNet: {len(crops)} frames, {len(audio) / AUDIO_RATE:.2f} s of audio (needs at least 6 frames and 0.24 s)"
        )

    def window(v: int):  # (1, 3, 5, 224, 224) BGR 0..255, converted per batch (crops stay uint8)
        return torch.from_numpy(np.ascontiguousarray(crops[v : v + 5, :, :, ::-1])).permute(3, 0, 1, 2).float()[None]

    cc = torch.from_numpy(mfcc(audio).astype(float)).float()[None, None]  # (1, 1, 13, T)
    im_feat, cc_feat = [], []
    with torch.no_grad():
        for i in tqdm(range(0, lastframe, batch_size), desc="syncnet", unit="batch", disable=not progress):
            idx = range(i, min(lastframe, i + batch_size))
            im_feat.append(model.forward_lip(torch.cat([window(v) for v in idx], 0)))
            cc_feat.append(model.forward_aud(torch.cat([cc[:, :, :, v * 4 : v * 4 + 20] for v in idx], 0)))
    im_feat, cc_feat = torch.cat(im_feat, 0), torch.cat(cc_feat, 0)
    win = 2 * vshift + 1
    ccp = torch.nn.functional.pad(cc_feat, (0, 0, vshift, vshift))
    dists = torch.stack(
        [torch.nn.functional.pairwise_distance(im_feat[[i], :].repeat(win, 1), ccp[i : i + win]) for i in range(len(im_feat))], 1
    )
    mdist = dists.mean(1)
    minval, minidx = torch.min(mdist, 0)
    return int(vshift - minidx), float(torch.median(mdist) - minval), float(minval)


def boxes_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(n, 68, 2) -> (n, 4) x1, y1, x2, y2 S3FD-like face boxes; NaN rows where no face."""
    lm = np.asarray(landmarks, dtype=np.float64)
    x1, x2 = lm[:, :17, 0].min(1), lm[:, :17, 0].max(1)
    y2 = lm[:, :, 1].max(1)
    brow = lm[:, 17:27, 1].min(1)
    y1 = brow - 0.25 * (y2 - brow)
    return np.stack([x1, y1, x2, y2], 1)


def fill_missing(boxes: np.ndarray) -> np.ndarray:
    """Rows without a face take the nearest row with one."""
    ok = ~np.isnan(boxes).any(1)
    if not ok.any():
        raise ValueError("no face found in any frame")
    good = np.flatnonzero(ok)
    nearest = good[np.abs(np.arange(len(boxes))[:, None] - good[None, :]).argmin(1)]
    return boxes[nearest]


def crop_faces(frames, boxes: np.ndarray, n: int | None = None, crop_scale: float = CROP_SCALE) -> np.ndarray:
    """uint8 (n, 224, 224, 3) crops as the reference ``crop_video`` cuts them from (n, 4) boxes, of
    ``frames`` (an array, or an iterable of ``n`` frames read one at a time)."""
    import cv2
    from scipy import signal

    b = np.asarray(boxes, dtype=np.float64)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2
    x, y = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    k = min(13, len(b) if len(b) % 2 else len(b) - 1)  # the reference's 13 taps; fewer for clips under 13 frames
    s, x, y = (signal.medfilt(v, kernel_size=k) for v in (s, x, y))
    out = np.empty((len(b) if n is None else n, SIZE, SIZE, 3), np.uint8)
    for i, img in enumerate(frames):
        bs = s[i]
        pad = int(bs * (1 + 2 * crop_scale))
        img_p = cv2.copyMakeBorder(np.ascontiguousarray(img), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(110, 110, 110))
        my, mx = y[i] + pad, x[i] + pad
        crop = img_p[int(my - bs) : int(my + bs * (1 + 2 * crop_scale)), int(mx - bs * (1 + crop_scale)) : int(mx + bs * (1 + crop_scale))]
        out[i] = cv2.resize(crop, (SIZE, SIZE))
    return out


def resample_indices(n: int, fps: float) -> np.ndarray:
    """Source frame of each output frame of nearest-frame resampling of ``n`` frames to 25 fps
    (as ``ffmpeg -r 25`` does in the reference pipeline)."""
    if abs(fps - SYNCNET_FPS) < 1e-3:
        return np.arange(n)
    n_out = int(round(n * SYNCNET_FPS / fps))
    return np.minimum(np.round(np.arange(n_out) * fps / SYNCNET_FPS).astype(int), n - 1)


def resample_to_25fps(frames: np.ndarray, fps: float) -> np.ndarray:
    """Nearest-frame resampling to 25 fps (identity at 25 fps)."""
    return frames if abs(fps - SYNCNET_FPS) < 1e-3 else frames[resample_indices(len(frames), fps)]


def iter_resampled(frames, n: int, fps: float):
    """The same for an iterable of ``n`` frames, one frame at a time (the indices only grow)."""
    idx = resample_indices(n, fps)
    pos = 0
    for j, img in enumerate(frames):
        while pos < len(idx) and idx[pos] == j:
            yield img
            pos += 1


@lru_cache(maxsize=2)
def _network(path: str, sha256: str):
    """Built once per weights file (keyed by its hash) and reused across evaluations."""
    from aebench import weights as wstore

    return load_syncnet(wstore.load_state_dict(path))


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    """LSE-C and LSE-D: from syncnet-python's own pipeline when the S3FD weights are in the store
    (``syncnet_s3fd``), else from one SyncNet pass over dlib-landmark crops (``crop: dlib``)."""
    s3fd = ctx.optional_weights("syncnet_s3fd")
    if s3fd is not None:
        return _compute_pipeline(ctx, names, s3fd)
    return _compute_dlib(ctx, names)


def _compute_dlib(ctx: Context, names: list[str]) -> dict[str, Value]:
    landmarks = ctx.landmarks("pred")
    has_face = ~np.isnan(landmarks).any(axis=(1, 2))
    info = ctx.info.setdefault("sync", {})
    info.update(
        {
            "frames_without_face": int((~has_face).sum()),
            "fps_in": float(ctx.fps),
            "crop": "dlib",
            "face_crop": "dlib-landmark box, S3FD-style crop (crop scale 0.4), 224x224 (labelled variant: no S3FD weights in the store)",
        }
    )
    if has_face.mean() < 0.5:
        why = f"dlib found a face in only {int(has_face.sum())}/{len(has_face)} frames (need half)"
        return {n: Value(missing=why) for n in names}
    rec = ctx.weights["syncnet"]
    crops = resample_to_25fps(crop_faces(ctx.frames("pred"), fill_missing(boxes_from_landmarks(landmarks)), ctx.n), ctx.fps)
    try:
        offset, conf, dist = sync_scores(crops, ctx.audio, _network(rec.path, rec.sha256), progress=ctx.progress)
    except ValueError as exc:
        return {n: Value(missing=str(exc)) for n in names}
    info.update(offset=offset, n_frames_25fps=int(len(crops)))
    values = {"sync_conf": conf, "sync_dist": dist}
    return {n: Value(summary=values[n]) for n in names}


def pipeline_inputs(ctx: Context, work: Path) -> tuple[str, str]:
    """The video and wav the reference pipeline reads: the prediction's own file when it was given
    as one and is scored whole (as given), else its frames as lossless PNGs at 25 fps; the audio
    as 16-bit PCM."""
    from scipy.io import wavfile

    whole = "truncated" not in ctx.info and "pred_resized" not in ctx.info
    if ctx.source is not None and whole:
        video = ctx.source
    else:
        from aebench.media import PngSequence

        pngs = PngSequence(work / "frames")
        for img in iter_resampled(ctx.frames("pred"), ctx.n, ctx.fps):
            pngs.write(img)
        video = str(pngs.commit() / "%05d.png")  # ffmpeg's image2 input, 25 fps
    wav = work / "audio.wav"
    wavfile.write(wav, AUDIO_RATE, to_int16(ctx.audio))
    return video, str(wav)


def _compute_pipeline(ctx: Context, names: list[str], s3fd) -> dict[str, Value]:
    """``syncnet_python.syncnet_pipeline.SyncNetPipeline.inference`` itself: ffmpeg to 25 fps,
    S3FD (``facedet_scale`` 0.25, ``conf_th`` 0.9), scene detection, tracks of more than
    ``min_track`` (50) frames and faces over ``min_face_size`` (100 px), median-smoothed crops
    (scale 0.4), ``SyncNetInstance.evaluate``; LSE-C = its ``max(confs)``, LSE-D = ``min(dists)``
    over tracks. No track -> missing (the pipeline's 0.0 is not a score)."""
    import shutil
    import tempfile

    rec = ctx.weights["syncnet"]
    if shutil.which("ffmpeg") is None:
        why = (
            "syncnet-python's pipeline needs the ffmpeg program (apt-get install ffmpeg); or remove "
            "syncnet_s3fd from the weights store to use the labelled dlib-crop variant"
        )
        return {n: Value(missing=why) for n in names}
    info = ctx.info.setdefault("sync", {})
    info.update({"crop": "s3fd", "pipeline": "syncnet_python.syncnet_pipeline.SyncNetPipeline.inference"})
    with tempfile.TemporaryDirectory(prefix="aebench-sync-") as tmp:
        work = Path(tmp)
        video, wav = pipeline_inputs(ctx, work)
        import torch

        offsets, confs, dists, conf, dist, _, has_face = run_pipeline(
            video, wav, s3fd.path, rec.path, work / "cache", "cuda" if torch.cuda.is_available() else "cpu"
        )
    info.update(
        offsets=[int(o) for o in offsets],
        confs=[float(c) for c in confs],
        dists=[float(d) for d in dists],
        has_face=bool(has_face),
        tracks=len(offsets),
    )
    if not offsets:
        why = (
            "S3FD found no face track (more than 50 frames, min_track, of faces over 100 px, min_face_size) "
            f"in {len(ctx.pred)} frames" + ("" if has_face else ": no face detected at all")
        )
        return {n: Value(missing=why) for n in names}
    info["offset"] = int(offsets[int(np.argmax(confs))])
    values = {"sync_conf": float(conf), "sync_dist": float(dist)}
    return {n: Value(summary=values[n]) for n in names}


def run_pipeline(video: str, wav: str, s3fd_path: str, syncnet_path: str, cache_dir: Path, device: str = "cpu"):
    """The package's pipeline on ``video`` + ``wav`` with the given weight files; ffmpeg's console
    output is silenced (it writes to the inherited stderr)."""
    import contextlib
    import os

    from syncnet_python.syncnet_pipeline import SyncNetPipeline

    pipe = SyncNetPipeline({"s3fd_weights": str(s3fd_path), "syncnet_weights": str(syncnet_path)}, device=device)
    with open(os.devnull, "w") as null, contextlib.ExitStack() as stack:
        saved = os.dup(2)
        stack.callback(os.close, saved)
        os.dup2(null.fileno(), 2)
        stack.callback(os.dup2, saved, 2)
        stack.enter_context(contextlib.redirect_stdout(null))  # SyncNetInstance prints its scores
        return pipe.inference(video, wav, cache_dir=str(cache_dir))


#: what syncnet-python's pipeline needs of a video (its PipelineConfig defaults, kept here): a face
#: track of more than ``min_track`` = 50 detected frames, of faces whose mean box is larger than
#: ``min_face_size`` = 100 px
NEEDS = dict(
    min_frames=51,
    min_face_px=101,
    needs_source="syncnet-python's pipeline keeps only face tracks of more than 50 frames (min_track) of "
    "faces larger than 100 px (min_face_size)",
)


def dlib_crops(info: dict) -> bool:
    """The labelled variant: face crops from dlib's landmarks, not S3FD's (no ``syncnet_s3fd`` weights)."""
    return (info.get("sync") or {}).get("crop") == "dlib"


#: what the sync metrics' record says of both: weights, packages, variant, needs
SHARED = dict(
    compute=compute,
    family="paper",
    needs_audio=True,
    weights=("syncnet",),
    optional_weights=("syncnet_s3fd",),
    packages=("syncnet-python", "python-speech-features", "opencv-python", "opencv-contrib-python", "scipy", "torch"),
    variant=dlib_crops,
    variant_note="SyncNet on face crops from dlib landmarks (crop: dlib), not the S3FD pipeline",
    group="sync",
    per_frame=False,
    **NEEDS,
    value_range=(0.0, math.inf),
)
METRICS = [
    Metric("sync_conf", "higher", "LSE-C", tolerance=0.5, **SHARED),
    Metric("sync_dist", "lower", "LSE-D", tolerance=0.5, **SHARED),
]
