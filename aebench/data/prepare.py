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
is left alone; one prepared from another clip is replaced only when asked (``replace``).

Refused, naming the clip (and the frames): a clip too short for the train/test split
(:data:`aebench.data.identity.MIN_FRAMES`, checked from the header and the audio before any
frame is decoded), audio with NaN/inf samples, more than one face in a frame or a face that
jumps between frames (:mod:`aebench.data.landmarks`: the landmarks would mix people). ``meta.json``
records ``content_sha256`` (:func:`aebench.data.identity.content_sha256`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aebench.data.staging import check_name, identity_lock, publish, staging_dir, write_failure
from aebench.media import FPS
from aebench.media import AUDIO_RATE, MediaError, check_finite_audio, displayed_frames, frame_ranges, write_image
from aebench.settings import Settings, setting


class PrepareError(RuntimeError):
    """A clip cannot be prepared; the message says why and which clip."""


@dataclasses.dataclass(frozen=True)
class PrepareSettings(Settings):
    """``cfg.prepare``: how a real clip becomes an identity (``aebench data prepare``)."""

    upsample: int = setting(1, low=0)
    """dlib HOG detector upsampling count."""
    detect_size: int = setting(256, low=16)
    """Detect the face box on a copy this wide (px); landmarks at full size."""
    max_missing: float = setting(0.5, low=0.0, high=1.0)
    """Fail when more than this fraction of frames has no face."""
    landmark_sigma: float = setting(1.0, low=0.0)
    """Gaussian smoothing of landmarks over time (frames; 0 = off)."""
    fov_deg: float = setting(21.0, low=1.0, high=179.0)
    """Vertical field of view; AD-NeRF's focal 1200 px at 450 px is about 21 degrees."""
    template_scale: float = setting(0.0667)
    """Template units (about cm) -> world units; ear to ear about 1.0."""
    pnp_points: list[int] = setting([17, 21, 22, 26, 36, 39, 42, 45, 31, 35])
    """Landmarks the head pose is solved from: brows, eye corners, nostrils (no mouth or jaw)."""
    pose_sigma: float = setting(2.0, low=0.0)
    """Gaussian smoothing of rotation and translation over time (frames)."""
    head_radius: float = setting(0.8)
    """near/far = head depth -/+ this (world units)."""
    forehead: float = setting(0.6)
    """The head mask extends above the brows by this x (brow-to-chin height)."""
    hair_width: float = setting(1.3)
    """The lifted brow points are spread sideways by this factor (hair)."""
    neck_width: float = setting(0.7)
    """Neck width / face width (torso mask)."""
    shoulder_width: float = setting(2.6)
    """Shoulder width / face width (torso mask)."""
    refine: bool = setting(True)
    """Refine person/background per frame with cv2.grabCut seeded by the masks."""
    refine_size: int = setting(128, low=16)
    """grabCut works on a copy this wide (px)."""
    refine_iters: int = setting(2, low=1)
    """grabCut iterations."""
    refine_ring: float = setting(0.35)
    """Probable-person ring beside and below the landmark masks (x face width)."""
    refine_ring_top: float = setting(0.12)
    """The same ring above the brows (the head mask already spans the hair)."""
    bg_frames: int = setting(60, low=1)
    """Frames (evenly spaced) for the median background."""
    bg_dilate: int = setting(7, low=0)
    """Person mask dilation (px at 512) before taking background pixels."""
    jpeg_quality: int = setting(95, low=1, high=100)
    """JPEG quality of the stored frames."""


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
    img = img[y : y + s, x : x + s]
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
            for frame, img in displayed_frames(box.decode(video=0), clip):  # as a player shows them (rotation)
                t = float(frame.time) if frame.time is not None else None
                if t is None:
                    raise PrepareError(f"{clip}: frames without timestamps")
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
        raise PrepareError(f"{clip}: video cannot be decoded after {k} output frames, the file looks truncated or corrupt ({exc})") from exc
    except MediaError as exc:
        raise PrepareError(str(exc)) from exc


def _detect(detector, img: np.ndarray, detect_size: int) -> tuple[np.ndarray | None, bool]:
    """The largest face's landmarks (None without a face), and whether another face of comparable
    size shares the frame (:func:`aebench.data.landmarks.another_face`)."""
    from aebench.data.landmarks import another_face

    boxes = detector.boxes(img, detect_size)
    if not boxes:
        return None, False
    return detector.landmarks(img, boxes[0]), another_face(boxes)


def _check_one_face(clip: Path, lms: np.ndarray, crowded: list[int], fps: float) -> None:
    """Refuse a clip whose landmarks may belong to more than one person: a frame with a second
    face of comparable size, or the face jumping between consecutive frames (frames at ``fps``)."""
    from aebench.data.landmarks import MAX_JUMP, OTHER_FACE_RATIO, face_jumps

    if crowded:
        raise PrepareError(
            f"{clip}: more than one face (a second face at least {OTHER_FACE_RATIO:.0%} as wide as the "
            f"largest) in frames {frame_ranges(crowded)} (at {fps:g} fps); an identity is one "
            f"person: crop the clip to one face"
        )
    jumps = face_jumps(lms)
    if jumps:
        raise PrepareError(
            f"{clip}: the face jumps by more than {MAX_JUMP:g} face sizes from one frame to the next "
            f"at frames {frame_ranges(jumps)} (at {fps:g} fps): the landmarks switch between "
            f"people, or the clip has a cut; prepare one person in one shot"
        )


def _frames_estimate(info, fps: float) -> float:
    """About how many frames at ``fps`` the video holds, from its header (inf when unknown)."""
    if info.n_frames and info.fps:
        return info.n_frames / info.fps * fps
    return info.duration * fps if info.duration else float("inf")


def _check_length(clip: Path, frames: float, fps: float, what: str) -> None:
    """Refuse a clip too short for the identity's train/test split (at least ``MIN_FRAMES``);
    ``frames`` may be an estimate, so half a frame of slack is allowed."""
    from aebench.data.identity import MIN_FRAMES

    if frames < MIN_FRAMES - 0.5:
        raise PrepareError(
            f"{clip}: {what} gives {max(int(frames), 0)} frame(s) at {fps:g} fps; an identity needs "
            f"at least {MIN_FRAMES} ({MIN_FRAMES / fps:.2f} s): the first half trains, the second tests"
        )


def _check_finite(clip: Path, audio: np.ndarray) -> None:
    """Refuse a speech track with NaN or infinite samples (they would be written as silence)."""
    try:
        check_finite_audio(audio, clip)
    except MediaError as exc:
        raise PrepareError(str(exc)) from exc


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

    return {"numpy": np.__version__, "scipy": scipy.__version__, "cv2": cv2.__version__, "dlib": dlib.__version__, "av": av.__version__}


def _settings(cfg, size: int, fps: float, max_seconds: float | None, features: Sequence[str]) -> dict:
    from omegaconf import OmegaConf

    return {
        "size": int(size),
        "fps": float(fps),
        "max_seconds": None if max_seconds is None else float(max_seconds),
        "features": list(features),
        "prepare": OmegaConf.to_container(cfg.prepare, resolve=True),
    }


def prepare(
    clip: str | Path,
    name: str,
    out: str | Path,
    size: int = 512,
    fps: float = FPS,
    max_seconds: float | None = None,
    overrides: Sequence[str] = (),
    features: Sequence[str] = ("mfcc",),
    progress: bool = True,
    log=print,
    replace: bool = False,
) -> Path:
    """Prepare ``clip`` into ``out/name`` (atomic, cached); returns the identity folder.

    An identity of that name prepared from another clip (another sha256) is kept unless
    ``replace``: one name never silently means two people. A failed write (full disk,
    read-only folder) is a :class:`PrepareError` naming the folder, and leaves nothing behind."""
    from aebench.config import load_config
    from aebench.data.identity import MIN_FRAMES, content_sha256

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
    if max_seconds is not None and round(max_seconds * fps) < MIN_FRAMES:
        raise PrepareError(
            f"{clip}: --max-seconds {max_seconds:g} keeps {round(max_seconds * fps)} frame(s) at "
            f"{fps:g} fps; an identity needs at least {MIN_FRAMES} (half trains, half tests)"
        )
    settings = _settings(cfg, size, fps, max_seconds, features)
    try:
        sha = sha256_file(clip)
    except OSError as exc:
        raise PrepareError(f"{clip}: cannot be read ({exc.strerror or exc})") from exc
    final = out / name
    try:
        with identity_lock(out, name):  # a concurrent run preparing the same identity waits, then finds it done
            if _up_to_date(final, clip, sha, settings, replace, log):
                return final
            tmp = staging_dir(out, name)
            try:
                meta = _run(clip, name, tmp, PrepareSettings.from_tree(cfg, "prepare"), size, fps, max_seconds, features, progress, log)
                meta.update(source=str(clip.resolve()), source_sha256=sha, settings=settings, content_sha256=content_sha256(tmp))
                (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
                _features(tmp, features)
                publish(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except OSError as exc:
        raise PrepareError(write_failure(exc, final)) from exc
    return final


def _up_to_date(final: Path, clip: Path, sha: str, settings: dict, replace: bool, log) -> bool:
    """True when ``final`` already holds ``clip`` prepared with ``settings``; a PrepareError when
    it holds something else that ``replace`` does not allow to overwrite."""
    if not final.exists():
        return False
    if not (final / "meta.json").exists():
        if not replace:
            raise PrepareError(
                f"{final} exists and is not a prepared identity (no meta.json); choose another "
                f"--name or --out, or pass --replace to overwrite it"
            )
        log(f"{final}: replacing a folder that is not a prepared identity (no meta.json)")
        return False
    from aebench.json_numbers import JSONFileError, read_json

    try:
        old = read_json(final / "meta.json", "identity record")
    except JSONFileError as exc:
        raise PrepareError(f"{exc}; pass --replace to prepare the identity again") from exc
    if not isinstance(old, dict):
        raise PrepareError(f"{final / 'meta.json'} is not an identity record; pass --replace to prepare it again")
    if old.get("source_sha256") != sha:
        was = f"{old.get('source')} (sha256 {str(old.get('source_sha256'))[:16]})"
        if not replace:
            raise PrepareError(
                f"{final} is already an identity prepared from another clip, {was}, not {clip} "
                f"(sha256 {sha[:16]}); pass --replace to replace it, or choose another --name"
            )
        log(
            f"{final}: replacing the identity prepared from {old.get('source')} (sha256 {old.get('source_sha256')}) "
            f"with {clip} (sha256 {sha})"
        )
        return False
    if old.get("settings") == settings:
        log(f"{final}: up to date (same source and settings), nothing to do")
        return True
    log(f"{final}: settings changed, preparing again (same source)")
    return False


def _features(path: Path, names: Sequence[str]) -> None:
    from aebench.data.features import load_or_compute
    from aebench.data.identity import Identity

    ident = Identity.open(path)
    for n in names:
        load_or_compute(ident, n)


def _run(clip: Path, name: str, tmp: Path, p: PrepareSettings, size: int, fps: float, max_seconds, features, progress, log) -> dict:
    """The stages of a preparation into ``tmp``: the speech track, the frames and their landmarks,
    video and audio trimmed to one length, the landmarks checked and smoothed, the head poses, the
    region masks and the background; returns ``meta.json``'s fields."""
    t0 = time.perf_counter()
    info, audio = _speech(clip, fps, max_seconds)
    lms, crowded = _frames_and_landmarks(clip, name, tmp, p, size, fps, max_seconds, progress)
    t_detect = time.perf_counter() - t0
    n, lms = _trimmed(clip, tmp, audio, lms, fps, log)
    lms, found = _checked_landmarks(clip, lms, [i for i in crowded if i < n], p, fps, log)
    np.save(tmp / "landmarks.npy", lms)
    focal, near, far, err = _head_poses(tmp, lms, size, p)
    _masks_and_background(tmp, name, lms, size, p, progress)
    took = time.perf_counter() - t0
    log(
        f"{name}: {n} frames ({n / fps:.2f} s at {fps:g} fps, {size} px), faces found in {found}, "
        f"PnP reprojection error {err.mean():.2f} px, {1000 * t_detect / n:.0f} ms/frame decode+landmarks, "
        f"{1000 * took / n:.0f} ms/frame total"
    )
    return {
        "schema": 1,
        "name": name,
        "fps": float(fps),
        "n_frames": int(n),
        "size": [size, size],
        "frames_format": "jpg",
        "intrinsics": [float(focal), size / 2.0, size / 2.0],
        "near": near,
        "far": far,
        "audio_rate": AUDIO_RATE,
        "faces_found": found,
        "pnp_error_px": float(err.mean()),
        "seconds_per_frame": took / n,
        "versions": _versions(),
        "rotation": info.rotation,
    }  # degrees counter-clockwise applied from the clip's display matrix


def _speech(clip: Path, fps: float, max_seconds):
    """(the clip's stream info, its speech track at 16 kHz, cut to ``max_seconds``), refused with a
    message when the file is not a video with speech, long enough, of finite samples."""
    from aebench.media import probe, read_audio

    try:
        info = probe(clip)
    except MediaError as exc:
        raise PrepareError(f"{exc}; is the file complete (not truncated) and a video?") from exc
    if not info.has_audio:
        raise PrepareError(f"{clip}: no audio stream; a talking-head identity needs the speech track")
    _check_length(clip, _frames_estimate(info, fps), fps, "the video")
    try:
        audio = read_audio(clip, AUDIO_RATE)
    except MediaError as exc:
        raise PrepareError(f"{exc}; the speech track is needed") from exc
    if max_seconds is not None:
        audio = audio[: int(round(max_seconds * AUDIO_RATE))]
    _check_finite(clip, audio)
    _check_length(clip, len(audio) / AUDIO_RATE * fps, fps, "the audio")
    return info, audio


def _frames_and_landmarks(clip: Path, name: str, tmp: Path, p: PrepareSettings, size: int, fps: float, max_seconds, progress):
    """Every frame at ``fps``, square at ``size`` px, into ``frames/``, and its 68 landmarks (NaN
    where no face); also the frames with another face of comparable size."""
    import cv2
    from tqdm import tqdm

    from aebench.data.landmarks import LandmarkDetector

    det = LandmarkDetector(upsample=p.upsample)
    (tmp / "frames").mkdir()
    lms, crowded = [], []  # crowded: frames with another face of comparable size
    q = [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality]
    total = round(max_seconds * fps) if max_seconds else None
    frames = resampled_frames(clip, fps, max_seconds)
    for i, img in enumerate(tqdm(frames, desc=f"{name}: frames+landmarks", total=total, disable=not progress, unit="frame")):
        img = _square(img, size)
        write_image(tmp / "frames" / f"{i:05d}.jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), q)
        lm, other = _detect(det, img, p.detect_size)
        lms.append(np.full((68, 2), np.nan, np.float32) if lm is None else lm)
        crowded += [i] if other else []
    if not lms:
        raise PrepareError(f"{clip}: no video frames")
    return lms, crowded


def _trimmed(clip: Path, tmp: Path, audio: np.ndarray, lms: list, fps: float, log) -> tuple[int, list]:
    """Video and audio cut to the shorter of the two (frames removed from ``frames/``) and the
    audio written (``audio.wav``): (frames kept, their landmarks)."""
    from scipy.io import wavfile

    n = len(lms)
    spf = AUDIO_RATE / fps
    n_audio = int(len(audio) // spf)
    if n_audio != n:
        m = min(n, n_audio)
        log(f"{clip}: audio {len(audio) / AUDIO_RATE:.2f} s vs video {n / fps:.2f} s: trimming both to {m / fps:.2f} s")
        for j in range(m, n):
            (tmp / "frames" / f"{j:05d}.jpg").unlink()
        n, lms = m, lms[:m]
    _check_length(clip, n, fps, "the video and audio together")
    audio = audio[: int(round(n * spf))]
    wavfile.write(tmp / "audio.wav", AUDIO_RATE, np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16))
    return n, lms


def _checked_landmarks(clip: Path, lms: list, crowded: list[int], p: PrepareSettings, fps: float, log) -> tuple[np.ndarray, int]:
    """The landmarks (n, 68, 2), refused when too many frames have no face or another person's, the
    gaps filled from neighbours and smoothed over time; and how many frames had a face."""
    lms = np.stack(lms)
    n = len(lms)
    found = int((~np.isnan(lms).any(axis=(1, 2))).sum())
    if n - found > p.max_missing * n or found == 0:
        raise PrepareError(
            f"{clip}: no face found in {n - found} of {n} frames (allowed: at most "
            f"{p.max_missing:.0%}, prepare.max_missing); is there a frontal face in the clip?"
        )
    _check_one_face(clip, lms, crowded, fps)
    if found < n:
        log(f"{clip}: no face in {n - found} of {n} frames, filled from neighbours")
    return fill_and_smooth(lms, p.landmark_sigma), found


def _head_poses(tmp: Path, lms: np.ndarray, size: int, p: PrepareSettings):
    """Camera poses from the landmarks (PnP on a template, smoothed) into ``poses.npy``: (focal,
    near, far, the PnP reprojection errors)."""
    from aebench.data import pose as P

    focal = P.focal_from_fov(size, p.fov_deg)
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float64)
    rv, tv, err = P.solve_poses(lms, K, list(p.pnp_points), p.template_scale)
    rv, tv = P.smooth_poses(rv, tv, p.pose_sigma)
    np.save(tmp / "poses.npy", P.camera_to_world(rv, tv))
    near, far = P.near_far(tv, p.head_radius)
    return focal, near, far, err


def _masks_and_background(tmp: Path, name: str, lms: np.ndarray, size: int, p: PrepareSettings, progress) -> None:
    """Each frame's region mask (``masks/``, refined by grabCut when asked) and the median
    background of ``bg_frames`` frames outside the dilated person (``background.png``)."""
    import cv2
    from tqdm import tqdm

    from aebench.data.regions import median_background, refine_person, region_mask

    n = len(lms)
    (tmp / "masks").mkdir()
    pick = set(np.linspace(0, n - 1, min(n, p.bg_frames)).round().astype(int).tolist())
    bg_frames, bg_masks = [], []
    for i in tqdm(range(n), desc=f"{name}: masks", disable=not progress, unit="frame"):
        m = region_mask(lms[i], size, p.forehead, p.neck_width, p.shoulder_width, p.hair_width)
        img = None
        if p.refine or i in pick:
            img = cv2.cvtColor(cv2.imread(str(tmp / "frames" / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB)
        if p.refine:
            m = refine_person(img, m, lms[i], min(size, p.refine_size), p.refine_iters, p.refine_ring, p.refine_ring_top)
        write_image(tmp / "masks" / f"{i:05d}.png", m)
        if i in pick:
            bg_masks.append(m)
            bg_frames.append(img)
    bg = median_background(np.stack(bg_frames), bg_masks, max(0, round(p.bg_dilate * size / 512)))
    write_image(tmp / "background.png", cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))


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
