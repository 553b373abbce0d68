"""Audio features by extractor name: one window of ``T`` feature steps per video frame.

Every extractor produces a 50 Hz sequence (step 20 ms, like the DeepSpeech features of
AD-NeRF/DFRF and wav2vec 2.0's frame rate). The audio is zero-padded by half an analysis
window (200 samples) in front, so feature step ``k`` is *centred* on time ``k * 0.02`` s.
Video frame ``i`` is at time ``i / fps`` (the AD-NeRF convention: frame ``i`` gets steps
``2i - 8 .. 2i + 7`` at 25 fps); its window holds the ``T = 16`` steps
``c - 8 .. c + 7`` with ``c = round(i / fps / 0.02)``, i.e. 0.32 s of context centred on the
frame. Steps outside the audio are zeros. Temporal smoothing across frames (AD-NeRF's
AudioAttNet etc.) is left to the methods.

Extractors (``extract(name, ...)`` returns float32 ``(n_frames, T, C)``):

* ``mfcc`` (offline default): python_speech_features MFCC, 13 coefficients (c0 replaced
  by log energy) + 13 deltas (N=2), 25 ms Hamming window, 20 ms step, 26 mel filters,
  un-normalised (see normalisation below). Shape ``(n_frames, 16, 26)``.
* ``wav2vec2`` (the paper's choice): last hidden states of ``transformers.Wav2Vec2Model``
  loaded only from the local weights store ``weights_dir()/wav2vec2-base-960h``
  (never downloaded). Input normalised to zero mean / unit variance as the
  Wav2Vec2FeatureExtractor of base-960h does; long audio runs in 20 s chunks with 1 s of
  context on each side (memory stays bounded on 71 s clips). Shape ``(n_frames, 16, 768)`` for a base model.

Normalisation: extractors return raw features; a method normalises every window it sees
(target, references, driving audio) with *one* :class:`AudioNorm`, the per-channel mean and
std of its training clip, stored in its checkpoint. So a self-driven render sees the training
clip's scale (no per-clip z-scoring of the driving audio); for ``mfcc`` at 25 fps (every
prepared identity) its windows equal the cached ones away from the clip's ends (tested).
``wav2vec2`` sees only the driving clip, so its context differs near the ends.

``load_or_compute(identity, name)`` caches the windows of all frames of an identity as
``<identity>/features/<name>.npy`` with a sidecar ``<name>.json`` holding the settings
(extractor parameters, frame count, fps, a hash of the audio and of the model); a cache
whose settings differ is recomputed. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aebench.media import AUDIO_RATE, FPS

STEP_S = 0.02  # 50 Hz feature rate
HALF_WIN = 200  # samples of front padding at 16 kHz: centres step k at k * STEP_S
WINDOW = 16  # T: feature steps per video frame
WAV2VEC2_FOLDER = "wav2vec2-base-960h"
#: extractor -> the weights-store entry it loads (``aebench weights status`` says who uses an entry)
FEATURE_WEIGHTS = {"wav2vec2": "wav2vec2"}
_VERSION = 2  # bump when an extractor's output changes


class FeatureError(RuntimeError):
    """An extractor is unknown or cannot run (e.g. its weights are not in the local store)."""


# ----------------------------------------------------------------------------- windowing
def frame_windows(steps: np.ndarray, n_frames: int, fps: float, window: int = WINDOW) -> np.ndarray:
    """(n_frames, window, C) from a 50 Hz (n_steps, C) sequence, centred on frame times, zero-padded."""
    n_steps, c = steps.shape
    centre = np.round(np.arange(n_frames) / fps / STEP_S).astype(np.int64)
    idx = centre[:, None] + np.arange(window)[None, :] - window // 2
    padded = np.concatenate([steps, np.zeros((1, c), steps.dtype)])  # row n_steps = zeros
    idx = np.where((idx >= 0) & (idx < n_steps), idx, n_steps)
    return padded[idx].astype(np.float32)


def _prepare_audio(audio: np.ndarray, n_frames: int, fps: float, rate: int) -> np.ndarray:
    if rate != AUDIO_RATE:
        raise FeatureError(f"audio features expect {AUDIO_RATE} Hz audio, got {rate} Hz (read it with media.read_audio(path))")
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    need = int(np.ceil(n_frames / fps * rate)) + HALF_WIN
    if len(audio) < need:
        audio = np.pad(audio, (0, need - len(audio)))
    return np.pad(audio, (HALF_WIN, 0))


# ----------------------------------------------------------------------------- mfcc
MFCC_SETTINGS = {
    "numcep": 13,
    "deltas": 2,
    "winlen": 0.025,
    "winstep": STEP_S,
    "nfilt": 26,
    "nfft": 512,
    "winfunc": "hamming",
    "normalise": "none (AudioNorm of the training clip)",
}


def _mfcc_steps(audio: np.ndarray, rate: int) -> np.ndarray:
    from python_speech_features import delta, mfcc

    s = MFCC_SETTINGS
    feat = mfcc(
        audio,
        samplerate=rate,
        winlen=s["winlen"],
        winstep=s["winstep"],
        numcep=s["numcep"],
        nfilt=s["nfilt"],
        nfft=s["nfft"],
        appendEnergy=True,
        winfunc=np.hamming,
    )
    return np.concatenate([feat, delta(feat, s["deltas"])], axis=1)


# ----------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class AudioNorm:
    """Per-channel statistics of a training clip's features: ``mean`` and ``std`` (C,).

    Computed from the centre step of each frame's window (each feature step counted once),
    applied to whole windows: ``(w - mean) / std``. Stored in checkpoints (``to_dict``), so
    target, reference and driving windows share one scale.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, windows: np.ndarray) -> AudioNorm:
        """Statistics of (n, T, C) windows."""
        centre = np.asarray(windows, dtype=np.float64)[:, windows.shape[1] // 2]
        return cls(centre.mean(0).astype(np.float32), (centre.std(0) + 1e-6).astype(np.float32))

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return ((np.asarray(windows, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> AudioNorm:
        return cls(np.asarray(d["mean"], dtype=np.float32), np.asarray(d["std"], dtype=np.float32))


# ----------------------------------------------------------------------------- wav2vec2
_MODELS: dict = {}


def wav2vec2_dir() -> Path:
    from aebench.paths import weights_dir

    return weights_dir() / WAV2VEC2_FOLDER


def _wav2vec2_weights(folder: Path) -> Path:
    """The weights file in ``folder``; a clear, actionable error when anything is missing."""
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    weights = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
    if not weights:
        missing.append("model.safetensors (or pytorch_model.bin)")
    if missing:
        raise FeatureError(
            f"wav2vec2 features need the weights of facebook/wav2vec2-base-960h in {folder}, "
            f"which lacks {', '.join(missing)}. Nothing is downloaded at run time. Fix: "
            f"`aebench weights add wav2vec2 PATH` with PATH a Hugging Face model folder of "
            f"wav2vec2-base-960h (config.json + model.safetensors), or set AEBENCH_WEIGHTS to a "
            f"store that has it; or use the offline extractor `features=mfcc`."
        )
    return weights[0]


def _wav2vec2_model(folder: Path):
    weights = _wav2vec2_weights(folder)  # before the (slow) imports: fail fast when missing
    import torch

    from aebench.weights import WeightsError, load_hf_model

    key = (str(folder), weights.stat().st_size, weights.stat().st_mtime_ns)
    if key not in _MODELS:
        try:  # every weight from the folder: transformers would fill missing ones with random values
            model = load_hf_model(FEATURE_WEIGHTS["wav2vec2"], folder)
        except WeightsError as exc:
            raise FeatureError(
                f"wav2vec2 features: {exc}. Fix: `aebench weights add wav2vec2 PATH` with PATH "
                f"a Hugging Face model folder of wav2vec2-base-960h"
            ) from exc
        device = "cuda" if torch.cuda.is_available() else "cpu"
        _MODELS.clear()
        _MODELS[key] = model.eval().to(device)
    return _MODELS[key]


CHUNK_STEPS = 1000  # wav2vec2 runs on 20 s chunks (attention is quadratic in length) ...
CONTEXT_STEPS = 50  # ... each seeing 1 s of extra audio on both sides


def _wav2vec2_steps(audio: np.ndarray, rate: int) -> np.ndarray:
    model = _wav2vec2_model(wav2vec2_dir())
    import torch

    x = ((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32)
    hop, field = 320, 400  # conv feature encoder stride and receptive field (samples)
    n_steps = (len(x) - field) // hop + 1
    device = next(model.parameters()).device
    parts = []
    with torch.no_grad():
        for a in range(0, n_steps, CHUNK_STEPS):
            b = min(a + CHUNK_STEPS, n_steps)
            a0, b0 = max(a - CONTEXT_STEPS, 0), min(b + CONTEXT_STEPS, n_steps)
            chunk = torch.from_numpy(x[a0 * hop : (b0 - 1) * hop + field][None]).to(device)
            out = model(chunk).last_hidden_state[0]
            parts.append(out[a - a0 : b - a0].float().cpu().numpy())
    return np.concatenate(parts)


def _wav2vec2_settings() -> dict:
    folder = wav2vec2_dir()
    weights = _wav2vec2_weights(folder)
    config = (folder / "config.json").read_bytes()
    return {
        "folder": WAV2VEC2_FOLDER,
        "config_sha256": hashlib.sha256(config).hexdigest(),
        "weights": weights.name,
        "weights_bytes": weights.stat().st_size,
        "layer": "last_hidden_state",
        "chunk_steps": CHUNK_STEPS,
        "context_steps": CONTEXT_STEPS,
        "input": "zero mean, unit variance",
    }


# ----------------------------------------------------------------------------- registry
EXTRACTORS = {
    "mfcc": (_mfcc_steps, lambda: dict(MFCC_SETTINGS)),
    "wav2vec2": (_wav2vec2_steps, _wav2vec2_settings),
}


def _lookup(name: str):
    if name not in EXTRACTORS:
        raise FeatureError(f"unknown audio feature extractor {name!r}; valid names: {', '.join(sorted(EXTRACTORS))}")
    return EXTRACTORS[name]


def settings(name: str) -> dict:
    """The extractor's settings (what the cache sidecar records besides the audio/frames)."""
    return {"extractor": name, "version": _VERSION, "step_s": STEP_S, "window": WINDOW, "frame_time": "i / fps", **_lookup(name)[1]()}


def extract(name: str, audio: np.ndarray, n_frames: int, fps: float = FPS, rate: int = AUDIO_RATE) -> np.ndarray:
    """float32 (n_frames, T, C) feature windows of ``audio`` for ``n_frames`` video frames at ``fps``."""
    fn = _lookup(name)[0]
    if n_frames <= 0:
        raise FeatureError(f"n_frames must be positive, got {n_frames}")
    steps = fn(_prepare_audio(audio, n_frames, fps, rate), rate)
    return frame_windows(steps, n_frames, fps)


# ----------------------------------------------------------------------------- cache
def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_compute(identity, name: str) -> np.ndarray:
    """Windows for ALL frames of ``identity`` (not only its view), cached under ``features/``."""
    audio = np.asarray(identity._audio, dtype=np.float32)
    n_frames, fps = int(identity.meta["n_frames"]), float(identity.meta["fps"])
    want = {
        **settings(name),
        "n_frames": n_frames,
        "fps": fps,
        "audio_rate": identity.audio_rate,
        "audio_sha256": hashlib.sha256(audio.tobytes()).hexdigest(),
    }
    folder = Path(identity.path) / "features"
    npy, side = folder / f"{name}.npy", folder / f"{name}.json"
    if npy.exists() and side.exists():
        try:
            if json.loads(side.read_text()) == want:
                return np.load(npy)
        except (json.JSONDecodeError, ValueError, OSError):
            pass  # unreadable cache: recompute
    feats = extract(name, audio, n_frames, fps, identity.audio_rate)
    folder.mkdir(exist_ok=True)
    _atomic_write(npy, lambda fh: np.save(fh, feats))
    _atomic_write(side, lambda fh: fh.write(json.dumps(want, indent=1).encode()))
    return feats
