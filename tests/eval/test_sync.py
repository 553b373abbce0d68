"""SyncNet LSE-C/LSE-D: parity with syncnet_python's own SyncNetInstance.evaluate on the
same crops and audio (random weights), and the landmark crop path."""

from __future__ import annotations

import shutil
import types

import cv2
import numpy as np
import pytest
import torch
from scipy.io import wavfile

from aebench.eval import evaluate
from aebench.eval.metrics import sync
from aebench.weights import load_state_dict


def _inputs(n_frames=14, seed=0):
    """Smooth random 224x224 crops (so the net sees structure) and speech-like int16 audio."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(
        rng.integers(0, 256, (n_frames, 14, 14, 3), dtype=np.uint8).reshape(n_frames * 14, 14, 3),
        (224, n_frames * 224),
        interpolation=cv2.INTER_LINEAR,
    )
    crops = np.ascontiguousarray(base.reshape(n_frames, 224, 224, 3))
    t = np.arange(n_frames * 640) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t))
    audio16 = np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)
    return crops, audio16


def _reference(crops_rgb, audio16, model, tmp_path, batch_size=20):
    """syncnet_python's SyncNetInstance.evaluate on files, as run_syncnet.py feeds it:
    frames as images read with cv2.imread (BGR), audio as a 16 kHz int16 wav."""
    from syncnet_python import SyncNetInstance

    d = tmp_path / "ref"
    d.mkdir()
    for i, img in enumerate(crops_rgb):
        # PNG bytes under the .jpg name the reference globs for: lossless, cv2.imread reads by content
        ok, buf = cv2.imencode(".png", img[:, :, ::-1])
        (d / f"{i + 1:06d}.jpg").write_bytes(buf.tobytes())
    wavfile.write(d / "audio.wav", 16000, audio16)
    inst = SyncNetInstance(model, device="cpu")
    opt = types.SimpleNamespace(tmp_dir=str(d), batch_size=batch_size, vshift=15)
    with torch.no_grad():
        return inst.evaluate(opt)


@pytest.fixture(scope="module")
def model(syncnet_file):
    return sync.load_syncnet(load_state_dict(syncnet_file))


@pytest.mark.parametrize("n_frames,batch", [(14, 20), (11, 3)])
def test_parity_with_syncnet_python(model, tmp_path, n_frames, batch):
    crops, audio16 = _inputs(n_frames)
    ref_offset, ref_conf, ref_dist = _reference(crops, audio16, model, tmp_path, batch_size=batch)
    offset, conf, dist = sync.sync_scores(crops, audio16.astype(np.float32) / 32768.0, model)
    assert offset == ref_offset
    assert conf == pytest.approx(ref_conf, rel=1e-4)
    assert dist == pytest.approx(ref_dist, rel=1e-4)
    assert dist > 0


def test_audio_longer_than_video_is_cut_like_the_reference(model, tmp_path):
    crops, audio16 = _inputs(12, seed=3)
    audio16 = np.concatenate([audio16, audio16[:3000]])
    ref = _reference(crops, audio16, model, tmp_path)
    got = sync.sync_scores(crops, audio16, model)
    assert got[0] == ref[0]
    assert got[1] == pytest.approx(ref[1], rel=1e-4) and got[2] == pytest.approx(ref[2], rel=1e-4)


def test_float_audio_round_trips_to_int16():
    a = np.array([-32768, -1, 0, 1, 32767], np.int16)
    assert np.array_equal(sync.to_int16(a.astype(np.float32) / 32768.0), a)
    assert sync.mfcc(np.zeros(1600, np.float32)).shape == (13, 9)  # 100 Hz, 13 coefficients


def test_too_short_is_refused(model):
    crops, audio16 = _inputs(5)
    with pytest.raises(ValueError, match="too short"):
        sync.sync_scores(crops, audio16, model)


def test_crop_follows_reference_geometry():
    # a constant box: bs = 20, centre (100, 80); rows cy-bs..cy+1.8bs, cols cx-1.4bs..cx+1.4bs
    frames = np.zeros((3, 200, 200, 3), np.uint8)
    frames[:, 60:80, 99:102] = 255  # a vertical white line at x=99..101 from the crop top to the centre
    boxes = np.tile([[80, 60, 120, 100]], (3, 1)).astype(float)
    crops = sync.crop_faces(frames, boxes)
    assert crops.shape == (3, 224, 224, 3)
    col = crops[0, :, 112, 0]  # the horizontal middle of the crop
    assert col[:70].mean() > 200 and col[90:].max() < 30  # white from the top to ~ 20/56 of the height
    # out-of-frame parts are padded with grey 110, as in the reference
    edge = sync.crop_faces(np.zeros((1, 50, 50, 3), np.uint8), np.array([[0, 0, 40, 40.0]]))
    assert edge[0, 0, 0, 0] == 110


def test_boxes_and_missing_faces():
    lm = np.zeros((3, 68, 2), np.float32)
    lm[:, :17, 0] = np.linspace(10, 50, 17)
    lm[:, :, 1] = 40
    lm[:, 8, 1] = 90  # chin
    lm[:, 17:27, 1] = 30  # brows
    lm[1] = np.nan
    b = sync.fill_missing(sync.boxes_from_landmarks(lm))
    assert np.allclose(b[1], b[0])
    assert np.allclose(b[0], [10, 30 - 0.25 * 60, 50, 90])
    with pytest.raises(ValueError):
        sync.fill_missing(np.full((2, 4), np.nan))


def test_resample_to_25fps():
    f = np.arange(30)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    out = sync.resample_to_25fps(f, 30.0)
    assert len(out) == 25 and out[0, 0, 0, 0] == 0 and out[-1, 0, 0, 0] == 29
    assert sync.resample_to_25fps(f, 25.0) is f


# ----------------------------------------------------------------------------- the S3FD pipeline
@pytest.fixture(scope="module")
def firing_s3fd_file(tmp_path_factory):
    """Random weights of syncnet-python's S3FDNet, biased so that it fires: one confident face on
    its coarsest level in every frame (a test in which no face is found would prove nothing)."""
    from syncnet_python.detectors.s3fd.nets import S3FDNet

    torch.manual_seed(0)
    net = S3FDNet(device="cpu")
    with torch.no_grad():
        for i, conv in enumerate(net.conf):
            conv.weight.zero_()
            conv.bias.fill_(10.0)  # background ...
            conv.bias[-1] = 10.0 if i < len(net.conf) - 1 else 20.0  # ... except a face on the last level
        for conv in net.loc:
            conv.weight.zero_()
            conv.bias.zero_()
    path = tmp_path_factory.mktemp("s3fd") / "random_sfd_face.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="syncnet-python's pipeline needs the ffmpeg program")
def test_sync_runs_the_packages_own_pipeline_when_s3fd_is_in_the_store(shared_data, syncnet_file, firing_s3fd_file, tmp_path):
    import cv2
    from scipy.io import wavfile

    from aebench.media import read_audio, read_video, write_video
    from aebench.eval.metrics.sync import run_pipeline

    frames, _ = read_video(shared_data / "clips" / "may_short.mp4", max_frames=60)
    frames = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames])
    audio = read_audio(shared_data / "clips" / "may_short.mp4")[: 60 * 640]
    video = write_video(tmp_path / "clip.mp4", frames, fps=25, audio=audio)
    weights = {"syncnet": str(syncnet_file), "syncnet_s3fd": str(firing_s3fd_file)}
    r = evaluate(str(video), audio=audio, weights=weights, progress=False)
    assert r.info["sync"]["crop"] == "s3fd" and r.info["sync"]["tracks"] >= 1  # the detector fired and tracked
    wav = tmp_path / "ref.wav"
    wavfile.write(wav, 16000, sync.to_int16(audio))
    offsets, confs, dists, conf, dist, _, has_face = run_pipeline(str(video), str(wav), firing_s3fd_file, syncnet_file, tmp_path / "ref")
    assert has_face and offsets
    assert r.summary["sync_conf"] == conf and r.summary["sync_dist"] == dist
    assert r.info["sync"]["offsets"] == offsets and r.info["sync"]["offset"] == offsets[int(np.argmax(confs))]
    # frames given as an array go through lossless PNGs: the same numbers
    same = evaluate(frames, audio=audio, weights=weights, progress=False, fps=25)
    assert same.summary["sync_conf"] == pytest.approx(conf, abs=0.05) and same.info["sync"]["crop"] == "s3fd"
