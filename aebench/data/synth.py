"""A synthetic talking-head corpus: ray-cast 3D heads whose mouths follow the phonemes they say.

Each identity is written in the prepared-identity format of :mod:`aebench.data.identity`
(``frames_format: "npy"``), so every method and metric can run offline on it.

Scene and camera convention (the same as :mod:`aebench.data.prepare`)
------------------------------------------------------------------------
OpenCV camera axes: x right, y down, z forward (the viewing direction). The head is an
ellipsoid of radii about 1 fixed at the world origin, its face looking towards -z (towards
the camera). ``poses[i]`` is the camera-to-world matrix of frame ``i``: the camera sits at
``R_i (0, CAM_Y, -CAM_DIST + tiny offsets)`` with ``CAM_Y = 0.3``, ``CAM_DIST = 4.2`` and
``R_i`` a small smooth rotation (yaw/pitch/roll up to 4/3/2 degrees) about the head, i.e.
the head moves in the camera frame. Focal length is ``1.2 * size`` pixels, principal
point the image centre. The torso and neck are
fixed in the *camera* frame (like a real torso that does not follow head rotations), and
the background image is static. Intrinsics are a pinhole ``(focal, cx, cy)`` in pixels;
``near``/``far`` are the camera distance minus/plus 1.5 head radii.

Audio model
-----------
A random phoneme sequence (vowels a/e/i/o/u with their formants F1/F2/F3, nasals m/n,
closures b/p with a release burst, fricatives s/f, pauses) is synthesised source-filter
style: a glottal pulse train at the identity's f0 (with vibrato and jitter) through a
cascade of formant resonators (scaled by the identity's vocal-tract factor), band-passed
noise for fricatives and bursts. Each phoneme carries a mouth target (opening, width,
roundness); targets are smoothed over time (co-articulation) and sampled at frame times,
so the mouth can only be predicted by recognising *which* sound is spoken, not its
loudness.

Ground truth: masks label the ray hits (0 background, 1 head, 2 audio-related lower front
of the face incl. the mouth, 3 torso/neck); landmarks are 68 points in the iBUG layout
placed on the head surface (mouth points follow the opening) and projected exactly.
Besides the prepared-identity files, each identity has ``mouth.npy`` float32 (n, 3), the
per-frame (opening, width, roundness) in [0, 1], and ``phonemes.json``, the list of
``[phoneme, start_s, end_s]`` ("_" = pause): ground truth for lip-sync diagnostics.

Frames are rendered with one ray per pixel centre (no anti-aliasing), which is exactly
what a NeRF renders for that pixel. The settings are recorded in ``meta.json``; an
identity whose seconds/size/seed/index match is not rendered again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FPS = 25
RATE = 16000
SPF = RATE // FPS  # audio samples per video frame
SCHEMA = 1

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
MOUTH_CENTER = (0.0, 0.47)  # (sx, sy) on the unit sphere of the head frame


# ----------------------------------------------------------------------------- identity look
@dataclass(frozen=True)
class Look:
    """Appearance and voice of one identity (all drawn from its own rng)."""

    radii: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    lips: tuple[float, float, float]
    shirt: tuple[float, float, float]
    hair_line: float
    f0: float
    tract: float  # formant scale (vocal tract length)


def draw_look(rng: np.random.Generator) -> Look:
    skin_base = np.array([0.92, 0.72, 0.58]) * rng.uniform(0.55, 1.05)
    skin = np.clip(skin_base + rng.normal(0, 0.04, 3), 0.15, 1.0)
    hair = np.clip(rng.uniform(0.03, 0.55) * np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7)]), 0, 1)
    lips = np.clip(np.array([0.70, 0.25, 0.28]) * rng.uniform(0.7, 1.1), 0, 1)
    shirt = rng.uniform(0.1, 0.9, 3)
    radii = (rng.uniform(0.78, 0.9), rng.uniform(0.98, 1.08), rng.uniform(0.85, 0.95))
    female = rng.random() < 0.5
    f0 = rng.uniform(180, 240) if female else rng.uniform(95, 140)
    tract = rng.uniform(1.05, 1.15) if female else rng.uniform(0.9, 1.0)
    return Look(radii, tuple(skin), tuple(hair), tuple(lips), tuple(shirt),
                float(rng.uniform(-0.6, -0.2)), float(f0), float(tract))


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A static smooth background: vertical gradient plus a few soft blobs, float (H, W, 3)."""
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    top, bottom = rng.uniform(0.2, 0.9, 3), rng.uniform(0.1, 0.8, 3)
    img = top * (1 - y[..., None]) + bottom * y[..., None]
    for _ in range(4):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        w = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - 0.6 * w) + 0.6 * w * rng.uniform(0, 1, 3)
    return np.clip(img, 0, 1)


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
        env[:len(ramp)] *= ramp
        env[m - len(ramp):] *= ramp[::-1]
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
        grid[int(t0 / step):int(t1 / step) + 1] = PHONEMES[name][4]
    grid = gaussian_filter1d(grid, smooth_s / step, axis=0, mode="nearest")
    idx = np.clip(np.round(np.arange(n_frames) / FPS / step).astype(int), 0, n - 1)
    return grid[idx]


