"""Preparation refuses what it cannot use (issue 30, "no wrong number passes"): two people, a face
that jumps between people, a clip too short to split, audio with NaN/inf samples, an identity
name already taken by another clip; it records the identity's content hash; a failed write
(full disk, read-only folder) is a one-line error that leaves nothing half-written."""

from __future__ import annotations

import errno
import json
import pathlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aebench.data.identity import MIN_FRAMES, Identity, content_sha256
from aebench.data.landmarks import another_face, face_jumps
from aebench.data.prepare import PrepareError, prepare
from aebench.media import frame_ranges
from aebench.harness.cli import main

FAST = ("prepare.refine=false",)


def _quiet(_msg) -> None:
    pass


def _no_leftovers(out: Path, name: str) -> None:
    assert not (out / name).exists()
    assert not list(out.glob(f".{name}.*.partial"))


def _cli(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)  # no stray exception
    return res


def _speech(seconds: float) -> np.ndarray:
    return (0.1 * np.sin(np.arange(int(16000 * seconds)) / 7)).astype(np.float32)


@pytest.fixture(scope="module")
def face_tile(shared_data) -> np.ndarray:
    """May's first frame at 128 px: one face about 62 px wide, which dlib finds."""
    import av

    from aebench.data.prepare import _square

    with av.open(str(shared_data / "clips" / "may_short.mp4")) as box:
        return _square(next(box.decode(video=0)).to_ndarray(format="rgb24"), 128)


def _canvas(tile: np.ndarray, *cols: int) -> np.ndarray:
    """A 256x256 grey frame with ``tile`` pasted at each of the columns, vertically centred."""
    frame = np.full((256, 256, 3), 128, np.uint8)
    for c in cols:
        frame[64:192, c : c + 128] = tile
    return frame


# ----------------------------------------------------------------------------- one person
def test_two_faces_side_by_side_are_refused(face_tile, tmp_path):
    """Today: landmarks of whichever face dlib lists first, exit 0."""
    from aebench.media import write_video

    clip = write_video(tmp_path / "two.mp4", [_canvas(face_tile, 0, 128)] * 5, audio=_speech(0.2))
    res = _cli("data", "prepare", str(clip), "--name", "two", "--out", str(tmp_path / "out"), "--size", "256", *FAST)
    assert res.exit_code != 0
    assert "two.mp4: more than one face" in res.output and "in frames 0-4" in res.output, res.output
    _no_leftovers(tmp_path / "out", "two")


def test_a_face_jumping_between_people_is_refused(face_tile, tmp_path):
    """One face per frame, but left in even frames and right in odd ones: the landmarks would
    alternate between two people."""
    from aebench.media import write_video

    frames = [_canvas(face_tile, 0 if i % 2 == 0 else 128) for i in range(6)]
    clip = write_video(tmp_path / "jump.mp4", frames, audio=_speech(0.24))
    with pytest.raises(PrepareError, match=r"jump\.mp4: the face jumps .* at frames 1-5") as err:
        prepare(clip, "jump", tmp_path / "out", size=256, overrides=FAST, progress=False, log=_quiet)
    assert "\n" not in str(err.value)
    _no_leftovers(tmp_path / "out", "jump")


def test_the_face_rules_on_boxes_and_landmarks():
    big, beside, small, inside = (0, 0, 100, 100), (150, 0, 240, 90), (150, 0, 180, 30), (10, 10, 90, 90)
    assert another_face([big, beside]) and not another_face([big]) and not another_face([])
    assert not another_face([big, small])  # a small face far away (a poster, a false hit): not a person like the first
    assert not another_face([big, inside])  # the same face found twice
    face = np.array([[x, y] for x in (0.0, 60.0) for y in (0.0, 60.0)] * 17, np.float32)  # (68, 2), 60 px wide
    still = np.stack([face + [i, 0] for i in range(5)])  # one pixel a frame
    assert face_jumps(still) == []
    lms = np.stack([face, face + 200, np.full_like(face, np.nan), face + 200, face])
    assert face_jumps(lms) == [1, 4]  # frames without a face are skipped, not compared
    assert frame_ranges([0, 1, 2, 5, 9, 10]) == "0-2, 5, 9-10"
    assert frame_ranges(list(range(0, 40, 2)), limit=2) == "0, 2, ... (20 frames in all)"


