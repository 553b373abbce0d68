"""Synthetic speech: a phoneme sequence said source-filter style, and the mouth track that follows it
(see the package docstring, "Audio model")."""

from __future__ import annotations

import numpy as np

from aebench.data.synth.look import Look
from aebench.media import AUDIO_RATE as RATE
from aebench.media import FPS

# name: (kind, F1, F2, F3, (open, width, round), duration range s)
# name: (kind, F1, F2, F3, (open, width, round), duration range s)
PHONEMES: dict[str, tuple] = {
    "a": ("vowel", 800, 1250, 2600, (1.00, 0.70, 0.10), (0.10, 0.22)),
    "e": ("vowel", 500, 1850, 2600, (0.55, 0.85, 0.00), (0.09, 0.20)),
    "i": ("vowel", 290, 2300, 3000, (0.22, 1.00, 0.00), (0.09, 0.20)),
    "o": ("vowel", 500, 900, 2500, (0.70, 0.45, 0.80), (0.10, 0.22)),
    "u": ("vowel", 320, 800, 2400, (0.28, 0.35, 1.00), (0.09, 0.20)),
    "m": ("nasal", 250, 1100, 2300, (0.00, 0.60, 0.20), (0.07, 0.14)),
    "n": ("nasal", 250, 1700, 2600, (0.15, 0.65, 0.00), (0.06, 0.12)),
    "b": ("stop", 0, 0, 0, (0.00, 0.60, 0.10), (0.06, 0.10)),
    "p": ("stop", 0, 0, 0, (0.00, 0.60, 0.00), (0.07, 0.11)),
    "s": ("fric", 5000, 8000, 0, (0.12, 0.85, 0.00), (0.08, 0.16)),
    "f": ("fric", 2000, 6500, 0, (0.08, 0.70, 0.00), (0.07, 0.14)),
    "_": ("pause", 0, 0, 0, (0.00, 0.60, 0.00), (0.15, 0.40)),
}
VOWELS = ["a", "e", "i", "o", "u"]
# rms level of each sound relative to a vowel (nasals are murmurs, /s/ louder than /f/, p > b)
GAIN = {**{v: 0.2 for v in "aeiou"}, "m": 0.07, "n": 0.07, "b": 0.1, "p": 0.16, "s": 0.1, "f": 0.05, "_": 0.0}
CONSONANTS = ["m", "n", "b", "p", "s", "f"]

NEUTRAL = np.array(PHONEMES["_"][4], dtype=np.float64)


# ----------------------------------------------------------------------------- audio
def phoneme_sequence(rng: np.random.Generator, seconds: float) -> list[tuple[str, float, float]]:
    """(phoneme, start s, end s) covering ``seconds``: syllables CV(C) with occasional pauses."""
    seq, t = [], 0.0
    while t < seconds:
        if rng.random() < 0.12:
            names = ["_"]
        else:
            names = [rng.choice(CONSONANTS), rng.choice(VOWELS)] if rng.random() < 0.75 else [rng.choice(VOWELS)]
            if rng.random() < 0.25:
                names.append(rng.choice(CONSONANTS))
        for n in names:
            lo, hi = PHONEMES[n][5]
            d = float(rng.uniform(lo, hi))
            seq.append((str(n), t, t + d))
            t += d
    return seq


def _resonate(x: np.ndarray, freq: float, bw: float) -> np.ndarray:
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bw / RATE)
    theta = 2 * np.pi * freq / RATE
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1 - 2 * r * np.cos(theta) + r * r], a, x)


def _bandnoise(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [lo, min(hi, RATE / 2 - 100)], btype="band", fs=RATE, output="sos")
    return sosfilt(sos, rng.normal(0, 1, n))


def glottal_source(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    """Pulse train at a slowly varying f0 (vibrato + jitter), low-passed for spectral tilt."""
    from scipy.signal import lfilter

    t = np.arange(n) / RATE
    drift = 1 + 0.06 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6.3))
    vib = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)
    jitter = 1 + 0.02 * lfilter([0.02], [1, -0.98], rng.normal(0, 1, n)) * 7
    phase = np.cumsum(f0 * drift * vib * jitter / RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    return lfilter([1.0], [1, -1.9, 0.905], pulses)  # two real poles ~ -12 dB/oct tilt


def synth_audio(rng: np.random.Generator, seq, n_samples: int, look: Look) -> np.ndarray:
    """Source-filter speech for the phoneme sequence, float32 in [-1, 1]."""
    src = glottal_source(rng, n_samples, look.f0)
    out = np.zeros(n_samples)
    pad = int(0.015 * RATE)
    for name, t0, t1 in seq:
        kind, f1, f2, f3 = PHONEMES[name][:4]
        s0, s1 = int(t0 * RATE), min(int(t1 * RATE), n_samples)
        if s0 >= n_samples or kind == "pause":
            continue
        a0, a1 = max(s0 - pad, 0), min(s1 + pad, n_samples)
        m = a1 - a0
        if kind in ("vowel", "nasal"):
            x = src[a0:a1]
            for f, bw in ((f1, 80), (f2, 110), (f3, 160)):
                x = _resonate(x, f * look.tract, bw)
            seg = x / (np.std(x) + 1e-12)
        elif kind == "fric":
            seg = _bandnoise(rng, m, f1, f2)
            seg /= np.std(seg) + 1e-12
        else:  # stop: closure silence then a short release burst
            seg = np.zeros(m)
            end = s1 - a0  # the burst ends the closure
            start = max(end - int(0.012 * RATE), 0)
            if end - start > 32:
                burst = _bandnoise(rng, end - start, 500, 4000)
                seg[start:end] = burst / (np.std(burst) + 1e-12)
        env = np.ones(m)
        ramp = np.sin(np.linspace(0, np.pi / 2, min(2 * pad, m // 2) + 1)[1:]) ** 2
        env[: len(ramp)] *= ramp
        env[m - len(ramp) :] *= ramp[::-1]
        out[a0:a1] += seg * env * GAIN[name]
    peak = np.abs(out).max()
    return (out / peak * 0.8 if peak > 0 else out).astype(np.float32)


def mouth_track(seq, n_frames: int, smooth_s: float = 0.04) -> np.ndarray:
    """(n_frames, 3) mouth (open, width, round) at frame times, co-articulated.

    Targets are piecewise-constant per phoneme on a 1 ms grid, then Gaussian-smoothed
    (``smooth_s``) so neighbouring sounds blend, then sampled at the frame centres."""
    from scipy.ndimage import gaussian_filter1d

    step = 0.001
    n = int(np.ceil(n_frames / FPS / step)) + 1
    grid = np.tile(NEUTRAL, (n, 1))
    for name, t0, t1 in seq:
        grid[int(t0 / step) : int(t1 / step) + 1] = PHONEMES[name][4]
    grid = gaussian_filter1d(grid, smooth_s / step, axis=0, mode="nearest")
    idx = np.clip(np.round(np.arange(n_frames) / FPS / step).astype(int), 0, n - 1)
    return grid[idx]
