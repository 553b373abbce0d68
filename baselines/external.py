"""``external``: score videos rendered by any other system (Wav2Lip, RAD-NeRF, your own) in the
same tables as the methods trained here.

Layout of ``cfg.external.root`` (one entry per identity, named as the prepared identity)::

    ROOT/<identity>.mp4                 one render of that identity (any driving audio)
    ROOT/<identity>/<audio>.mp4         one render per driving audio; <audio> is chosen by
                                        ``external.audio`` (e.g. ``zozo``), default ``self``
                                        (self-driven: the identity's own test-half audio)

``finetune`` trains nothing: it finds the identity's entry, lists its videos and records them
(with size and mtime, so a replaced file is noticed) in ``<run_dir>/checkpoint/external.json``,
which is the "checkpoint". ``pretrain`` returns None. ``render`` picks the video for
``external.audio``, checks its frame rate against the identity's and its frame count against
the driving audio (:func:`aebench.method_api.render_span`, uncapped): a video within ``external.tolerance``
frames (default 1) is accepted and copied byte for byte; it is scored exactly as given
(decoded, never re-encoded), the runner dropping an extra last frame. Anything else is
refused with a message naming both counts.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from aebench.data import Identity
from aebench.media import VIDEO_EXTS
from aebench.method_api import Method, render_span
from aebench.settings import Settings, setting

CKPT_FILE = "external.json"


class ExternalError(RuntimeError):
    """An external render that is missing or does not fit the identity and driving audio."""


def find_entry(root: Path, identity: str) -> dict[str, Path]:
    """The videos of ``identity`` under ``root`` keyed by driving-audio name (``*`` for a
    single ``ROOT/<identity>.<ext>`` render)."""
    root = Path(root)
    if not root.is_dir():
        raise ExternalError(
            f"external.root {root} is not a folder; set external.root=DIR holding <identity>.mp4 or <identity>/<audio>.mp4 renders"
        )
    folder = root / identity
    if folder.is_dir():
        videos = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTS}
        if not videos:
            raise ExternalError(f"{folder} holds no video ({', '.join(VIDEO_EXTS)})")
        return videos
    for ext in VIDEO_EXTS:
        if (root / f"{identity}{ext}").is_file():
            return {"*": root / f"{identity}{ext}"}
    have = sorted(p.name for p in root.iterdir())
    raise ExternalError(
        f"no render of identity '{identity}' under {root}: expected {identity}.mp4 or {identity}/<audio>.mp4; found {have[:10]}"
    )


def count_frames(path: Path) -> tuple[int, float]:
    """(decoded frame count, fps) of a video; decodes it, since container counts can lie."""
    import av

    from aebench.media import MediaError, probe

    info = probe(path)
    try:
        with av.open(str(path)) as box:
            n = sum(1 for _ in box.decode(video=0))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: video cannot be decoded ({exc})") from exc
    return n, info.fps


@dataclasses.dataclass(frozen=True)
class ExternalSettings(Settings):
    """``cfg.external``: where another system's renders are, one entry per identity."""

    root: str = setting("")
    """Folder: ``ROOT/<identity>.mp4`` or ``ROOT/<identity>/<audio>.mp4``."""
    audio: str = setting("self")
    """Which ``ROOT/<identity>/<audio>.mp4`` to use (``self`` = self-driven)."""
    tolerance: int = setting(1, low=0)
    """Accepted |video frames - round(audio s * fps)|; longer videos are trimmed."""


class External(Method):
    name = "external"
    has_base_model = False
    settings_cls = ExternalSettings

    def pretrain(self, identities: list[Identity], cfg: DictConfig, run_dir: Path) -> Path | None:
        return None

    def finetune(self, identity: Identity, clip: Identity, base: Path | None, cfg: DictConfig, run_dir: Path) -> Path:
        videos = find_entry(Path(cfg.external.root), identity.name)
        ckpt = Path(run_dir) / "checkpoint"
        ckpt.mkdir(parents=True, exist_ok=True)
        record = {
            "root": str(Path(cfg.external.root).resolve()),
            "identity": identity.name,
            "videos": {k: {"path": str(p.resolve()), "bytes": p.stat().st_size, "mtime": p.stat().st_mtime} for k, p in videos.items()},
        }
        tmp = ckpt / (CKPT_FILE + ".partial")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(ckpt / CKPT_FILE)
        return ckpt

    def render(self, checkpoint: Path, identity: Identity, driving_audio: np.ndarray, cfg: DictConfig, out: Path) -> Path:
        record_path = Path(checkpoint) / CKPT_FILE
        if not record_path.exists():
            raise ExternalError(f"{checkpoint} is not an external checkpoint (no {CKPT_FILE}); run finetune first")
        record = json.loads(record_path.read_text())
        videos = record["videos"]
        key = str(cfg.external.audio)
        if "*" in videos:
            entry = videos["*"]
        elif key in videos:
            entry = videos[key]
        else:
            raise ExternalError(
                f"identity '{record['identity']}' has renders for audio {sorted(videos)}, not '{key}'; set external.audio=NAME"
            )
        src = Path(entry["path"])
        if not src.exists() or src.stat().st_size != entry["bytes"]:
            raise ExternalError(f"{src} is missing or changed since it was recorded; run finetune again")
        n_video, fps = count_frames(src)
        if abs(fps - identity.fps) > 1e-3:
            raise ExternalError(
                f"{src} runs at {fps:g} fps but identity '{identity.name}' at {identity.fps:g} fps; "
                f"resample the render to {identity.fps:g} fps"
            )
        n, _ = render_span(identity, driving_audio)
        tol = int(cfg.external.tolerance)
        if abs(n_video - n) > tol:
            raise ExternalError(
                f"{src} has {n_video} frames but the driving audio ({len(driving_audio) / identity.audio_rate:.2f} s "
                f"at {identity.fps:g} fps) needs {n} (tolerance {tol}); is it the render of this audio?"
            )
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".partial" + out.suffix)
        shutil.copyfile(src, tmp)  # byte for byte: scored exactly as given (an extra frame is dropped when scoring)
        tmp.replace(out)
        return out
