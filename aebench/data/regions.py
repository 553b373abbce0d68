"""Region masks from 68 landmarks, and the median background.

Labels (DESIGN.md): 0 background, 1 audio-independent head, 2 audio-related lower face,
3 torso/neck. Recipe, painted in this order (later wins):

* torso/neck (3): a polygon from the jaw sides (points 3 and 13) down a neck of
  ``neck_width`` x face width, widening to shoulders of ``shoulder_width`` x face width
  from ~0.6 face heights below the chin down to the image bottom;
* head (1): convex hull of the jaw contour and the brows lifted by ``forehead`` x the
  brow-to-chin height and widened by ``hair_width`` (forehead/hair), and the upper jaw
  points widened by ``hair_width`` (hair beside the cheeks), plus the ellipse
  fitted to those points;
* audio (2): the jaw contour's hull cut to the half-plane below the nose line (through
  nostril points 31 and 35), i.e. mouth, lower cheeks and chin.
"""

from __future__ import annotations

import cv2
import numpy as np

JAW = slice(0, 17)
BROWS = slice(17, 27)


def region_mask(
    lm: np.ndarray, size: int, forehead: float = 0.6, neck_width: float = 0.7, shoulder_width: float = 2.6, hair_width: float = 1.3
) -> np.ndarray:
    """uint8 (size, size) labels for one frame's (68, 2) landmarks."""
    mask = np.zeros((size, size), np.uint8)
    jaw, brows = lm[JAW], lm[BROWS]
    face_w = float(np.linalg.norm(jaw[16] - jaw[0]))
    chin = jaw[8]
    up = chin - brows.mean(0)  # brow -> chin direction (face "down")
    face_h = float(np.linalg.norm(up))
    down = up / max(face_h, 1e-6)
    right = np.array([-down[1], down[0]])  # perpendicular (image-right for an upright face)
    if right[0] < 0:
        right = -right

    neck_c = chin + down * 0.3 * face_h
    shoulder_c = chin + down * 0.6 * face_h
    bottom_c = shoulder_c + down * 4 * size
    torso = np.array(
        [
            jaw[3],
            jaw[13],
            neck_c + right * neck_width * face_w / 2,
            shoulder_c + right * shoulder_width * face_w / 2,
            bottom_c + right * shoulder_width * face_w / 2,
            bottom_c - right * shoulder_width * face_w / 2,
            shoulder_c - right * shoulder_width * face_w / 2,
            neck_c - right * neck_width * face_w / 2,
        ]
    )
    cv2.fillPoly(mask, [np.round(torso).astype(np.int32)], 3)

    lifted = brows - down * forehead * face_h
    mid = lifted.mean(0)
    lifted = mid + (lifted - mid) + np.outer((lifted - mid) @ right, right) * (hair_width - 1)  # hair is wider
    upper_jaw = jaw[[0, 1, 2, 3, 13, 14, 15, 16]]
    fmid = jaw.mean(0)
    wide_jaw = upper_jaw + np.outer((upper_jaw - fmid) @ right, right) * (hair_width - 1)  # hair beside the cheeks
    pts = np.concatenate([jaw, brows, lifted, wide_jaw]).astype(np.float32)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull(pts)).astype(np.int32), 1)
    ellipse_pts = np.concatenate([jaw, lifted]).astype(np.float32)
    cv2.ellipse(mask, cv2.fitEllipse(ellipse_pts), 1, -1)

    lower = np.zeros_like(mask)
    cv2.fillConvexPoly(lower, np.round(cv2.convexHull(jaw.astype(np.float32))).astype(np.int32), 1)
    ys, xs = np.mgrid[0:size, 0:size]
    a, b = lm[31], lm[35]
    normal = np.array([-(b - a)[1], (b - a)[0]])
    if normal @ down < 0:
        normal = -normal
    below = ((xs - a[0]) * normal[0] + (ys - a[1]) * normal[1]) >= 0
    mask[(lower > 0) & below] = 2
    return mask


