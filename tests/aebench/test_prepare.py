"""Preparation of real clips (aebench data prepare/list/preview) on the shared clips."""

from __future__ import annotations


import numpy as np
import pytest
from click.testing import CliRunner

from aebench.config import ConfigError
from aebench.data.identity import LABELS, Identity
from aebench.data.prepare import PrepareError, prepare
from aebench.harness.cli.data_prepare import list_cmd, preview
from aebench.harness.cli.data_prepare import prepare as prepare_cmd

SIZE = 128
SECONDS = 4


@pytest.fixture(scope="module")
def may(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    path = prepare(shared_data / "clips" / "may_short.mp4", "may", out, size=SIZE, max_seconds=SECONDS, progress=False, log=lambda m: None)
    return Identity.open(path)


def test_layout_and_counts(may):
    assert may.n_frames == 25 * SECONDS and may.fps == 25 and may.size == (SIZE, SIZE)
    assert not may.path.with_name("may.partial").exists()
    meta = may.meta
    assert meta["frames_format"] == "jpg" and len(meta["source_sha256"]) == 64
    assert {"dlib", "av", "cv2", "numpy"} <= set(meta["versions"])
    assert 0 < may.near < may.far
    assert len(list((may.path / "frames").glob("*.jpg"))) == may.n_frames
    assert len(list((may.path / "masks").glob("*.png"))) == may.n_frames
    assert may.frame(0).shape == (SIZE, SIZE, 3) and may.background().shape == (SIZE, SIZE, 3)
    assert len(may.audio) == may.n_frames * 640  # 16 kHz / 25 fps
    assert may.features("mfcc").shape[0] == may.n_frames


def test_landmarks_on_face(may):
    lm = may.landmarks
    assert np.isfinite(lm).all() and (lm >= 0).all() and (lm < SIZE).all()
    eye_l, eye_r, nose, chin = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1), lm[:, 30], lm[:, 8]
    assert (eye_l[:, 0] < nose[:, 0]).all() and (nose[:, 0] < eye_r[:, 0]).all()
    assert (eye_l[:, 1] < nose[:, 1]).all() and (nose[:, 1] < chin[:, 1]).all()
    # the face (eye-to-eye distance) is a plausible fraction of this close-up clip
    assert 0.1 < np.median(eye_r[:, 0] - eye_l[:, 0]) / SIZE < 0.5


