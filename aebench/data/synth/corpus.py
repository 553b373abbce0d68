"""Writing synthetic identities (prepared-identity format, atomic, cached by their settings) and corpora."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from aebench.data.staging import WriteError, identity_lock, publish, staging_dir, write_failure
from aebench.data.synth.look import draw_look
from aebench.data.synth.scene import CAM_DIST, _ray_dirs, camera_poses, focal_for, make_background, project_landmarks, render_frame
from aebench.data.synth.voice import mouth_track, phoneme_sequence, synth_audio
from aebench.media import AUDIO_RATE as RATE
from aebench.media import FPS, write_image

SPF = RATE // FPS  # audio samples per video frame
SCHEMA = 1


def _versions() -> dict:
    import scipy

    return {"numpy": np.__version__, "scipy": scipy.__version__}


def make_identity(
    out_dir: Path, index: int, seconds: float, size: int, seed: int, settings: dict | None = None, progress: bool = False
) -> Path:
    """Render identity ``synth_<index>`` into ``out_dir`` (atomic, and exclusive: concurrent runs
    never meet, :mod:`aebench.data.staging`); returns its folder."""
    out_dir = Path(out_dir)
    name = f"synth_{index:02d}"
    final = out_dir / name
    settings = dict(settings or {}, seconds=float(seconds), size=int(size), seed=int(seed), index=int(index))
    with identity_lock(out_dir, name):  # a concurrent run making the same corpus waits, then finds it done
        meta_path = final / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text()).get("settings", {})
            if {k: old.get(k) for k in ("seconds", "size", "seed", "index")} == {
                k: settings[k] for k in ("seconds", "size", "seed", "index")
            }:
                return final
        return _render_identity(out_dir, name, index, seconds, size, seed, settings, progress)


def _render_identity(out_dir: Path, name: str, index: int, seconds: float, size: int, seed: int, settings: dict, progress: bool) -> Path:
    """Render and write identity ``name`` (the caller holds its lock)."""
    from tqdm import tqdm

    from aebench.data.identity import content_sha256

    final = out_dir / name
    rng = np.random.default_rng([int(seed), int(index)])
    look = draw_look(rng)
    background = make_background(rng, size)
    n_frames = int(round(seconds * FPS))
    seq = phoneme_sequence(rng, n_frames / FPS)
    audio = synth_audio(rng, seq, n_frames * SPF, look)
    mouth = mouth_track(seq, n_frames)
    poses = camera_poses(rng, n_frames)

    dirs = _ray_dirs(size)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    masks = np.empty((n_frames, size, size), np.uint8)
    lms = np.empty((n_frames, 68, 2), np.float32)
    for i in tqdm(range(n_frames), desc=name, disable=not progress, leave=False):
        rgb, lab = render_frame(poses[i], mouth[i], look, background, dirs)
        frames[i] = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
        masks[i] = lab
        lms[i] = project_landmarks(poses[i], mouth[i], look, size)

    tmp = staging_dir(out_dir, name)
    try:  # a failed write (full disk, read-only folder) leaves no staging folder behind
        _write_files(tmp, frames, masks, lms, poses, mouth, audio, background, seq)
        f = focal_for(size)
        meta = {
            "schema": SCHEMA,
            "name": name,
            "source": "synthetic",
            "source_sha256": None,
            "fps": FPS,
            "n_frames": n_frames,
            "size": [size, size],
            "frames_format": "npy",
            "intrinsics": [f, size / 2.0, size / 2.0],
            "near": CAM_DIST - 1.5,
            "far": CAM_DIST + 1.5,
            "audio_rate": RATE,
            "settings": settings,
            "versions": _versions(),
            "voice": {"f0": look.f0, "tract": look.tract},
            "content_sha256": content_sha256(tmp),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        return publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_files(tmp: Path, frames, masks, lms, poses, mouth, audio, background, seq) -> None:
    """The identity's data files, into its staging folder ``tmp``."""
    import cv2
    from scipy.io import wavfile

    np.save(tmp / "frames.npy", frames)
    np.save(tmp / "masks.npy", masks)
    np.save(tmp / "landmarks.npy", lms)
    np.save(tmp / "poses.npy", poses.astype(np.float32))
    np.save(tmp / "mouth.npy", mouth.astype(np.float32))
    wavfile.write(tmp / "audio.wav", RATE, np.round(audio * 32767).astype(np.int16))
    bg8 = np.clip(background * 255 + 0.5, 0, 255).astype(np.uint8)
    write_image(tmp / "background.png", cv2.cvtColor(bg8, cv2.COLOR_RGB2BGR))
    (tmp / "phonemes.json").write_text(json.dumps([[n, round(a, 4), round(b, 4)] for n, a, b in seq]))


def make_corpus(out: Path, identities: int = 3, seconds: float = 10.0, size: int = 64, seed: int = 0, progress: bool = False) -> list[Path]:
    """Write ``synth_00`` ... ``synth_<identities-1>`` under ``out``; existing identical ones are kept.
    A failed write (full disk, read-only folder) is a :class:`~aebench.data.staging.WriteError`
    naming the folder; the identity being written is left out, not half-written."""
    from tqdm import tqdm

    from aebench.data.identity import MIN_FRAMES

    if identities < 1 or seconds <= 0 or size < 8:
        raise ValueError(f"need identities >= 1, seconds > 0, size >= 8 (got {identities}, {seconds}, {size})")
    if round(seconds * FPS) < MIN_FRAMES:
        raise ValueError(
            f"{seconds:g} s is {round(seconds * FPS)} frame(s) at {FPS} fps; an identity needs at least "
            f"{MIN_FRAMES} ({MIN_FRAMES / FPS:.2f} s): the first half trains, the second tests"
        )
    out = Path(out)
    settings = {"identities": int(identities)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        return [
            make_identity(out, i, seconds, size, seed, settings, progress=progress)
            for i in tqdm(range(identities), desc="synth corpus", disable=not progress)
        ]
    except OSError as exc:
        raise WriteError(write_failure(exc, out)) from exc
