"""A labelled side-by-side video of one target: ground truth | each row of a protocol, with
the driving audio, plus a PNG strip of a few frames for quick looks (``aebench compare``).

Panels come from what the metrics read: each cell's lossless ``render_frames/`` (or its
``render.mp4`` for renders without them); the ground truth is the identity's test half at
the cells' working size (self-driven cells only have one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aebench.atomic import atomic_files
from aebench.harness.protocol.run_store import read_cells

LABEL_HEIGHT = 18  # px of the caption band above each panel
MIN_PANEL = 128  # px: narrower frames are enlarged (nearest neighbour) for a legible label


def _label(img: np.ndarray, text: str) -> np.ndarray:
    """The panel with a black caption band above it."""
    import cv2

    h, w = img.shape[:2]
    band = np.zeros((LABEL_HEIGHT, w, 3), np.uint8)
    scale = 0.4 if w < 200 else 0.5
    cv2.putText(band, text[: max(4, w // 7)], (3, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, img], 0)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """``rgb`` as a PNG; an error when it cannot be written (cv2.imwrite only returns False)."""
    import cv2

    ok, data = cv2.imencode(".png", rgb[:, :, ::-1])
    if not ok:
        raise ValueError(f"{path}: the frame strip could not be encoded as PNG")
    path.write_bytes(data.tobytes())


def compare(
    protocol: str | Path, runs_root: Path, out: Path, target: str | None = None, audio: str = "self", strip_frames: int = 4
) -> tuple[Path, Path]:
    """Write ``out`` (mp4, GT | rows, with audio) and ``out`` with ``.png`` (a strip of
    ``strip_frames`` frames); returns both paths."""
    import cv2

    from aebench.data import Identity
    from aebench.media import read_audio, write_video
    from aebench.harness.protocol.runner import scored_source
    from aebench.harness.protocol.spec import load_protocol
    from aebench.eval.frames import FrameSource

    spec = load_protocol(protocol, scale=None)
    name = spec.name
    cells = [c for c in read_cells(Path(runs_root), name) if str(c.get("audio", "self")) == audio]
    if not cells:
        raise FileNotFoundError(
            f"no finished {audio}-driven cells of protocol '{name}' under {runs_root}; run `aebench run protocol={protocol}` first"
        )
    targets = sorted({c["identity"] for c in cells})
    target = target or targets[0]
    if target not in targets:
        raise ValueError(f"protocol '{name}' has no finished {audio}-driven cells of '{target}'; targets: {', '.join(targets)}")
    chosen: dict[str, dict] = {}
    for c in sorted((c for c in cells if c["identity"] == target), key=lambda c: spec.row_rank(c["row"])):
        chosen.setdefault(c["row"], c)  # first seed / clip of each row
    first = next(iter(chosen.values()))
    identity = Identity.open(Path(first["data_root"]) / target).at_size(int(first["size"]) or None)
    sources = {row: FrameSource.of(scored_source(Path(c["dir"]) / "render.mp4"), identity.fps) for row, c in chosen.items()}
    n = min(len(s) for s in sources.values())
    columns = {}
    if audio == "self":
        test = identity.split("test")
        n = min(n, test.n_frames)
        columns["ground truth"] = FrameSource.from_getter(n, test.frame, identity.fps)
    columns.update({row: s.limit(n) for row, s in sources.items()})
    h, w = next(iter(columns.values())).hw
    k = max(1, -(-MIN_PANEL // w))  # small (smoke) frames are enlarged, pixels kept sharp, so labels fit
    hw = (h * k, w * k)

    def panel(img: np.ndarray) -> np.ndarray:
        return img if img.shape[:2] == hw else cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)

    def frames():
        for panels in zip(*columns.values()):
            yield np.concatenate([_label(panel(p), title) for p, title in zip(panels, columns)], 1)

    picks = set(np.linspace(0, n - 1, min(strip_frames, n)).round().astype(int).tolist())
    strip = []

    def tee():
        for i, img in enumerate(frames()):
            if i in picks:
                strip.append(img)
            yield img

    out = Path(out)
    sound = read_audio(Path(first["dir"]) / "render.mp4") if (Path(first["dir"]) / "render.mp4").exists() else None
    if sound is not None:
        sound = sound[: identity.samples_for_frames(n)]
    png = out.with_suffix(".png")
    with atomic_files(out, png) as (video_tmp, png_tmp):  # both or neither, never half a video
        write_video(video_tmp, tee(), fps=identity.fps, audio=sound)
        _write_png(png_tmp, np.concatenate(strip, 0))
    return out, png
