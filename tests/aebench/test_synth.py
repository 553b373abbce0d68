"""Synthetic corpus: format, determinism, ground truth consistency, phoneme-driven mouth, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.io import wavfile

from aebench.data import synth
from aebench.data.synth import look as synth_look, scene, voice
from aebench.data.features import AudioNorm
from aebench.data.identity import Identity, list_identities


@pytest.fixture(scope="module")
def idts(synth_root) -> list[Identity]:
    return [Identity.open(p) for p in list_identities(synth_root)]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_format_shapes_and_ranges(idts, synth_root):
    assert [i.name for i in idts] == ["synth_00", "synth_01"]
    assert not list(synth_root.glob("*.partial"))
    for idt in idts:
        m = idt.meta
        assert m["schema"] == 1 and m["source"] == "synthetic" and m["source_sha256"] is None
        assert m["fps"] == 25 and m["n_frames"] == 100 and m["size"] == [32, 32] and m["audio_rate"] == 16000
        assert m["settings"] == {"identities": 2, "seconds": 4.0, "size": 32, "seed": 0, "index": idts.index(idt)}
        assert 0 < m["near"] < scene.CAM_DIST < m["far"]
        frames, masks, lms, poses = idt.frames(), idt.masks(), idt.landmarks, idt.poses
        assert frames.shape == (100, 32, 32, 3) and frames.dtype == np.uint8 and frames.std() > 10
        assert masks.shape == (100, 32, 32) and set(np.unique(masks)) == {0, 1, 2, 3}
        assert lms.shape == (100, 68, 2) and (lms > 0).all() and (lms < 32).all()
        assert poses.shape == (100, 4, 4)
        R = poses[:, :3, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
        angles = np.degrees(np.arccos(np.clip(R[:, 2, 2], -1, 1)))
        assert 0 < angles.max() < 10  # moves, by a few degrees
        rate, wav = wavfile.read(idt.path / "audio.wav")
        assert rate == 16000 and wav.ndim == 1 and len(wav) == 100 * 640  # n_frames / 25 s
        assert idt.background().shape == (32, 32, 3)
    assert not np.array_equal(idts[0].frame(0), idts[1].frame(0))
    assert idts[0].meta["voice"] != idts[1].meta["voice"]


def test_poses_are_camera_to_world_opencv(idts):
    """The world origin (head centre) projects between the eyes and the chin landmarks."""
    for idt in idts:
        K, poses, lms = idt.K(), idt.poses, idt.landmarks
        for i in range(0, idt.n_frames, 17):
            cam = poses[i, :3, :3].T @ (np.zeros(3) - poses[i, :3, 3])
            assert cam[2] > 0  # in front of the camera (z forward)
            u, v = (K @ cam)[:2] / cam[2]
            assert lms[i, 0:17, 0].min() < u < lms[i, 0:17, 0].max()
            assert lms[i, 17:27, 1].max() < v < lms[i, 8, 1]  # below the brows, above the chin


def test_masks_agree_with_landmarks(idts):
    for idt in idts:
        masks, lms = idt.masks(), idt.landmarks
        mouth = np.round(lms[:, 60:68].mean(1)).astype(int)
        labels = masks[np.arange(len(masks)), mouth[:, 1], mouth[:, 0]]
        assert (labels == 2).mean() > 0.9
        eyes = np.round(lms[:, 36:48].mean(1)).astype(int)
        assert (masks[np.arange(len(masks)), eyes[:, 1], eyes[:, 0]] == 1).mean() > 0.9
        ys = np.nonzero(masks == 2)[1]
        assert ys.min() >= lms[:, 27, 1].min()  # the audio region is below the nose bridge


def test_mouth_follows_the_phonemes(idts):
    """Landmark opening is large in the middle of open vowels, ~0 in closures."""
    opened, closed, spread, rounded = [], [], [], []
    for idt in idts:
        lms = idt.landmarks
        gap = lms[:, 66, 1] - lms[:, 62, 1]
        width = lms[:, 64, 0] - lms[:, 60, 0]
        for name, t0, t1 in json.loads((idt.path / "phonemes.json").read_text()):
            i = int(round((t0 + t1) / 2 * 25))
            if i >= idt.n_frames:
                continue
            {"a": opened, "o": opened, "m": closed, "b": closed, "p": closed}.get(name, []).append(gap[i])
            {"i": spread, "e": spread, "u": rounded, "o": rounded}.get(name, []).append(width[i])
    assert len(opened) >= 3 and len(closed) >= 3 and len(spread) >= 3 and len(rounded) >= 3
    assert np.mean(opened) > 2 * np.mean(closed) + 0.3
    assert np.mean(spread) > np.mean(rounded)


def test_vowels_differ_in_formants_not_only_loudness():
    look = synth_look.draw_look(np.random.default_rng(0))
    seq = [("i", 0.0, 0.4), ("u", 0.4, 0.8)]
    audio = voice.synth_audio(np.random.default_rng(0), seq, 12800, look)

    def band_ratio(x):
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
        f = np.fft.rfftfreq(len(x), 1 / 16000)
        return spec[(f > 1900) & (f < 2700)].sum() / spec[(f > 600) & (f < 1000)].sum()

    i_seg, u_seg = audio[1600:4800], audio[8000:11200]
    assert band_ratio(i_seg) > 10 * band_ratio(u_seg)  # F2 high in /i/, low in /u/
    mouth = voice.mouth_track(seq, 20)
    assert mouth[5, 1] > mouth[15, 1] and mouth[15, 2] > mouth[5, 2]  # /i/ spread, /u/ round


def test_deterministic_and_seed_dependent(tmp_path):
    a = synth.make_identity(tmp_path / "a", 1, seconds=0.6, size=16, seed=3)
    b = synth.make_identity(tmp_path / "b", 1, seconds=0.6, size=16, seed=3)
    c = synth.make_identity(tmp_path / "c", 1, seconds=0.6, size=16, seed=4)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb
    assert fa["frames.npy"] != fc["frames.npy"] and fa["audio.wav"] != fc["audio.wav"]


def test_idempotent_and_rebuilt_on_new_settings(tmp_path):
    out = tmp_path / "corpus"
    (p,) = synth.make_corpus(out, identities=1, seconds=0.4, size=16, seed=0)
    stamp = (p / "frames.npy").stat().st_mtime_ns
    synth.make_corpus(out, identities=1, seconds=0.4, size=16, seed=0)
    assert (p / "frames.npy").stat().st_mtime_ns == stamp
    synth.make_corpus(out, identities=1, seconds=0.4, size=24, seed=0)
    assert Identity.open(p).size == (24, 24)
    with pytest.raises(ValueError, match="identities"):
        synth.make_corpus(out, identities=0)


def test_identity_views(idts):
    idt = idts[0]
    train, test = idt.split("train"), idt.split("test")
    assert train.n_frames == test.n_frames == 50
    clip = idt.clip(1.0)
    assert clip.n_frames == 25 and len(clip.audio) == 25 * 640
    small = clip.at_size(16)
    assert small.frame(0).shape == (16, 16, 3) and small.mask(0).shape == (16, 16)
    assert small.landmarks.max() < 16
    f = clip.features("mfcc")
    assert f.shape == (25, 16, 26) and np.isfinite(f).all()
    np.testing.assert_array_equal(test.features("mfcc"), idt.features("mfcc")[50:])


def test_cli_synth(tmp_path):
    from aebench.harness.cli.data_synth import synth as synth_cmd

    res = CliRunner().invoke(synth_cmd, ["--out", str(tmp_path), "--identities", "2", "--seconds", "0.4", "--size", "16", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "synth_00" in res.output and "synth_01" in res.output and "10 frames" in res.output
    assert [p.name for p in list_identities(tmp_path)] == ["synth_00", "synth_01"]
    bad = CliRunner().invoke(synth_cmd, ["--out", str(tmp_path), "--size", "4"])
    assert bad.exit_code != 0


def _ridge_r2(xtr, ytr, xte, yte, lam):
    mu, ym = xtr.mean(0), ytr.mean(0)
    w = np.linalg.solve((xtr - mu).T @ (xtr - mu) + lam * np.eye(xtr.shape[1]), (xtr - mu).T @ (ytr - ym))
    pred = (xte - mu) @ w + ym
    return 1 - ((pred - yte) ** 2).sum(0) / ((yte - yte.mean(0)) ** 2).sum(0)


def test_mouth_is_predictable_from_phonetics_not_from_loudness(tmp_path):
    """A linear probe on MFCC windows predicts the mouth of an unseen identity; loudness cannot."""
    paths = synth.make_corpus(tmp_path, identities=4, seconds=10.0, size=8, seed=1)
    feats, loud, mouth = [], [], []
    for p in paths:
        idt = Identity.open(p)
        raw = idt.features("mfcc")
        feats.append(AudioNorm.of(raw)(raw)[:, 4:12].reshape(idt.n_frames, -1))  # as the methods see them
        rms = np.sqrt((idt._audio[: idt.n_frames * 640].reshape(idt.n_frames, 640) ** 2).mean(1))
        loud.append(np.column_stack([np.log(rms + 1e-4), np.log(rms + 1e-4) ** 2]))
        mouth.append(np.load(p / "mouth.npy"))
    ytr, yte = np.concatenate(mouth[:3]), mouth[3]
    r2_mfcc = _ridge_r2(np.concatenate(feats[:3]), ytr, feats[3], yte, lam=10.0)
    r2_loud = _ridge_r2(np.concatenate(loud[:3]), ytr, loud[3], yte, lam=1e-3)
    assert r2_mfcc[0] > 0.6 and r2_mfcc[0] > r2_loud[0] + 0.2, (r2_mfcc, r2_loud)  # opening
    assert r2_mfcc[1] > r2_loud[1] + 0.2 and r2_mfcc[2] > r2_loud[2] + 0.2, (r2_mfcc, r2_loud)  # width, rounding


def test_scene_depth_lies_within_near_far():
    """Every ray hit (head, neck, torso) has a camera depth inside the recorded near/far bounds."""
    rng = np.random.default_rng(0)
    look, poses, dirs = synth_look.draw_look(rng), scene.camera_poses(rng, 60), scene._ray_dirs(32)
    depths = []
    for c2w in poses[::6]:
        t = np.minimum.reduce(scene.scene_hits(c2w, dirs, look))
        depths.append(t[np.isfinite(t)])  # dirs have z = 1, so t is the camera depth
    depths = np.concatenate(depths)
    assert scene.CAM_DIST - 1.5 < depths.min() and depths.max() < scene.CAM_DIST + 1.5


def _corpus_in_process(out: str) -> list[str]:
    return [p.name for p in synth.make_corpus(Path(out), identities=3, seconds=0.4, size=16, seed=0)]


def test_two_first_runs_at_once_make_one_corpus(tmp_path):
    """Two processes making the same corpus at once (two first `aebench run`s): both succeed, one
    renders each identity (a lock per identity), and no staging folder is ever listed as data."""
    import multiprocessing

    from aebench.data.identity import list_identities

    out = tmp_path / "corpus"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_corpus_in_process, [str(out)] * 2)
    assert results == [["synth_00", "synth_01", "synth_02"]] * 2
    assert [p.name for p in list_identities(out)] == ["synth_00", "synth_01", "synth_02"]
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


def test_a_left_over_staging_folder_is_never_an_identity(tmp_path):
    """A folder a killed run left half-renamed (with its meta.json) is not listed as a fourth identity."""
    from aebench.data.identity import list_identities

    (p,) = synth.make_corpus(tmp_path, identities=1, seconds=0.4, size=16, seed=0)
    for leftover in ("synth_00.partial", ".synth_00.1234.partial"):
        shutil.copytree(p, tmp_path / leftover)
    assert [q.name for q in list_identities(tmp_path)] == ["synth_00"]