def test_masks_follow_landmarks(may):
    for i in (0, may.n_frames // 2, may.n_frames - 1):
        m, lm = may.mask(i), may.landmarks[i]
        audio = np.argwhere(m == LABELS["audio"])
        assert len(audio) > 0.01 * SIZE * SIZE
        eyes_y = lm[36:48, 1].max()
        assert audio[:, 0].min() > eyes_y  # rows of the audio region lie below the eyes
        mx, my = np.round(lm[62]).astype(int)  # inner upper lip is audio
        assert m[my, mx] == LABELS["audio"]
        ex, ey = np.round(lm[27]).astype(int)  # nose bridge is head
        assert m[ey, ex] == LABELS["head"]
        assert m[-1, int(lm[8, 0])] == LABELS["torso"] and m[0, 0] == LABELS["background"]
        # grabCut refinement: May's hair, 0.2 face widths beside the temples, is head
        fw = np.linalg.norm(lm[16] - lm[0])
        for x, y in ((lm[0, 0] - 0.2 * fw, lm[0, 1]), (lm[16, 0] + 0.2 * fw, lm[16, 1])):
            assert m[int(y), int(x)] == LABELS["head"]


def test_refinement_adds_hair(may):
    from aebench.data.regions import refine_person, region_mask

    img, lm = may.frame(0), may.landmarks[0]
    plain = region_mask(lm, SIZE)
    refined = refine_person(img, plain, lm)
    assert (refined > 0).sum() > 1.05 * (plain > 0).sum()
    assert (refined[plain == LABELS["audio"]] == LABELS["audio"]).all()  # the sure face is kept


def test_poses_finite_and_smooth(may):
    from scipy.spatial.transform import Rotation

    P = may.poses
    assert P.shape == (may.n_frames, 4, 4) and np.isfinite(P).all()
    R = Rotation.from_matrix(P[:, :3, :3])
    steps = np.degrees((R[1:] * R[:-1].inv()).magnitude())
    assert steps.max() < 3.0
    # camera looks at the head: the world origin is in front of it (positive depth)
    w2c = np.linalg.inv(P)
    assert (w2c[:, 2, 3] > 0).all()
    # the head origin projects inside the image
    f, cx, cy = may.intrinsics
    uv = w2c[:, :2, 3] / w2c[:, 2:3, 3] * f + np.array([cx, cy])
    assert ((uv > 0) & (uv < SIZE)).all()


def test_views(may):
    train, test = may.split("train"), may.split("test")
    assert train.n_frames + test.n_frames == may.n_frames
    clip = may.clip(1.0)
    assert clip.n_frames == 25 and len(clip.audio) == 25 * 640
    assert may.at_size(32).frame(0).shape == (32, 32, 3)


def test_idempotent_and_settings_change(may, shared_data):
    mtimes = {p: p.stat().st_mtime_ns for p in may.path.rglob("*")}
    msgs = []
    prepare(
        shared_data / "clips" / "may_short.mp4", "may", may.path.parent, size=SIZE, max_seconds=SECONDS, progress=False, log=msgs.append
    )
    assert any("up to date" in m for m in msgs)
    assert {p: p.stat().st_mtime_ns for p in may.path.rglob("*")} == mtimes


def test_french_30fps_resampled(shared_data, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        prepare_cmd,
        [
            str(shared_data / "clips" / "french_30fps.mp4"),
            "--name",
            "fr",
            "--out",
            str(tmp_path),
            "--size",
            "64",
            "--max-seconds",
            "2",
            "prepare.pose_sigma=1",
        ],
    )
    assert res.exit_code == 0, res.output
    ident = Identity.open(tmp_path / "fr")
    assert ident.n_frames == 50 and ident.fps == 25 and len(ident.audio) == 50 * 640
    assert ident.meta["settings"]["prepare"]["pose_sigma"] == 1
    again = runner.invoke(
        prepare_cmd,
        [
            str(shared_data / "clips" / "french_30fps.mp4"),
            "--name",
            "fr",
            "--out",
            str(tmp_path),
            "--size",
            "64",
            "--max-seconds",
            "2",
            "prepare.pose_sigma=2",
        ],
    )
    assert again.exit_code == 0 and "settings changed, preparing again" in again.output, again.output
    assert Identity.open(tmp_path / "fr").meta["settings"]["prepare"]["pose_sigma"] == 2
    res = runner.invoke(list_cmd, ["--root", str(tmp_path)])
    assert res.exit_code == 0 and "fr" in res.output and "french_30fps.mp4" in res.output
    res = runner.invoke(preview, ["fr", "--root", str(tmp_path), "--out", str(tmp_path / "p.png")])
    assert res.exit_code == 0 and (tmp_path / "p.png").stat().st_size > 0
    res = runner.invoke(preview, ["fr", "--root", str(tmp_path), "--out", str(tmp_path / "p.mp4")])
    assert res.exit_code == 0, res.output
    from aebench.media import probe

    info = probe(tmp_path / "p.mp4")
    assert info.has_audio and info.width == 64 and abs(info.fps - 25) < 1e-6


def test_resampling_picks_by_timestamp(tmp_path):
    """30 fps frames numbered by brightness come out at 25 fps as the frame shown at k/25 s."""
    from aebench.data.prepare import resampled_frames
    from aebench.media import write_video

    frames = [np.full((16, 16, 3), 8 * i, np.uint8) for i in range(30)]
    write_video(tmp_path / "ramp.mp4", frames, fps=30, crf=0)
    got = [int(round(f.mean() / 8)) for f in resampled_frames(tmp_path / "ramp.mp4", 25, None)]
    want = [int(np.floor(k / 25 * 30 + 1e-6)) for k in range(25)]
    assert got == want


def _no_leftovers(out, name):
    assert not (out / name).exists() and not (out / f"{name}.partial").exists()


def test_truncated_clip(shared_data, tmp_path):
    data = (shared_data / "clips" / "may_short.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(PrepareError, match="cut.mp4") as err:
        prepare(tmp_path / "cut.mp4", "cut", tmp_path / "out", size=32, progress=False, log=lambda m: None)
    print(err.value)
    _no_leftovers(tmp_path / "out", "cut")


def test_video_without_audio(tmp_path):
    from aebench.media import write_video

    write_video(tmp_path / "silent.mp4", [np.zeros((32, 32, 3), np.uint8)] * 10, fps=25)
    with pytest.raises(PrepareError, match="no audio stream") as err:
        prepare(tmp_path / "silent.mp4", "silent", tmp_path / "out", size=32, progress=False, log=lambda m: None)
    print(err.value)
    _no_leftovers(tmp_path / "out", "silent")


def test_video_without_face(tmp_path):
    from aebench.media import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(10)]
    audio = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    write_video(tmp_path / "noface.mp4", frames, fps=25, audio=audio)
    res = CliRunner().invoke(prepare_cmd, [str(tmp_path / "noface.mp4"), "--name", "nf", "--out", str(tmp_path / "out"), "--size", "64"])
    assert res.exit_code != 0 and "no face found in 10 of 10 frames" in res.output, res.output
    print(res.output)
    _no_leftovers(tmp_path / "out", "nf")


def test_unknown_setting(shared_data, tmp_path):
    with pytest.raises(ConfigError, match="nope") as err:
        prepare(
            shared_data / "clips" / "may_short.mp4", "x", tmp_path, size=32, max_seconds=1, overrides=["prepare.nope=1"], progress=False
        )
    print(err.value)
    _no_leftovers(tmp_path, "x")


def test_unknown_feature_fails_before_work(shared_data, tmp_path):
    with pytest.raises(PrepareError, match="unknown audio feature extractor 'nope'"):
        prepare(shared_data / "clips" / "may_short.mp4", "x", tmp_path, size=32, max_seconds=1, features=("mfcc", "nope"), progress=False)
    _no_leftovers(tmp_path, "x")


def test_one_command_prepares_a_folder_of_clips_and_skips_prepared_ones(shared_data, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("may_short.mp4", "hdtf_aoc_8s.mp4"):
        (clips / name).symlink_to(shared_data / "clips" / name)
    runner = CliRunner()
    args = [str(clips), "--out", str(tmp_path / "ids"), "--size", "64", "--max-seconds", "1", "prepare.refine=false"]
    res = runner.invoke(prepare_cmd, args)
    assert res.exit_code == 0, res.output
    found = sorted(p.name for p in (tmp_path / "ids").iterdir() if not p.name.startswith("."))  # .locks/ beside them
    assert found == ["hdtf_aoc", "may"]  # named after the files
    again = runner.invoke(prepare_cmd, args)
    assert again.exit_code == 0 and again.output.count("up to date") == 2, again.output
    bad = runner.invoke(prepare_cmd, [str(clips), "--name", "x", "--out", str(tmp_path / "ids")])
    assert bad.exit_code != 0 and "--name names one identity, but 2 clips were given" in bad.output
    missing = runner.invoke(prepare_cmd, [str(tmp_path / "nope.mp4")])
    assert missing.exit_code != 0 and "no such clip or folder" in missing.output


def test_close_crop_masks(shared_data):
    """HDTF's close crops: the dark backdrop at Katie's top-left corner (the colour of her
    hair, touching the top edge) is not taken into the head, and the bottom corners (hair on
    the shoulders, jacket) are torso, not background."""
    import av

    from aebench.data.landmarks import LandmarkDetector
    from aebench.data.prepare import _square
    from aebench.data.regions import refine_person, region_mask

    with av.open(str(shared_data / "clips" / "hdtf_katie_8s.mp4")) as box:
        img = _square(next(box.decode(video=0)).to_ndarray(format="rgb24"), SIZE)
    lm = LandmarkDetector(upsample=1).detect(img)
    m = refine_person(img, region_mask(lm, SIZE), lm)
    block = m[: int(0.15 * SIZE), int(0.14 * SIZE) : int(0.2 * SIZE)]  # backdrop left of the hair, at the top edge
    assert (block == LABELS["background"]).mean() > 0.9
    bottom = m[-SIZE // 20 :]
    assert (bottom[:, : SIZE // 10] == LABELS["torso"]).mean() > 0.5
    assert (bottom[:, -SIZE // 10 :] == LABELS["torso"]).mean() > 0.5


@pytest.mark.parametrize("name", ["../x", "/tmp/abs", "a/b", ".hidden", "x.partial", ".."])
def test_identity_names_stay_inside_out(tmp_path, name):
    """`data prepare --name ../x --out DIR` must not write outside DIR: refused before any work."""
    from aebench.media import write_video

    write_video(tmp_path / "c.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3, fps=25)
    res = CliRunner().invoke(prepare_cmd, [str(tmp_path / "c.mp4"), "--name", name, "--out", str(tmp_path / "out")])
    assert res.exit_code != 0 and "must be a plain folder name" in res.output, res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "out").exists()
