"""`aebench eval` on odd inputs that used to give wrong numbers without a word: each is now
refused, or handled with the reason in the evaluation's info (metrics.json)."""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from aebench.eval import evaluate
from aebench.eval.frames import FrameSource
from aebench.media import AUDIO_RATE

FPS = 25


def frames(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (size, size, 3)).astype(np.int16)
    return np.stack([np.clip(base + 3 * i, 0, 255) for i in range(n)]).astype(np.uint8)


def write_mp4(path: Path, imgs: np.ndarray, times_ms: list[int] | None = None, faststart: bool = False) -> Path:
    """An H.264 mp4 (near lossless) of ``imgs``, each shown at ``times_ms`` (default 1/25 s apart)."""
    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as box:
        st = box.add_stream("libx264", rate=FPS)
        st.width, st.height, st.pix_fmt = imgs.shape[2], imgs.shape[1], "yuv444p"
        st.codec_context.options = {"crf": "0"}
        st.time_base = st.codec_context.time_base = Fraction(1, 1000)
        for i, img in enumerate(imgs):
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts, fr.time_base = (times_ms[i] if times_ms else i * 40), Fraction(1, 1000)
            for pk in st.encode(fr):
                box.mux(pk)
        for pk in st.encode():
            box.mux(pk)
    return path


def test_audio_shorter_than_the_video_is_not_scored_as_silence():
    """(a) 2 s of video, 1 s of audio: audio metrics are missing with the reason, or, with
    align='truncate', scored on the frames the audio covers."""
    video = frames(50)
    audio = (0.3 * np.sin(np.arange(AUDIO_RATE) / 5)).astype(np.float32)  # 1 s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strict = evaluate(video, audio=audio, metrics=["silent_lip_dlib", "lip_dyn_dlib"], progress=False)
        cut = evaluate(video, audio=audio, metrics=["silent_lip_dlib"], align="truncate", progress=False)
    assert strict.summary["silent_lip_dlib"] is None and "scored as silence" in strict.missing["silent_lip_dlib"]
    assert "audio_too_short" in strict.info
    assert "lip_dyn_dlib" not in strict.missing or "silence" not in strict.missing["lip_dyn_dlib"]  # needs no audio
    assert cut.info["truncated_to_audio"]["to"] == 25 and cut.info["n_frames"] == 25


def test_a_variable_frame_rate_video_is_refused(tmp_path):
    """(b) frames 30 and 50 ms apart (25 fps on average): pairing by index would compare other times."""
    times = [0]
    for i in range(1, 50):
        times.append(times[-1] + (30 if i % 2 else 50))
    vfr = write_mp4(tmp_path / "vfr.mp4", frames(50), times)
    with pytest.raises(ValueError, match="variable frame rate"):
        evaluate(vfr, gt=frames(50), metrics=["psnr"], progress=False)
    assert len(FrameSource.of(write_mp4(tmp_path / "cfr.mp4", frames(50)))) == 50  # a constant rate is fine


def test_the_damaged_last_frames_of_a_truncated_file_are_not_scored(tmp_path):
    """(c) a ground truth cut short mid-frame, scored with align='truncate': only complete frames."""
    full = write_mp4(tmp_path / "gt.mp4", frames(50), faststart=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    gt = FrameSource.of(cut)
    assert gt.notes.get("damaged_frames_dropped", 0) >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = evaluate(frames(50), gt=cut, metrics=["psnr"], align="truncate", progress=False)
    assert r.info["gt_source"]["damaged_frames_dropped"] >= 1 and r.info["n_frames"] == len(gt)
    assert min(row["psnr"] for row in r.frames) > 40  # every scored frame is whole (crf 0 yuv444: near lossless)


def test_a_one_frame_clip_has_no_lip_dynamics():
    """(d) a spread over time needs two frames: missing, as Eyebrow Dynamics says, not 0.0."""
    from aebench.eval.metrics.lip_dyn_dlib import lip_dynamics

    one = np.random.default_rng(0).uniform(10, 20, (1, 68, 2))
    value, why = lip_dynamics(one, (64, 64))
    assert value is None and "needs 2" in why["why"]
