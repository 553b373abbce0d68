"""Media as people see it: a video's display rotation (a phone clip's ``rotate`` tag / display
matrix) is applied when decoding, in eval and in data prepare, and recorded.

Convention (checked against ffmpeg's autorotation, the code ffplay shares, when ffmpeg is
installed): PyAV's ``frame.rotation`` / ffprobe's ``rotation`` is counter-clockwise, so +90
shows the stored top-left corner at the bottom-left (``np.rot90(stored, 1)``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from aebench.eval import evaluate
from aebench.eval.frames import FrameSource
from aebench.harness.cli import main
from aebench.media import AUDIO_RATE, MediaError, probe, read_video

FPS = 25


def write_mp4(path: Path, stored: np.ndarray, rotation: int | None = None, hflip: bool = False, audio: np.ndarray | None = None) -> Path:
    """A lossless H.264 mp4 of ``stored`` frames, with a display rotation (counter-clockwise
    degrees, PyAV's ``set_display_rotation``) when given, and mono float audio when given."""
    with av.open(str(path), "w") as box:
        st = box.add_stream("libx264", rate=FPS)
        st.width, st.height, st.pix_fmt = stored.shape[2], stored.shape[1], "yuv444p"
        st.codec_context.options = {"crf": "0"}
        if rotation is not None or hflip:
            st.set_display_rotation(rotation or 0, hflip=hflip)
        aud = None
        if audio is not None:
            aud = box.add_stream("aac", rate=AUDIO_RATE)
            aud.layout = "mono"
        for img in stored:
            for pk in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                box.mux(pk)
        for pk in st.encode():
            box.mux(pk)
        if aud is not None:
            samples = np.asarray(audio, np.float32).reshape(1, -1)
            for start in range(0, samples.shape[1], 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + 1024]), format="flt", layout="mono")
                af.sample_rate, af.pts = AUDIO_RATE, start
                for pk in aud.encode(af):
                    box.mux(pk)
            for pk in aud.encode():
                box.mux(pk)
    return path


def marked(n: int = 4, h: int = 24, w: int = 32) -> np.ndarray:
    """Grey frames with a red top-left and a green top-right corner."""
    img = np.full((n, h, w, 3), 90, np.uint8)
    img[:, :6, :6] = (255, 0, 0)
    img[:, :6, -6:] = (0, 255, 0)
    return img


def corners(img: np.ndarray) -> str:
    """Where the red marker is: TL, TR, BL or BR."""
    h, w = img.shape[:2]
    spots = {"TL": img[2, 2], "TR": img[2, w - 3], "BL": img[h - 3, 2], "BR": img[h - 3, w - 3]}
    return next(k for k, p in spots.items() if p[0] > 200 and p[1] < 80)


@pytest.mark.parametrize("rotation,where", [(90, "BL"), (180, "BR"), (270, "TR")])
def test_probe_and_decoding_show_the_frames_as_a_player_does(tmp_path, rotation, where):
    video = write_mp4(tmp_path / "r.mp4", marked(), rotation)
    info = probe(video)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((24, 32) if rotation % 180 else (32, 24))  # displayed size
    frames, _ = read_video(video)
    assert frames.shape[1:3] == (info.height, info.width) and corners(frames[0]) == where
    src = FrameSource.of(video)
    assert src.hw == (info.height, info.width) and np.array_equal(src.array(), frames)
    assert src.notes["rotation"] == rotation


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("tag", [90, 180, 270])
def test_a_rotate_tag_set_by_ffmpeg_decodes_as_ffmpeg_shows_it(tmp_path, tag):
    """The reference: ``ffmpeg -i IN OUT.png`` applies the rotation as ffplay does."""
    plain = write_mp4(tmp_path / "plain.mp4", marked())
    tagged = tmp_path / "tagged.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(plain), "-c", "copy", "-metadata:s:v", f"rotate={tag}", str(tagged)], check=True
    )
    shown = tmp_path / "shown.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tagged), "-frames:v", "1", str(shown)], check=True)
    reference = cv2.imread(str(shown))[:, :, ::-1]
    frames, _ = read_video(tagged)
    assert probe(tagged).rotation != 0
    assert frames[0].shape == reference.shape and np.abs(frames[0].astype(int) - reference).max() <= 2


def test_a_rotated_copy_scores_like_the_video_it_shows(tmp_path, face_frames):
    """A phone-style file (stored turned, with a display rotation) against a ground truth that
    looks identical: scored as shown (PSNR of a near-lossless copy), not as stored (~12 dB)."""
    shown = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in face_frames[:6]])
    gt = write_mp4(tmp_path / "gt.mp4", shown)
    pred = write_mp4(tmp_path / "phone.mp4", np.rot90(shown, -1, axes=(1, 2)), rotation=90)  # stored clockwise
    r = evaluate(str(pred), str(gt), metrics=["psnr"], progress=False)
    assert r.summary["psnr"] > 40
    assert r.info["pred_source"]["rotation"] == 90 and r.info["gt_source"]["rotation"] == 0
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "--pred: display rotation of 90 degrees applied" in res.output
    assert json.loads((out / "metrics.json").read_text())["info"]["pred_source"]["rotation"] == 90


def test_a_mirrored_display_matrix_is_refused(tmp_path):
    video = write_mp4(tmp_path / "mirror.mp4", marked(), rotation=0, hflip=True)
    with pytest.raises(MediaError, match="mirrors the picture"):
        probe(video)
    res = CliRunner().invoke(main, ["eval", "--pred", str(video), "--gt", str(video), "--metrics", "psnr", "--out", str(tmp_path / "out")])
    assert res.exit_code != 0 and "Traceback" not in res.output and "mirrors the picture" in res.output


def test_prepare_reads_a_rotated_phone_clip_upright_and_records_it(tmp_path, shared_data):
    """Stored turned, the face is sideways (no face found); decoded as shown, it prepares."""
    from aebench.data.prepare import prepare, resampled_frames
    from aebench.media import read_audio

    clip = shared_data / "clips" / "may_short.mp4"
    shown, _ = read_video(clip, max_frames=FPS)
    shown = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in shown])
    audio = read_audio(clip)[:AUDIO_RATE]
    phone = write_mp4(tmp_path / "phone.mp4", np.rot90(shown, -1, axes=(1, 2)), rotation=90, audio=audio)
    first = next(resampled_frames(phone, FPS, 1.0))
    assert np.abs(first.astype(int) - shown[0]).max() <= 2  # upright, as shown
    ident = prepare(phone, "phone", tmp_path / "prepared", size=64, max_seconds=1.0, progress=False, log=lambda *_: None)
    meta = json.loads((ident / "meta.json").read_text())
    assert meta["rotation"] == 90 and meta["faces_found"] > 0
