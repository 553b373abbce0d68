"""Prepare a real talking-head clip into an identity (format: :mod:`aebench.data.identity`).

Stages: decode + resample to ``fps`` + centre square crop + resize -> dlib 68 landmarks
(box found on a ``detect_size`` copy, landmarks predicted at full size) -> fill frames
without a face by linear interpolation, Gaussian smoothing over time -> PnP head pose
(:mod:`aebench.data.pose`) -> region masks and median background
(:mod:`aebench.data.regions`, optionally refined per frame by grabCut) -> audio (16 kHz mono) trimmed to the video -> features.

Frame-rate conversion is by timestamp: output frame ``k`` (time ``k / fps``) is the last
source frame whose presentation time is <= ``k / fps`` (+ half a millisecond), so 30 ->
25 fps keeps 5 of every 6 frames, dropping one evenly; 25 -> 25 keeps all.

Everything is written to a staging folder unique to the process (:mod:`aebench.data.staging`,
under a lock per identity, so two runs preparing the same clip never meet) and renamed when
complete; on any failure the staging folder is removed. A finished identity whose source sha256 and settings match
is left alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aebench.data.staging import check_name, identity_lock, publish, staging_dir
from aebench.media import FPS
from aebench.media import AUDIO_RATE, MediaError


class PrepareError(RuntimeError):
    """A clip cannot be prepared; the message says why and which clip."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _square(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    img = img[y:y + s, x:x + s]
    if s != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def resampled_frames(clip: Path, fps: float, max_seconds: float | None):
    """Yield RGB frames at ``fps`` by timestamp (see module docstring)."""
    import av

    k, last = 0, None
    try:
        with av.open(str(clip)) as box:
            if not box.streams.video:
                raise PrepareError(f"{clip}: no video stream")
            for frame in box.decode(video=0):
                t = float(frame.time) if frame.time is not None else None
                if t is None:
                    raise PrepareError(f"{clip}: frames without timestamps")
                img = frame.to_ndarray(format="rgb24")
                while k / fps < t - 5e-4 and last is not None:  # this frame starts after output time k
                    if max_seconds is not None and k >= round(max_seconds * fps):
                        return
                    yield last
                    k += 1
                last = img
            stream = box.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or fps)
            end = t + 1.0 / rate if last is not None else 0.0  # the last frame shows until t + 1/rate
            while last is not None and k / fps < end - 5e-4 and (max_seconds is None or k < round(max_seconds * fps)):
                yield last
                k += 1
    except av.error.FFmpegError as exc:
        raise PrepareError(f"{clip}: video cannot be decoded after {k} output frames, the file looks "
                           f"truncated or corrupt ({exc})") from exc


def _detect(detector, img: np.ndarray, detect_size: int) -> np.ndarray | None:
    import cv2
    import dlib

    s = min(1.0, detect_size / img.shape[1])
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img
    rects = detector.detector(small, detector.upsample)
    if len(rects) == 0:
        return None
    r = max(rects, key=lambda r: r.width() * r.height())
    box = dlib.rectangle(*(int(round(v / s)) for v in (r.left(), r.top(), r.right(), r.bottom())))
    shape = detector.predictor(img, box)
    return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


def fill_and_smooth(lms: np.ndarray, sigma: float) -> np.ndarray:
    """Linear interpolation over frames without a face (NaN), then Gaussian smoothing in time."""
    from scipy.ndimage import gaussian_filter1d

    ok = ~np.isnan(lms).any(axis=(1, 2))
    idx = np.arange(len(lms))
    flat = lms.reshape(len(lms), -1).copy()
    for c in range(flat.shape[1]):
        flat[~ok, c] = np.interp(idx[~ok], idx[ok], flat[ok, c])
    if sigma > 0 and len(flat) > 1:
        flat = gaussian_filter1d(flat, sigma, axis=0, mode="nearest")
    return flat.reshape(lms.shape).astype(np.float32)


def _versions() -> dict:
    import av
    import cv2
    import dlib
    import scipy

    return {"numpy": np.__version__, "scipy": scipy.__version__, "cv2": cv2.__version__,
            "dlib": dlib.__version__, "av": av.__version__}