# ----------------------------------------------------------------------------- too short
def test_a_one_frame_clip_is_refused_before_decoding(tmp_path, monkeypatch):
    """Today it is prepared, and a run fails later on its empty training half."""
    import aebench.data.prepare as P
    from aebench.media import write_video

    clip = write_video(tmp_path / "one.mp4", [np.zeros((32, 32, 3), np.uint8)], audio=_speech(1.0))

    def no_decoding(*_a, **_k):
        raise AssertionError("frames were decoded before the length was checked")

    monkeypatch.setattr(P, "resampled_frames", no_decoding)
    with pytest.raises(
        PrepareError,
        match=rf"one\.mp4: the video gives 1 frame\(s\) at 25 fps; an identity needs "
        rf"at least {MIN_FRAMES}",
    ):
        prepare(clip, "one", tmp_path / "out", size=32, progress=False, log=_quiet)
    _no_leftovers(tmp_path / "out", "one")


def test_max_seconds_below_two_frames_is_refused_before_work(tmp_path):
    from aebench.media import write_video

    clip = write_video(tmp_path / "c.mp4", [np.zeros((32, 32, 3), np.uint8)] * 10, audio=_speech(0.4))
    res = _cli("data", "prepare", str(clip), "--out", str(tmp_path / "out"), "--size", "32", "--max-seconds", "0.04")
    assert res.exit_code != 0 and "keeps 1 frame(s) at 25 fps; an identity needs at least 2" in res.output, res.output
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- audio
def _clip_with_float_audio(path: Path, audio: np.ndarray, n_frames: int = 10) -> Path:
    """A Matroska clip with 32-bit float PCM audio (which can hold NaN and inf samples)."""
    import av

    with av.open(str(path), "w") as box:
        video = box.add_stream("ffv1", rate=25)
        video.width = video.height = 16
        video.pix_fmt = "yuv420p"
        sound = box.add_stream("pcm_f32le", rate=16000)
        sound.layout = "mono"
        for _ in range(n_frames):
            box.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        box.mux(video.encode())
        frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        box.mux(sound.encode(frame))
        box.mux(sound.encode())
    return path


def test_audio_with_nan_or_inf_samples_is_refused(tmp_path):
    """Today the NaN/inf samples become silence, with only a numpy warning."""
    audio = _speech(0.4)
    audio[1000], audio[3000] = np.nan, np.inf
    clip = _clip_with_float_audio(tmp_path / "nan.mkv", audio)
    res = _cli("data", "prepare", str(clip), "--out", str(tmp_path / "out"), "--size", "16")
    assert res.exit_code != 0, res.output
    assert "nan.mkv: the audio has 2 NaN or infinite samples (the first at 0.062 s)" in res.output, res.output
    _no_leftovers(tmp_path / "out", "nan")


# ----------------------------------------------------------------------------- content hash, replacing
@pytest.fixture(scope="module")
def may_small(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("refusals")
    return prepare(
        shared_data / "clips" / "may_short.mp4", "may", out, size=64, max_seconds=0.6, overrides=FAST, progress=False, log=_quiet
    )


def test_prepare_records_the_content_hash(may_small):
    meta = json.loads((may_small / "meta.json").read_text())
    assert meta["content_sha256"] == content_sha256(may_small) and len(meta["content_sha256"]) == 64
    ident = Identity.open(may_small)
    assert ident.content_sha256 == meta["content_sha256"] == ident.split("test").content_sha256


def test_content_hash_covers_the_data_files_only(may_small, tmp_path):
    import shutil

    copy = Path(shutil.copytree(may_small, tmp_path / "renamed"))
    before = content_sha256(copy)
    assert before == content_sha256(may_small)  # the folder's name is not part of it
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "source": "/elsewhere.mp4", "content_sha256": None}))
    (copy / "features" / "extra.npy").write_bytes(b"derived later")
    assert content_sha256(copy) == before
    assert Identity.open(copy).content_sha256 == before  # prepared before meta recorded it: computed
    frame = copy / "frames" / "00003.jpg"
    frame.write_bytes(frame.read_bytes() + b"\0")
    assert content_sha256(copy) != before
    (copy / "audio.wav").unlink()
    assert content_sha256(copy) != before


def test_synthetic_identities_record_the_content_hash(tmp_path):
    from aebench.data.synth import make_corpus

    (path,) = make_corpus(tmp_path, identities=1, seconds=0.2, size=16)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["content_sha256"] == content_sha256(path) == Identity.open(path).content_sha256


