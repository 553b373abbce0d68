"""Video and audio IO through PyAV (FFmpeg): decode frames, decode audio as 16 kHz mono,
write an mp4 with the driving audio muxed in."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: audio sample rate of prepared identities, features and renders (Hz, mono)
AUDIO_RATE = 16000
#: frame rate of prepared identities and renders (DESIGN.md: 25 fps)
FPS = 25
#: the video files a folder of clips or renders is read for
VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm")


class MediaError(RuntimeError):
    """A media file that cannot be read as asked (missing, truncated, no stream)."""


@dataclass
class VideoInfo:
    fps: float
    n_frames: int | None
    width: int
    height: int
    has_audio: bool
    duration: float | None


def probe(path: str | Path) -> VideoInfo:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise MediaError(f"{path}: no video stream")
            v = box.streams.video[0]
            fps = float(v.average_rate or v.guessed_rate or 0)
            dur = float(box.duration / av.time_base) if box.duration else None
            return VideoInfo(fps, v.frames or None, v.codec_context.width, v.codec_context.height,
                             bool(box.streams.audio), dur)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: cannot be opened as a video ({exc})") from exc


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """All frames as uint8 (n, H, W, 3) RGB, and the stream's frame rate."""
    path = Path(path)
    info = probe(path)
    frames = []
    try:
        with av.open(str(path)) as box:
            for frame in box.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        if not frames:
            raise MediaError(f"{path}: video cannot be decoded ({exc})") from exc
        raise MediaError(f"{path}: decoding stopped after {len(frames)} frames, the file looks truncated ({exc})") from exc
    if not frames:
        raise MediaError(f"{path}: no video frames could be decoded")
    return np.stack(frames), info.fps


def iter_video(path: str | Path, skip_damaged: bool = False):
    """Yield uint8 (H, W, 3) RGB frames one at a time (for long videos); ``skip_damaged``: leave
    out packets the demuxer marks corrupt (the half-written last frames of a truncated file)."""
    with av.open(str(path)) as box:
        for packet in box.demux(video=0):
            if skip_damaged and packet.is_corrupt:
                continue
            for frame in packet.decode():
                yield frame.to_ndarray(format="rgb24")


def read_audio(path: str | Path, rate: int = AUDIO_RATE) -> np.ndarray:
    """The first audio stream as float32 mono in [-1, 1] at ``rate`` Hz."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    chunks = []
    try:
        with av.open(str(path)) as box:
            if not box.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in box.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: audio cannot be decoded ({exc})") from exc
    if not chunks:
        raise MediaError(f"{path}: audio stream is empty")
    return np.concatenate(chunks).astype(np.float32)


def write_video(path: str | Path, frames, fps: float = FPS, audio: np.ndarray | None = None,
                audio_rate: int = AUDIO_RATE, crf: int = 18) -> Path:
    """Write RGB uint8 frames (iterable of (H, W, 3)) to an H.264 mp4, muxing mono float audio.

    Written to a temporary name and renamed, so a half-written file never appears."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    frames = iter(frames)
    first = np.asarray(next(frames))
    h, w = first.shape[:2]
    with av.open(str(tmp), mode="w", format="mp4") as box:
        vs = box.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height = w - w % 2, h - h % 2
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "medium"}
        as_ = None
        if audio is not None:
            as_ = box.add_stream("aac", rate=audio_rate)
            as_.layout = "mono"
        for img in _chain(first, frames):
            img = np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[: vs.height, : vs.width])
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(packet)
        for packet in vs.encode():
            box.mux(packet)
        if as_ is not None:
            samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(1, -1), -1, 1)
            step = 1024
            for start in range(0, samples.shape[1], step):
                chunk = np.ascontiguousarray(samples[:, start:start + step])
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = audio_rate
                af.pts = start
                for packet in as_.encode(af):
                    box.mux(packet)
            for packet in as_.encode():
                box.mux(packet)
    tmp.replace(path)
    return path


def _chain(first, rest):
    yield first
    yield from rest


def lossless_frames_dir(video: str | Path) -> Path:
    """Where a render's lossless frames live beside its viewing mp4: ``render.mp4`` ->
    ``render_frames/00000.png ...`` (what metrics read; DESIGN.md, run store)."""
    video = Path(video)
    return video.with_name(video.stem + "_frames")


class PngSequence:
    """Lossless frames written one by one as ``00000.png ...`` into ``folder`` (atomically: into
    ``folder.partial``, renamed by :meth:`commit`)."""

    def __init__(self, folder: str | Path):
        import shutil

        self.folder = Path(folder)
        self.tmp = self.folder.with_name(self.folder.name + ".partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.count = 0

    def write(self, img: np.ndarray) -> None:
        import cv2

        cv2.imwrite(str(self.tmp / f"{self.count:05d}.png"), np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[:, :, ::-1]))
        self.count += 1

    def commit(self) -> Path:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
        self.tmp.rename(self.folder)
        return self.folder


def videos_in(folder: Path) -> list[Path]:
    """The video files (:data:`VIDEO_EXTS`) directly in ``folder``, sorted."""
    return sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in VIDEO_EXTS)