# ----------------------------------------------------------------------------- motion / camera
def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def smooth_curves(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """(n, dims) smooth random curves in about [-1, 1]: sums of slow sinusoids."""
    t = np.arange(n)[:, None] / FPS
    out = np.zeros((n, dims))
    for _ in range(3):
        f, ph, a = rng.uniform(0.05, 0.5, dims), rng.uniform(0, 2 * np.pi, dims), rng.uniform(0.3, 1.0, dims)
        out += a * np.sin(2 * np.pi * f * t + ph)
    return out / 2.0


CAM_DIST = 4.2
CAM_Y = 0.3


def camera_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4, 4) camera-to-world: the camera orbits the head by a few degrees."""
    c = smooth_curves(rng, n, 6)
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        R = _rot(*(np.radians([4.0, 3.0, 2.0]) * c[i, :3]))
        t = np.array([0.0, CAM_Y, -CAM_DIST]) + 0.02 * c[i, 3:]
        poses[i, :3, :3] = R
        poses[i, :3, 3] = R @ t
    return poses


def focal_for(size: int) -> float:
    return 1.2 * size


# ----------------------------------------------------------------------------- rendering
def _ray_dirs(size: int) -> np.ndarray:
    f = focal_for(size)
    c = size / 2.0
    v, u = np.mgrid[0:size, 0:size] + 0.5
    return np.stack([(u - c) / f, (v - c) / f, np.ones_like(u)], -1).reshape(-1, 3)


def _hit_ellipsoid(o: np.ndarray, d: np.ndarray, radii, center=(0, 0, 0)):
    """Nearest positive t of rays o + t d (o (3,) or (N,3), d (N,3)) with an ellipsoid; inf if none."""
    r = np.asarray(radii, dtype=np.float64)
    oo, dd = (o - np.asarray(center)) / r, d / r
    a = (dd * dd).sum(-1)
    b = 2 * (oo * dd).sum(-1)
    c = (oo * oo).sum(-1) - 1
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    return np.where((disc > 0) & (t > 0), t, np.inf)


def _hit_neck(d: np.ndarray, center, radius: float, y_range) -> np.ndarray:
    """Vertical (y-axis) cylinder in camera coordinates, rays from the camera origin."""
    cx, cz = center
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = -2 * (d[:, 0] * cx + d[:, 2] * cz)
    c = cx * cx + cz * cz - radius * radius
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    y = t * d[:, 1]
    ok = (disc > 0) & (t > 0) & (y > y_range[0]) & (y < y_range[1])
    return np.where(ok, t, np.inf)


def _ellipse_in(sx, sy, cx, cy, rx, ry) -> np.ndarray:
    return ((sx - cx) / max(rx, 1e-6)) ** 2 + ((sy - cy) / max(ry, 1e-6)) ** 2 < 1


def mouth_shape(mouth) -> tuple[float, float]:
    """(half-width, half-height of the opening) on the unit sphere for (open, width, round)."""
    op, wd, rd = mouth
    return 0.14 + 0.13 * wd - 0.07 * rd, 0.12 * op


def head_colour(s: np.ndarray, look: Look, mouth) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (N,3) and an 'audio region' flag for unit-sphere points ``s`` of the head."""
    sx, sy, sz = s[:, 0], s[:, 1], s[:, 2]
    col = np.tile(np.asarray(look.skin), (len(s), 1))
    front = sz < -0.35
    # nose: a shaded ridge, darker on the side away from the light
    nose = front & (np.abs(sx) < 0.09) & (sy > -0.05) & (sy < 0.28)
    col[nose] *= (0.8 + 1.2 * np.clip(sx[nose], -0.09, 0.09))[:, None]
    col[front & _ellipse_in(sx, sy, 0, 0.3, 0.13, 0.035)] *= 0.65  # nostrils shadow
    # cheeks
    for cx in (-0.38, 0.38):
        cheek = front & _ellipse_in(sx, sy, cx, 0.25, 0.14, 0.1)
        col[cheek] = col[cheek] * 0.85 + 0.15 * np.array([0.9, 0.4, 0.4])
    # eyes and brows
    for cx in (-0.3, 0.3):
        eye = front & _ellipse_in(sx, sy, cx, -0.1, 0.13, 0.06)
        col[eye] = (0.95, 0.95, 0.92)
        col[front & _ellipse_in(sx, sy, cx, -0.1, 0.05, 0.05)] = (0.15, 0.1, 0.08)
        brow = front & _ellipse_in(sx, sy, cx, -0.27 + 0.05 * np.abs(sx - cx) / 0.15, 0.16, 0.025)
        col[brow] = np.asarray(look.hair) * 0.8
    # mouth: lips ring, dark interior, teeth at the top of the opening
    hw, hh = mouth_shape(mouth)
    mx, my = MOUTH_CENTER
    lips = front & _ellipse_in(sx, sy, mx, my, hw + 0.035, hh + 0.045)
    col[lips] = look.lips
    inside = front & _ellipse_in(sx, sy, mx, my, hw, hh)
    col[inside] = (0.2, 0.05, 0.06)
    teeth = inside & (sy < my - 0.45 * hh)
    col[teeth] = (0.9, 0.9, 0.85)
    # hair cap (top and back) with stripes for texture
    hair = (sy < look.hair_line + 0.15 * sz) | (sz > 0.35 - 0.3 * (sy + 0.3)) & (sy < 0.5)
    stripes = 0.85 + 0.15 * np.sin(40 * np.arctan2(sx, sz))
    col[hair] = np.asarray(look.hair) * stripes[hair, None]
    audio = front & ~hair & (sy > 0.22)
    return col, audio


