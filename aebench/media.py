"""Video and audio IO through PyAV (FFmpeg): decode frames, decode audio as 16 kHz mono,
write an mp4 with the driving audio muxed in."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.sidedata.sidedata
import numpy as np

#: audio sample rate of prepared identities, features and renders (Hz, mono)
AUDIO_RATE = 16000
#: frame rate of prepared identities and renders (DESIGN.md: 25 fps)
FPS = 25
#: the video files a folder of clips or renders is read for
VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm")
_DISPLAYMATRIX = av.sidedata.sidedata.Type.DISPLAYMATRIX


def frame_ranges(frames, limit: int = 8) -> str:
    """Frame numbers for a message: ``[0, 1, 2, 5, 9, 10]`` as ``0-2, 5, 9-10``; at most ``limit``
    runs, then how many frames in all."""
    frames = sorted(frames)
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (f", ... ({len(frames)} frames in all)" if len(runs) > limit else "")


class MediaError(RuntimeError):
    """A media file that cannot be read as asked (missing, truncated, no stream)."""


@dataclass
class VideoInfo:
    """A video as a player shows it: ``width``/``height`` are the displayed size (a phone clip
    stored 1920x1080 with a 90 degree rotation is 1080x1920); ``rotation`` is what decoding
    applies (see :func:`display_rotation`)."""

    fps: float
    n_frames: int | None
    width: int
    height: int
    has_audio: bool
    duration: float | None
    rotation: int = 0


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
            w, h, n, has_audio = v.codec_context.width, v.codec_context.height, v.frames or None, bool(box.streams.audio)
            rotation = _first_frame_rotation(box, path)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: cannot be opened as a video ({exc})") from exc
    if rotation % 180:
        w, h = h, w
    return VideoInfo(fps, n, w, h, has_audio, dur, rotation)


def _first_frame_rotation(box, path: Path) -> int:
    """The rotation of the first frame that decodes (the display matrix is carried by frames
    in this PyAV, not readable from the stream); 0 when none decodes: then nothing is read."""
    try:
        for packet in box.demux(video=0):
            if packet.is_corrupt:
                continue
            for frame in packet.decode():
                return display_rotation(frame, path)
    except av.error.FFmpegError:
        pass
    return 0


def display_rotation(frame, path: str | Path = "video") -> int:
    """Degrees (0, 90, 180 or 270) a player turns a decoded frame counter-clockwise before
    showing it: the frame's display matrix (an mp4's ``rotate`` tag / display-matrix side data),
    as PyAV's ``frame.rotation`` reads it. A phone video stored landscape and shown portrait
    carries one; scoring the stored frames would compare a turned picture.

    A mirrored matrix or an angle other than a multiple of 90 is refused (MediaError): applying
    part of it would score something no player shows."""
    side = frame.side_data.get(_DISPLAYMATRIX)
    if side is None:
        return 0
    m = np.frombuffer(bytes(side), dtype=np.int32)
    if float(m[0]) * float(m[4]) - float(m[1]) * float(m[3]) < 0:
        raise MediaError(f"{path}: its display matrix mirrors the picture, which is not supported; re-encode it the way it should be shown")
    angle = float(frame.rotation)
    if abs(angle / 90 - round(angle / 90)) > 1e-3:
        raise MediaError(
            f"{path}: display rotation of {angle:g} degrees is not a multiple of 90; re-encode it as shown (ffmpeg -i IN OUT applies it)"
        )
    return int(round(angle)) % 360


def displayed(img: np.ndarray, rotation: int) -> np.ndarray:
    """``img`` (H, W, C) turned ``rotation`` degrees counter-clockwise, as a player shows it.

    Convention verified against ffmpeg's autorotation (the same code as ffplay's; ``ffmpeg -i IN
    OUT`` writes what a player shows): a +90 display matrix (ffprobe ``rotation=90``) moves the
    stored top-left corner to the bottom-left, i.e. ``np.rot90(img, 1)``; -90 (270 here) moves it
    to the top-right (tests/eval/test_media_as_seen.py compares with ffmpeg when installed)."""
    if rotation % 360 == 0:
        return img
    return np.ascontiguousarray(np.rot90(img, k=(rotation // 90) % 4))


def displayed_frames(frames, path: str | Path):
    """``(frame, image)`` for each decoded frame: the image uint8 (H, W, 3) RGB as displayed.
    A rotation that changes mid-video is refused (MediaError): the frames' size would change."""
    first = None
    for frame in frames:
        own = display_rotation(frame, path)
        if first is None:
            first = own
        elif own != first:
            raise MediaError(
                f"{path}: the display rotation changes mid-video ({first} then {own} degrees); re-encode it the way it should be shown"
            )
        yield frame, displayed(frame.to_ndarray(format="rgb24"), own)


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """All frames as uint8 (n, H, W, 3) RGB, and the stream's frame rate."""
    path = Path(path)
    info = probe(path)
    frames = []
    try:
        with av.open(str(path)) as box:
            for _, img in displayed_frames(box.decode(video=0), path):
                frames.append(img)
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
    """Yield uint8 (H, W, 3) RGB frames one at a time (for long videos), as displayed (see
    :func:`displayed`); ``skip_damaged``: leave out packets the demuxer marks corrupt (the
    half-written last frames of a truncated file)."""
    with av.open(str(path)) as box:
        decoded = (frame for packet in box.demux(video=0) if not (skip_damaged and packet.is_corrupt) for frame in packet.decode())
        for _, img in displayed_frames(decoded, path):
            yield img


def write_image(path: str | Path, bgr: np.ndarray, params=()) -> None:
    """``cv2.imwrite``, which only returns False on failure (a full disk, a read-only folder):
    that failure raised as an OSError naming the file."""
    import errno

    import cv2

    if not cv2.imwrite(str(path), bgr, list(params)):
        raise OSError(errno.EIO, "the image could not be written", str(path))


def check_finite_audio(audio: np.ndarray, where: str | Path, rate: int = AUDIO_RATE) -> np.ndarray:
    """``audio`` unchanged, or a MediaError naming ``where`` when it holds NaN or infinite samples
    (voice activity and loudness would read them as silence, and a metric would score that)."""
    bad = ~np.isfinite(audio)
    if bad.any():
        first = int(np.argmax(bad))
        raise MediaError(
            f"{where}: the audio has {int(bad.sum())} NaN or infinite samples (the first at "
            f"{first / rate:.3f} s); re-encode the speech track"
        )
    return audio


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


def write_video(
    path: str | Path, frames, fps: float = FPS, audio: np.ndarray | None = None, audio_rate: int = AUDIO_RATE, crf: int = 18
) -> Path:
    """Write RGB uint8 frames (iterable of (H, W, 3)) to an H.264 mp4, muxing mono float audio.

    Written to a temporary name and renamed, so a half-written file never appears."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    frames = iter(frames)
    first = np.asarray(next(frames))
    try:
        _encode(tmp, first, frames, fps, audio, audio_rate, crf)
    except BaseException:  # a full disk, an interrupt: no half-written file is left behind
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def _encode(tmp: Path, first: np.ndarray, frames, fps: float, audio, audio_rate: int, crf: int) -> None:
    """The encoding of :func:`write_video` into ``tmp``."""
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
                chunk = np.ascontiguousarray(samples[:, start : start + step])
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = audio_rate
                af.pts = start
                for packet in as_.encode(af):
                    box.mux(packet)
            for packet in as_.encode():
                box.mux(packet)


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
