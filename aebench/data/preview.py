"""Overlays on a prepared identity for checking it by eye: landmarks, region masks, pose axes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

COLOURS = {1: (60, 120, 255), 2: (255, 60, 60), 3: (60, 200, 60)}  # head blue, audio red, torso green (RGB)


def overlay(identity, i: int) -> np.ndarray:
    """RGB frame ``i`` with masks tinted, landmarks dotted and the head's axes (x red, y green,
    z blue, 0.3 units from the head origin) projected through pose + intrinsics."""
    img = identity.frame(i).astype(np.float32)
    mask = identity.mask(i)
    for label, colour in COLOURS.items():
        sel = mask == label
        img[sel] = 0.6 * img[sel] + 0.4 * np.array(colour, np.float32)
    img = img.astype(np.uint8)
    r = max(1, img.shape[0] // 200)
    for x, y in identity.landmarks[i]:
        cv2.circle(img, (int(round(x)), int(round(y))), r, (255, 255, 0), -1)
    c2w = identity.poses[i].astype(np.float64)
    w2c = np.linalg.inv(c2w)
    rvec, _ = cv2.Rodrigues(w2c[:3, :3])
    pts = np.array([[0, 0, 0], [0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.3]], np.float64)
    proj, _ = cv2.projectPoints(pts, rvec, w2c[:3, 3], identity.K().astype(np.float64), None)
    o, *axes = [tuple(int(round(v)) for v in p) for p in proj.reshape(-1, 2)]
    for end, colour in zip(axes, [(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        cv2.line(img, o, end, colour, max(1, r), cv2.LINE_AA)
    return img


def contact_sheet(identity, n: int = 8, cols: int = 4) -> np.ndarray:
    """``n`` evenly spaced overlaid frames in a grid."""
    idx = np.linspace(0, identity.n_frames - 1, min(n, identity.n_frames)).round().astype(int)
    tiles = [overlay(identity, int(i)) for i in idx]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[k : k + cols], axis=1) for k in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


def write_preview(identity, out: Path) -> Path:
    """PNG contact sheet, or (for ``.mp4``) every frame overlaid with the identity's audio."""
    out = Path(out)
    if out.suffix.lower() == ".mp4":
        from aebench.media import write_video

        return write_video(out, (overlay(identity, i) for i in range(identity.n_frames)), identity.fps, identity.audio, identity.audio_rate)
    from aebench.atomic import atomic_files

    ok, png = cv2.imencode(".png", cv2.cvtColor(contact_sheet(identity), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{out}: the contact sheet could not be encoded as PNG")
    with atomic_files(out) as (tmp,):  # whole or not at all (cv2.imwrite only returns False on failure)
        tmp.write_bytes(png.tobytes())
    return out
