"""The synthetic scene: camera poses, a ray-cast head (with a mouth), neck, torso and background,
their region masks and 68 landmarks (see the package docstring for the convention)."""

from __future__ import annotations

import numpy as np

from aebench.data.synth.look import Look
from aebench.media import FPS

MOUTH_CENTER = (0.0, 0.47)  # (sx, sy) on the unit sphere of the head frame


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


def render_frame(c2w: np.ndarray, mouth, look: Look, background: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        n = np.where(
            is_neck[:, None],
            np.stack([p[:, 0] - hc[0], np.zeros(len(p)), p[:, 2] - hc[2] - 0.15], -1),
            (p - hc - TORSO_OFFSET) / np.asarray(TORSO_RADII) ** 2,
        )
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
    sz = -np.sqrt(np.clip(1 - (sxy**2).sum(-1), 0, 1))
    p = np.column_stack([sxy, sz]) * np.asarray(look.radii)
    cam = (p - c2w[:3, 3]) @ c2w[:3, :3]  # world -> camera: R^T (p - o)
    f, c = focal_for(size), size / 2.0
    return np.column_stack([f * cam[:, 0] / cam[:, 2] + c, f * cam[:, 1] / cam[:, 2] + c])