def median_background(frames, masks, dilate: int = 7) -> np.ndarray:
    """uint8 (H, W, 3): per pixel the median over frames where it is background (label 0,
    after dilating the person by ``dilate`` px); never-background pixels are inpainted."""
    frames = np.asarray(frames)
    kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8) if dilate > 0 else None
    bg = np.stack([(cv2.dilate((m > 0).astype(np.uint8), kernel) if kernel is not None else (m > 0)) == 0 for m in masks])
    out = np.zeros(frames.shape[1:], np.uint8)
    seen = bg.any(0)
    for y in range(0, frames.shape[1], 32):  # row bands bound the float copy's memory
        f = frames[:, y : y + 32].astype(np.float32)
        f[~bg[:, y : y + 32]] = np.nan
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(f, axis=0)
        out[y : y + 32] = np.nan_to_num(med, nan=0).round().clip(0, 255).astype(np.uint8)
    hole = (~seen).astype(np.uint8)
    if hole.any():
        out = cv2.inpaint(out, hole, 5, cv2.INPAINT_TELEA)
    return out


def refine_person(
    img: np.ndarray, labels: np.ndarray, lm: np.ndarray, work: int = 128, iters: int = 2, ring: float = 0.35, ring_top: float = 0.12
) -> np.ndarray:
    """Refine the person/background split of ``labels`` with ``cv2.grabCut`` on a ``work`` px copy.

    Seeds: the landmarks' hull (face) and the audio region are sure foreground; the rest of
    the landmark masks, and a ring around them, probable foreground; pixels beyond the ring
    probable background, and those beyond it *above the nose tip* sure background. The ring
    is ``ring`` x face width beside and below the face but only ``ring_top`` x face width above
    the brows: the head mask already spans the hair there, and a wide ring let a dark
    backdrop touching the top edge (HDTF's close crops) join the head as a block.
    Sure background stops at the nose tip (not the chin) because in close crops the
    shoulders reach up beside the chin and must stay free to become torso.

    Where grabCut adds person pixels (hair, shoulders) they become head when above the chin
    and within the ring of the face, else torso; mask pixels it rejects become background,
    except the sure face. Returns new labels (same shape)."""
    size = labels.shape[0]
    s = work / size
    small = cv2.resize(img, (work, work), interpolation=cv2.INTER_AREA)
    lab = cv2.resize(labels, (work, work), interpolation=cv2.INTER_NEAREST)
    sure = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(sure, np.round(cv2.convexHull(lm[:27].astype(np.float32))).astype(np.int32), 1)
    sure[labels == 2] = 1
    sure_s = cv2.resize(sure, (work, work), interpolation=cv2.INTER_NEAREST)
    face_w = float(np.linalg.norm(lm[16] - lm[0])) * s
    rows = np.arange(work)[:, None]

    def dilated(mask: np.ndarray, frac: float) -> np.ndarray:
        r = max(1, int(frac * face_w))
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))

    person = (lab > 0).astype(np.uint8)
    near = np.where(rows < lm[17:27, 1].min() * s, dilated(person, ring_top), dilated(person, ring))
    gc = np.full((work, work), cv2.GC_PR_BGD, np.uint8)
    gc[near > 0] = cv2.GC_PR_FGD
    gc[(near == 0) & (rows < lm[33, 1] * s)] = cv2.GC_BGD  # beside/above the head, far out
    gc[sure_s > 0] = cv2.GC_FGD
    if not (gc == cv2.GC_BGD).any() and not (gc == cv2.GC_PR_BGD).any():
        return labels
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = cv2.resize(fg, (size, size), interpolation=cv2.INTER_NEAREST) > 0
    head_zone = cv2.resize(dilated(((lab == 1) | (lab == 2)).astype(np.uint8), ring), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    head_zone &= np.arange(size)[:, None] < lm[8, 1]
    out = labels.copy()
    add = fg & (labels == 0)
    out[add & head_zone] = 1
    out[add & ~head_zone] = 3
    out[~fg & (labels > 0) & (sure == 0)] = 0
    return out