TORSO_RADII = (1.7, 0.9, 0.8)
TORSO_OFFSET = np.array([0.0, 2.25, 0.4])  # torso centre relative to the head centre, camera frame


def scene_hits(c2w: np.ndarray, dirs: np.ndarray, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray parameters t of the head, torso and neck hits (inf where missed) for camera rays
    ``dirs`` (z = 1, so t is the camera depth). The head is at the world origin; torso and
    neck are placed in camera coordinates relative to where the head centre projects."""
    R, o = c2w[:3, :3], c2w[:3, 3]
    t_head = _hit_ellipsoid(o, dirs @ R.T, look.radii)
    hc = R.T @ (-o)  # head centre in camera coordinates
    t_torso = _hit_ellipsoid(np.zeros(3), dirs, TORSO_RADII, hc + TORSO_OFFSET)
    t_neck = _hit_neck(dirs, (hc[0], hc[2] + 0.15), 0.38, (hc[1] + 0.4, hc[1] + 1.8))
    return t_head, t_torso, t_neck


def render_frame(c2w: np.ndarray, mouth, look: Look, background: np.ndarray,
                 dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast one frame: float RGB (H, W, 3) and uint8 labels (H, W)."""
    size = background.shape[0]
    R, o = c2w[:3, :3], c2w[:3, 3]
    dw = dirs @ R.T
    t_head, t_torso, t_neck = scene_hits(c2w, dirs, look)
    hc = R.T @ (-o)
    t_body = np.minimum(t_torso, t_neck)

    rgb = background.reshape(-1, 3).copy()
    labels = np.zeros(len(dirs), dtype=np.uint8)
    light = np.array([-0.4, -0.5, -0.77])  # towards the light, camera frame

    body = np.isfinite(t_body) & (t_body < t_head)
    if body.any():
        p = t_body[body, None] * dirs[body]
        is_neck = t_neck[body] <= t_torso[body]
        n = np.where(is_neck[:, None],
                     np.stack([p[:, 0] - hc[0], np.zeros(len(p)), p[:, 2] - hc[2] - 0.15], -1),
                     (p - hc - TORSO_OFFSET) / np.asarray(TORSO_RADII) ** 2)
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        shade = 0.35 + 0.65 * np.clip(n @ light, 0, 1)
        alb = np.where(is_neck[:, None], np.asarray(look.skin) * 0.85, np.asarray(look.shirt))
        rgb[body] = alb * shade[:, None]
        labels[body] = 3

    head = np.isfinite(t_head) & ~body
    if head.any():
        p = o + t_head[head, None] * dw[head]  # world = head frame
        s = p / np.asarray(look.radii)
        n = p / np.asarray(look.radii) ** 2
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        shade = 0.35 + 0.65 * np.clip((n @ R) @ light, 0, 1)
        alb, audio = head_colour(s, look, mouth)
        rgb[head] = alb * shade[:, None]
        labels[head] = np.where(audio, 2, 1)
    return rgb.reshape(size, size, 3), labels.reshape(size, size)


# ----------------------------------------------------------------------------- landmarks
def landmark_points(mouth) -> np.ndarray:
    """(68, 2) iBUG-68 points as (sx, sy) on the unit sphere of the head frame."""
    pts = []
    t = np.linspace(0, np.pi, 17)
    pts += list(zip(-0.92 * np.cos(t), -0.05 + 0.85 * np.sin(t)))  # jaw 0-16
    for side in (-1, 1):  # brows 17-21 (image left), 22-26
        xs = np.linspace(-0.46, -0.14, 5) if side < 0 else np.linspace(0.14, 0.46, 5)
        pts += [(x, -0.27 + 0.05 * abs(abs(x) - 0.3) / 0.15) for x in xs]
    pts += [(0.0, y) for y in np.linspace(-0.08, 0.2, 4)]  # nose bridge 27-30
    pts += [(x, 0.3 - 0.03 * (abs(x) < 0.01)) for x in np.linspace(-0.12, 0.12, 5)]  # 31-35
    a = np.pi - np.arange(6) * np.pi / 3  # corner, two top, corner, two bottom
    for cx in (-0.3, 0.3):  # eyes 36-41 (image left), 42-47
        pts += list(zip(cx + 0.13 * np.cos(a), -0.1 - 0.06 * np.sin(a)))
    hw, hh = mouth_shape(mouth)
    mx, my = MOUTH_CENTER
    a = np.pi - np.arange(12) * 2 * np.pi / 12  # outer 48-59: left corner, top lip, right, bottom
    pts += list(zip(mx + (hw + 0.035) * np.cos(a), my - (hh + 0.045) * np.sin(a)))
    a = np.pi - np.arange(8) * 2 * np.pi / 8  # inner 60-67
    pts += list(zip(mx + hw * np.cos(a), my - hh * np.sin(a)))
    return np.asarray(pts, dtype=np.float64)


def project_landmarks(c2w: np.ndarray, mouth, look: Look, size: int) -> np.ndarray:
    sxy = landmark_points(mouth)
    sz = -np.sqrt(np.clip(1 - (sxy ** 2).sum(-1), 0, 1))
    p = np.column_stack([sxy, sz]) * np.asarray(look.radii)
    cam = (p - c2w[:3, 3]) @ c2w[:3, :3]  # world -> camera: R^T (p - o)
    f, c = focal_for(size), size / 2.0
    return np.column_stack([f * cam[:, 0] / cam[:, 2] + c, f * cam[:, 1] / cam[:, 2] + c])


# ----------------------------------------------------------------------------- writing
def _versions() -> dict:
    import scipy

    return {"numpy": np.__version__, "scipy": scipy.__version__}


def make_identity(out_dir: Path, index: int, seconds: float, size: int, seed: int,
                  settings: dict | None = None, progress: bool = False) -> Path:
    """Render identity ``synth_<index>`` into ``out_dir`` (atomic); returns its folder."""
    import cv2
    from scipy.io import wavfile
    from tqdm import tqdm

    out_dir = Path(out_dir)
    name = f"synth_{index:02d}"
    final = out_dir / name
    settings = dict(settings or {}, seconds=float(seconds), size=int(size), seed=int(seed), index=int(index))
    meta_path = final / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text()).get("settings", {})
        if {k: old.get(k) for k in ("seconds", "size", "seed", "index")} == \
                {k: settings[k] for k in ("seconds", "size", "seed", "index")}:
            return final
        shutil.rmtree(final)

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

    tmp = out_dir / (name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    np.save(tmp / "frames.npy", frames)
    np.save(tmp / "masks.npy", masks)
    np.save(tmp / "landmarks.npy", lms)
    np.save(tmp / "poses.npy", poses.astype(np.float32))
    np.save(tmp / "mouth.npy", mouth.astype(np.float32))
    wavfile.write(tmp / "audio.wav", RATE, np.round(audio * 32767).astype(np.int16))
    bg8 = np.clip(background * 255 + 0.5, 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp / "background.png"), cv2.cvtColor(bg8, cv2.COLOR_RGB2BGR))
    (tmp / "phonemes.json").write_text(json.dumps([[n, round(a, 4), round(b, 4)] for n, a, b in seq]))
    f = focal_for(size)
    meta = {
        "schema": SCHEMA, "name": name, "source": "synthetic", "source_sha256": None,
        "fps": FPS, "n_frames": n_frames, "size": [size, size], "frames_format": "npy",
        "intrinsics": [f, size / 2.0, size / 2.0],
        "near": CAM_DIST - 1.5, "far": CAM_DIST + 1.5, "audio_rate": RATE,
        "settings": settings, "versions": _versions(),
        "voice": {"f0": look.f0, "tract": look.tract},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    os.replace(tmp, final)
    return final


def make_corpus(out: Path, identities: int = 3, seconds: float = 10.0, size: int = 64, seed: int = 0,
                progress: bool = False) -> list[Path]:
    """Write ``synth_00`` ... ``synth_<identities-1>`` under ``out``; existing identical ones are kept."""
    from tqdm import tqdm

    if identities < 1 or seconds <= 0 or size < 8:
        raise ValueError(f"need identities >= 1, seconds > 0, size >= 8 (got {identities}, {seconds}, {size})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"identities": int(identities)}
    return [make_identity(out, i, seconds, size, seed, settings, progress=progress)
            for i in tqdm(range(identities), desc="synth corpus", disable=not progress)]