def _settings(cfg, size: int, fps: float, max_seconds: float | None, features: Sequence[str]) -> dict:
    from omegaconf import OmegaConf

    return {"size": int(size), "fps": float(fps), "max_seconds": None if max_seconds is None else float(max_seconds),
            "features": list(features), "prepare": OmegaConf.to_container(cfg.prepare, resolve=True)}


def prepare(clip: str | Path, name: str, out: str | Path, size: int = 512, fps: float = FPS,
            max_seconds: float | None = None, overrides: Sequence[str] = (),
            features: Sequence[str] = ("mfcc",), progress: bool = True, log=print) -> Path:
    """Prepare ``clip`` into ``out/name`` (atomic, cached); returns the identity folder."""
    from aebench.config import load_config

    clip, out = Path(clip), Path(out)
    try:
        check_name(name)  # nothing is written outside ``out``
    except ValueError as exc:
        raise PrepareError(str(exc)) from exc
    bad = [o for o in overrides if not str(o).startswith("prepare.")]
    if bad:
        raise PrepareError(f"only prepare.* settings can be overridden here, got {bad}")
    cfg = load_config(list(overrides))  # unknown keys raise ConfigError naming the valid ones
    if not clip.is_file():
        raise PrepareError(f"{clip}: no such file")
    from aebench.data.features import FeatureError
    from aebench.data.features import settings as feature_settings

    try:  # unknown extractors and missing wav2vec2 weights fail here, before any work
        for f in features:
            feature_settings(f)
    except FeatureError as exc:
        raise PrepareError(str(exc)) from exc
    settings = _settings(cfg, size, fps, max_seconds, features)
    sha = sha256_file(clip)
    final = out / name
    with identity_lock(out, name):  # a concurrent run preparing the same identity waits, then finds it done
        if (final / "meta.json").exists():
            old = json.loads((final / "meta.json").read_text())
            if old.get("source_sha256") == sha and old.get("settings") == settings:
                log(f"{final}: up to date (same source and settings), nothing to do")
                return final
            log(f"{final}: source or settings changed, preparing again")
        tmp = staging_dir(out, name)
        try:
            meta = _run(clip, name, tmp, cfg.prepare, size, fps, max_seconds, features, progress, log)
            meta.update(source=str(clip.resolve()), source_sha256=sha, settings=settings)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            _features(tmp, features)
            publish(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _features(path: Path, names: Sequence[str]) -> None:
    from aebench.data.features import load_or_compute
    from aebench.data.identity import Identity

    ident = Identity.open(path)
    for n in names:
        load_or_compute(ident, n)


def _run(clip: Path, name: str, tmp: Path, p, size: int, fps: float, max_seconds, features, progress, log) -> dict:
    import cv2
    from scipy.io import wavfile
    from tqdm import tqdm

    from aebench.data import pose as P
    from aebench.data.landmarks import LandmarkDetector
    from aebench.data.regions import median_background, refine_person, region_mask
    from aebench.media import probe, read_audio

    t0 = time.perf_counter()
    try:
        info = probe(clip)
    except MediaError as exc:
        raise PrepareError(f"{exc}; is the file complete (not truncated) and a video?") from exc
    if not info.has_audio:
        raise PrepareError(f"{clip}: no audio stream; a talking-head identity needs the speech track")
    try:
        audio = read_audio(clip, AUDIO_RATE)
    except MediaError as exc:
        raise PrepareError(f"{exc}; the speech track is needed") from exc
    if max_seconds is not None:
        audio = audio[: int(round(max_seconds * AUDIO_RATE))]

    det = LandmarkDetector(upsample=int(p.upsample))
    (tmp / "frames").mkdir()
    lms = []
    q = [cv2.IMWRITE_JPEG_QUALITY, int(p.jpeg_quality)]
    total = round(max_seconds * fps) if max_seconds else None
    for i, img in enumerate(tqdm(resampled_frames(clip, fps, max_seconds), desc=f"{name}: frames+landmarks",
                                 total=total, disable=not progress, unit="frame")):
        img = _square(img, size)
        cv2.imwrite(str(tmp / "frames" / f"{i:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), q)
        lm = _detect(det, img, int(p.detect_size))
        lms.append(np.full((68, 2), np.nan, np.float32) if lm is None else lm)
    n = len(lms)
    if n == 0:
        raise PrepareError(f"{clip}: no video frames")
    t_detect = time.perf_counter() - t0

    spf = AUDIO_RATE / fps
    n_audio = int(len(audio) // spf)
    if n_audio != n:
        m = min(n, n_audio)
        log(f"{clip}: audio {len(audio) / AUDIO_RATE:.2f} s vs video {n / fps:.2f} s: trimming both to {m / fps:.2f} s")
        for j in range(m, n):
            (tmp / "frames" / f"{j:05d}.jpg").unlink()
        n, lms = m, lms[:m]
    if n == 0:
        raise PrepareError(f"{clip}: audio is shorter than one frame")
    audio = audio[: int(round(n * spf))]
    wavfile.write(tmp / "audio.wav", AUDIO_RATE, np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16))

    lms = np.stack(lms)
    found = int((~np.isnan(lms).any(axis=(1, 2))).sum())
    if n - found > float(p.max_missing) * n or found == 0:
        raise PrepareError(f"{clip}: no face found in {n - found} of {n} frames (allowed: at most "
                           f"{float(p.max_missing):.0%}, prepare.max_missing); is there a frontal face in the clip?")
    if found < n:
        log(f"{clip}: no face in {n - found} of {n} frames, filled from neighbours")
    lms = fill_and_smooth(lms, float(p.landmark_sigma))
    np.save(tmp / "landmarks.npy", lms)

    focal = P.focal_from_fov(size, float(p.fov_deg))
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float64)
    rv, tv, err = P.solve_poses(lms, K, list(p.pnp_points), float(p.template_scale))
    rv, tv = P.smooth_poses(rv, tv, float(p.pose_sigma))
    np.save(tmp / "poses.npy", P.camera_to_world(rv, tv))
    near, far = P.near_far(tv, float(p.head_radius))

    (tmp / "masks").mkdir()
    pick = set(np.linspace(0, n - 1, min(n, int(p.bg_frames))).round().astype(int).tolist())
    bg_frames, bg_masks = [], []
    for i in tqdm(range(n), desc=f"{name}: masks", disable=not progress, unit="frame"):
        m = region_mask(lms[i], size, float(p.forehead), float(p.neck_width), float(p.shoulder_width),
                        float(p.hair_width))
        img = None
        if p.refine or i in pick:
            img = cv2.cvtColor(cv2.imread(str(tmp / "frames" / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB)
        if p.refine:
            m = refine_person(img, m, lms[i], min(size, int(p.refine_size)), int(p.refine_iters), float(p.refine_ring),
                             float(p.refine_ring_top))
        cv2.imwrite(str(tmp / "masks" / f"{i:05d}.png"), m)
        if i in pick:
            bg_masks.append(m)
            bg_frames.append(img)
    bg = median_background(np.stack(bg_frames), bg_masks, max(0, round(int(p.bg_dilate) * size / 512)))
    cv2.imwrite(str(tmp / "background.png"), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))

    took = time.perf_counter() - t0
    log(f"{name}: {n} frames ({n / fps:.2f} s at {fps:g} fps, {size} px), faces found in {found}, "
        f"PnP reprojection error {err.mean():.2f} px, {1000 * t_detect / n:.0f} ms/frame decode+landmarks, "
        f"{1000 * took / n:.0f} ms/frame total")
    return {"schema": 1, "name": name, "fps": float(fps), "n_frames": int(n), "size": [size, size],
            "frames_format": "jpg", "intrinsics": [float(focal), size / 2.0, size / 2.0],
            "near": near, "far": far, "audio_rate": AUDIO_RATE, "faces_found": found,
            "pnp_error_px": float(err.mean()), "seconds_per_frame": took / n, "versions": _versions()}


def identity_name(clip: Path) -> str:
    """An identity's name from its clip's file name, without the rate/length/cut suffixes the
    shared clips carry: ``cnn2_25fps`` -> ``cnn2``, ``hdtf_katie_8s`` -> ``hdtf_katie``,
    ``may_short`` -> ``may``."""
    import re

    name = clip.stem
    while True:
        shorter = re.sub(r"_(\d+(\.\d+)?(fps|s)|short)$", "", name)
        if shorter == name or not shorter:
            return name
        name = shorter