def test_another_clip_under_a_taken_name_needs_replace(may_small, shared_data, tmp_path):
    import shutil

    out, other = tmp_path / "ids", shared_data / "clips" / "hdtf_aoc_8s.mp4"
    may_small = Path(shutil.copytree(may_small, out / "may"))
    old = json.loads((may_small / "meta.json").read_text())
    res = _cli("data", "prepare", str(other), "--name", "may", "--out", str(out), "--size", "64", "--max-seconds", "0.6", *FAST)
    assert res.exit_code != 0 and "already an identity prepared from another clip" in res.output, res.output
    assert "may_short.mp4" in res.output and "--replace" in res.output
    assert json.loads((may_small / "meta.json").read_text()) == old  # untouched
    res = _cli(
        "data", "prepare", str(other), "--name", "may", "--out", str(out), "--size", "64", "--max-seconds", "0.6", "--replace", *FAST
    )
    assert res.exit_code == 0, res.output
    assert f"replacing the identity prepared from {old['source']} (sha256 {old['source_sha256']})" in res.output
    new = json.loads((may_small / "meta.json").read_text())
    assert new["source"].endswith("hdtf_aoc_8s.mp4") and new["content_sha256"] != old["content_sha256"]


def test_a_folder_that_is_not_an_identity_is_not_overwritten(shared_data, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(PrepareError, match="exists and is not a prepared identity"):
        prepare(shared_data / "clips" / "may_short.mp4", "mine", tmp_path, size=32, max_seconds=0.2, progress=False, log=_quiet)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------- file-system errors
def _read_only(monkeypatch, folder: Path) -> None:
    """Creating anything under ``folder`` fails as on a read-only file system (tests may run as
    root, for whom chmod does not stop writes)."""
    real = pathlib.Path.mkdir

    def mkdir(self, *a, **k):
        if str(self).startswith(str(folder)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)


def _disk_full_for(monkeypatch, module, name: str) -> None:
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, name, full)


def test_synth_into_a_read_only_folder(tmp_path, monkeypatch):
    _read_only(monkeypatch, tmp_path / "ro")
    res = _cli("data", "synth", "--out", str(tmp_path / "ro" / "synth"), "--identities", "1", "--seconds", "0.2", "--size", "16")
    assert res.exit_code != 0 and f"{tmp_path / 'ro' / 'synth'}: cannot be written (Read-only file system" in res.output


def test_synth_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    _disk_full_for(monkeypatch, np, "save")
    out = tmp_path / "synth"
    res = _cli("data", "synth", "--out", str(out), "--identities", "1", "--seconds", "0.2", "--size", "16")
    assert res.exit_code != 0 and f"{out}: cannot be written (No space left on device)" in res.output, res.output
    assert [p.name for p in out.iterdir()] == [".locks"]  # no synth_00, no staging folder


def test_synth_too_short_to_split(tmp_path):
    res = _cli("data", "synth", "--out", str(tmp_path / "s"), "--identities", "1", "--seconds", "0.01")
    assert res.exit_code != 0 and "an identity needs at least 2" in res.output, res.output


def test_prepare_into_a_read_only_folder(shared_data, tmp_path, monkeypatch):
    _read_only(monkeypatch, tmp_path / "ro")
    res = _cli(
        "data",
        "prepare",
        str(shared_data / "clips" / "may_short.mp4"),
        "--out",
        str(tmp_path / "ro"),
        "--size",
        "32",
        "--max-seconds",
        "0.2",
    )
    assert res.exit_code != 0 and f"{tmp_path / 'ro' / 'may'}: cannot be written (Read-only" in res.output, res.output


@pytest.mark.parametrize("where", ["numpy.save", "cv2.imwrite"])
def test_prepare_on_a_full_disk_leaves_nothing(shared_data, tmp_path, monkeypatch, where):
    """cv2.imwrite does not raise, it returns False: today the frames are silently missing."""
    import cv2

    if where == "numpy.save":
        _disk_full_for(monkeypatch, np, "save")
    else:
        monkeypatch.setattr(cv2, "imwrite", lambda *a, **k: False)
    res = _cli(
        "data",
        "prepare",
        str(shared_data / "clips" / "may_short.mp4"),
        "--out",
        str(tmp_path / "out"),
        "--size",
        "64",
        "--max-seconds",
        "0.2",
        *FAST,
    )
    assert res.exit_code != 0 and f"{tmp_path / 'out' / 'may'}: cannot be written (" in res.output, res.output
    assert ("No space left on device" if where == "numpy.save" else "the image could not be written") in res.output
    _no_leftovers(tmp_path / "out", "may")


def test_aebench_data_naming_a_file(tmp_path, monkeypatch):
    from aebench.paths import PathsError, data_dir

    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "afile"))
    with pytest.raises(PathsError, match=f"AEBENCH_DATA={tmp_path / 'afile'} is a file, not a folder"):
        data_dir()
    res = _cli("run", "protocol=smoke", "--runs", str(tmp_path / "runs"))
    assert res.exit_code != 0 and f"AEBENCH_DATA={tmp_path / 'afile'} is a file" in res.output, res.output
