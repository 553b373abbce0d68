"""Loading what is evaluated (a video, a folder of frames or an array) and the scoring rules
every method is held to (DESIGN.md, "Scoring rules"):

* predictions are scored exactly as given: decoded frames of the file, never re-encoded
  first; NeRF methods' renders are scored from their lossless PNG frames;
* at the ground truth's resolution: a prediction of another size is refused unless
  ``resize`` is asked for (the prediction is then resized to the ground truth's size with
  INTER_AREA, and the evaluation records it);
* at one frame rate: prediction and ground truth must have the same fps (frame folders and
  arrays take it as an argument, default 25);
* as a player shows them: a video's display rotation is applied (recorded as ``rotation``
  in the evaluation's ``pred_source``/``gt_source``); JPEGs' EXIF orientation too (OpenCV);
* frame folders sort numerically (``frame_2`` before ``frame_10``); a gap in their numbering,
  a repeated number or a name without one is refused (pairing by position would compare
  different moments) unless they are paired by number (``pair_by_number``).
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import numpy as np

from aebench.media import AUDIO_RATE, FPS, MediaError, check_finite_audio, iter_video, probe, read_audio

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
DEFAULT_FPS = float(FPS)


class FrameSource:
    """A clip's frames, read lazily (evaluation streams them: memory stays bounded on long
    videos): an array, a folder of images, a video file, or ``getter(i)`` for ``n`` frames.

    ``len(src)`` is the frame count (a video's packets are counted without decoding), ``hw``
    the (H, W), ``fps`` the rate; iterating yields uint8 (H, W, 3) RGB frames, at most
    :meth:`limit` of them, resized to :meth:`resize` when asked.
    """

    def __init__(self, n: int, hw: tuple[int, int], fps: float, frames, name: str = "frames"):
        self._n, self.hw, self.fps, self._frames, self.name = int(n), tuple(hw), float(fps), frames, name
        self._to: tuple[int, int] | None = None  # resize target (H, W), when asked
        self.notes: dict = {}  # what reading it had to do (recorded in the evaluation's info)

    # ----- construction ------------------------------------------------------------------
    @classmethod
    def of(cls, src, fps: float | None = None) -> FrameSource:
        """From an array, a folder of images, a video path, or an existing source."""
        if isinstance(src, FrameSource):
            return src
        if isinstance(src, np.ndarray):
            a = np.asarray(src)
            if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
                raise ValueError(f"frame arrays must be uint8 (n, H, W, 3), got {a.dtype} {a.shape}")
            if len(a) == 0:
                raise ValueError("no frames to score (an empty array)")
            return cls(len(a), a.shape[1:3], float(fps or DEFAULT_FPS), lambda: iter(a), "array")
        p = Path(src)
        if p.is_dir():
            return cls._folder(p, fps)
        return cls._video(p, fps)

    @classmethod
    def from_getter(cls, n: int, getter, fps: float = DEFAULT_FPS, name: str = "frames") -> FrameSource:
        """``n`` frames produced by ``getter(i)`` (e.g. an identity's ``frame``)."""
        if n <= 0:
            raise ValueError("no frames to score")
        first = np.asarray(getter(0))
        return cls(n, first.shape[:2], fps, lambda: (np.asarray(getter(i)) for i in range(n)), name)

    @classmethod
    def _folder(cls, p: Path, fps: float | None) -> FrameSource:
        """A frame folder read by position: its numbering must have no gap (see :func:`check_numbering`)."""
        numbers = frame_numbers(p)
        check_numbering(p, numbers)
        return cls.images(p, [numbers[k] for k in sorted(numbers)], fps)

    @classmethod
    def images(cls, p: Path, files: list[Path], fps: float | None) -> FrameSource:
        """The image ``files`` (of folder ``p``) in the order given."""
        import cv2

        def read(f: Path) -> np.ndarray:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise MediaError(f"{f}: cannot be read as an image")
            return np.ascontiguousarray(img[:, :, ::-1])

        hw = read(files[0]).shape[:2]

        def frames():
            for f in files:
                img = read(f)
                if img.shape[:2] != hw:
                    raise MediaError(f"{p}: frames have different sizes ({f.name} is {img.shape[1]}x{img.shape[0]})")
                yield img

        return cls(len(files), hw, float(fps or DEFAULT_FPS), frames, str(p))

    @classmethod
    def _video(cls, p: Path, fps: float | None) -> FrameSource:
        import av

        info = probe(p)
        own = float(info.fps or DEFAULT_FPS)
        if fps is not None and abs(own - float(fps)) > 1e-3:
            raise ValueError(f"{p} runs at {own:g} fps, not the given {float(fps):g}; resample it (ffmpeg -r) or drop --fps")
        try:
            with av.open(str(p)) as box:  # demux only (cheap, no decoding): count, damage, timestamps
                stream = box.streams.video[0]
                packets = [(pk.pts, bool(pk.is_corrupt)) for pk in box.demux(video=0) if pk.size]
                time_base = float(stream.time_base) if stream.time_base else None
        except av.error.FFmpegError as exc:
            raise MediaError(f"{p}: cannot be read as a video ({exc})") from exc
        if not packets:
            raise MediaError(f"{p}: no video frames")
        damaged = [i for i, (_, bad) in enumerate(packets) if bad]
        n = len(packets) - len(damaged)
        if damaged and damaged != list(range(n, len(packets))):
            raise MediaError(
                f"{p}: frames {damaged[:5]} are damaged inside the video; pairing frames by index would "
                "shift every later one: repair or re-encode the file"
            )
        _check_constant_rate(p, [pts for pts, _ in packets if pts is not None], time_base, own)

        def frames():
            count = 0
            try:
                for img in iter_video(p, skip_damaged=True):
                    count += 1
                    yield img
            except av.error.FFmpegError as exc:
                raise MediaError(f"{p}: decoding stopped after {count} frames, the file looks truncated ({exc})") from exc

        src = cls(n, (info.height, info.width), own, frames, str(p))  # as displayed (media.displayed)
        src.notes["rotation"] = info.rotation  # degrees counter-clockwise applied from the display matrix
        if damaged:  # a truncated file: its last, half-written frames are not scored
            src.notes["damaged_frames_dropped"] = len(damaged)
            warnings.warn(f"{p}: the last {len(damaged)} frame(s) are damaged (a truncated file) and are not scored", stacklevel=2)
        return src

    # ----- views -------------------------------------------------------------------------
    def limit(self, n: int) -> FrameSource:
        """The first ``n`` frames (at most)."""
        out = copy.copy(self)
        out._n = min(self._n, int(n))
        return out

    def resize(self, hw: tuple[int, int]) -> FrameSource:
        """The same frames resized to ``hw`` (H, W) with INTER_AREA."""
        out = copy.copy(self)
        out.hw = out._to = tuple(hw)
        return out

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        import cv2

        count = 0
        for img in self._frames():
            if count >= self._n:
                break
            if self._to is not None and img.shape[:2] != self._to:
                img = cv2.resize(img, (self._to[1], self._to[0]), interpolation=cv2.INTER_AREA)
            count += 1
            yield img
        if count < self._n:
            raise MediaError(f"{self.name}: only {count} of {self._n} frames could be read")

    def array(self) -> np.ndarray:
        """All frames in memory (for short clips and tests)."""
        return np.stack(list(self))


def _check_constant_rate(p: Path, pts: list[int], time_base: float | None, fps: float) -> None:
    """A video's frames must be 1/fps apart: frames are paired with the ground truth's by index,
    which compares different times when the rate varies (refused, with the fix)."""
    if time_base is None or len(pts) < 3:
        return
    steps = np.diff(np.sort(np.asarray(pts, dtype=np.float64))) * time_base
    period = 1.0 / fps
    if np.max(np.abs(steps - period)) > 0.25 * period:
        raise ValueError(
            f"{p} has a variable frame rate (frames {steps.min() * 1000:.1f} to {steps.max() * 1000:.1f} ms "
            f"apart, {fps:g} fps on average): pairing its frames by index would compare different times; "
            f"convert it to a constant rate first (ffmpeg -i IN -fps_mode cfr -r {fps:g} OUT)"
        )


def natural_key(name: str) -> list:
    """Sort key that orders the digit runs of a name by value: ``frame_2`` < ``frame_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in numeric order."""
    return sorted((f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_EXT), key=lambda f: natural_key(f.name))


def frame_numbers(folder: Path) -> dict[int, Path]:
    """Each image file of ``folder`` by its frame number, the last run of digits in its name
    (``frame_0012.png`` -> 12). Refuses (MediaError) a folder without images, a name without a
    number and a number used twice: which frame is which would be a guess."""
    files = frame_files(folder)
    if not files:
        raise MediaError(f"{folder}: no image files ({', '.join(sorted(IMAGE_EXT))})")
    numbers: dict[int, Path] = {}
    for f in files:
        digits = re.findall(r"\d+", f.stem)
        if not digits:
            raise MediaError(
                f"{folder}: {f.name} carries no frame number; frames are paired by their numbers (name them e.g. 00000.png, 00001.png ...)"
            )
        k = int(digits[-1])
        if k in numbers:
            raise MediaError(f"{folder}: {numbers[k].name} and {f.name} both carry frame number {k}")
        numbers[k] = f
    return numbers


def check_numbering(folder: Path, numbers: dict[int, Path]) -> None:
    """Refuse (MediaError) a gap in a folder's numbering: pairing its frames by position with the
    other clip's would compare different moments from the gap on."""
    ks = sorted(numbers)
    lo, hi = ks[0], ks[-1]
    n_missing = hi - lo + 1 - len(ks)
    if n_missing == 0:
        return
    first: list[int] = []  # the first few missing numbers, without walking a huge range
    for a, b in zip(ks, ks[1:]):
        first.extend(range(a + 1, min(b, a + 1 + 5 - len(first))))
        if len(first) >= 5:
            break
    more = f" and {n_missing - len(first)} more" if n_missing > len(first) else ""
    raise MediaError(
        f"{folder}: frame numbers {', '.join(map(str, first))}{more} are missing between {lo} and {hi} "
        f"({len(ks)} frames); pairing by position would compare different moments: restore them, "
        "or pair prediction and ground-truth frames by number (--pair-by-number, pair_by_number=True)"
    )


def pair_by_number(pred, gt, fps: float | None) -> tuple[FrameSource, FrameSource, dict]:
    """The frames of two frame folders paired by number (only numbers in both), and the record
    of the pairing: ``pairs``, ``pred_only``, ``gt_only``, and whether the pairs are
    ``consecutive`` numbers starting at the prediction's first (``from_pred_start``): metrics
    over time (and audio) need both."""
    for which, d in (("pred", pred), ("gt", gt)):
        if d is None or not isinstance(d, (str, Path)) or not Path(d).is_dir():
            raise ValueError(f"pairing frames by number needs two frame folders; {which} {d!r} is not a folder")
    pn, gn = frame_numbers(Path(pred)), frame_numbers(Path(gt))
    common = sorted(set(pn) & set(gn))
    if not common:
        raise MediaError(
            f"{pred} (frames {min(pn)}-{max(pn)}) and {gt} (frames {min(gn)}-{max(gn)}) share no frame number: nothing to pair"
        )
    info = {
        "pairs": len(common),
        "pred_only": sorted(set(pn) - set(gn)),
        "gt_only": sorted(set(gn) - set(pn)),
        "consecutive": common[-1] - common[0] + 1 == len(common),
        "from_pred_start": common[0] == min(pn),
    }
    return (FrameSource.images(Path(pred), [pn[k] for k in common], fps), FrameSource.images(Path(gt), [gn[k] for k in common], fps), info)


def load_audio(audio, pred) -> tuple[np.ndarray | None, str | None]:
    """16 kHz mono float32 audio and where it came from: the given path or array, else the
    prediction video's own audio track, else (None, None)."""
    if audio is not None:
        if isinstance(audio, np.ndarray):
            return check_finite_audio(np.asarray(audio, dtype=np.float32).reshape(-1), "the audio array"), "array"
        return check_finite_audio(read_audio(audio, AUDIO_RATE), audio), str(audio)
    if isinstance(pred, (str, Path)) and Path(pred).is_file() and probe(pred).has_audio:
        return check_finite_audio(read_audio(pred, AUDIO_RATE), pred), f"{pred} (its own audio track)"
    return None, None


def align(pred: FrameSource, gt: FrameSource, mode: str = "strict", resize: bool = False) -> tuple[FrameSource, FrameSource, dict]:
    """Apply the scoring rules to a prediction and its ground truth: equal fps, equal frame
    counts (or truncation with ``mode="truncate"``), the ground truth's resolution (the
    prediction resized only with ``resize``). Returns both and a record of what was done."""
    pred, gt = FrameSource.of(pred), FrameSource.of(gt)
    info: dict = {}
    if abs(pred.fps - gt.fps) > 1e-3:
        raise ValueError(
            f"prediction runs at {pred.fps:g} fps, ground truth at {gt.fps:g} fps: refusing to compare "
            "frames of different times; resample one of them (ffmpeg -r), or give frame folders --fps"
        )
    if len(pred) != len(gt):
        if mode != "truncate":
            raise ValueError(
                f"prediction has {len(pred)} frames, ground truth {len(gt)}: refusing to compare. "
                "Pass align='truncate' (CLI --align truncate) to trim both to the shorter."
            )
        n = min(len(pred), len(gt))
        warnings.warn(f"frame counts differ (pred {len(pred)}, gt {len(gt)}): both truncated to {n}", stacklevel=2)
        info["truncated"] = {"pred": len(pred), "gt": len(gt), "to": n}
        pred, gt = pred.limit(n), gt.limit(n)
    (ph, pw), (gh, gw) = pred.hw, gt.hw
    if (ph, pw) != (gh, gw):
        if not resize:
            raise ValueError(
                f"prediction is {pw}x{ph}, ground truth {gw}x{gh}: metrics are computed at the ground "
                f"truth's resolution. Render at {gw}x{gh}, or pass resize=True (CLI --resize) to resize "
                "the prediction to it (recorded in metrics.json)"
            )
        if abs(ph / pw - gh / gw) > 1e-3:
            raise ValueError(f"aspect ratios differ (pred {pw}x{ph}, gt {gw}x{gh}): refusing to compare")
        pred = pred.resize((gh, gw))
        info["pred_resized"] = {"from": [pw, ph], "to": [gw, gh], "interpolation": "INTER_AREA"}
    return pred, gt, info
