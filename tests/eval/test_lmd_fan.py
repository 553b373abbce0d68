"""``lmd``: the community's LMD (face-alignment FAN + S3FD), weights from the store.

Parity: our metric against the reference recipe run through face-alignment's *own*
``FaceAlignment`` API, loading its weights the way the package does (torch-hub cache), with
the same random weights, on real face frames; the random S3FD is biased so that it really
fires (a test in which both sides find no face would prove nothing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aebench.eval import evaluate

S3FD_FILE = "s3fd-619a316812.pth"
FAN_FILE = "2DFAN4-11f355bf06.pth.tar"


@pytest.fixture(scope="module")
def random_fan_weights(tmp_path_factory):
    """Random S3FD and FAN-4 state dicts under a torch-hub cache layout; S3FD fires on its
    coarsest level only (one large box per image), so each frame has exactly one 'face'."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    torch.manual_seed(0)
    det = s3fd().state_dict()
    for name in [k for k in det if "mbox_conf" in k]:
        det[name].zero_()
        if name.endswith("bias"):
            det[name][:-1] = 10.0  # background
            if name.startswith("conv7_2"):
                det[name][:-1], det[name][-1] = 0.0, 10.0  # face, on the stride-128 level only
    for name in [k for k in det if "mbox_loc" in k]:
        det[name].zero_()
    fan = FAN(4).state_dict()
    hub = tmp_path_factory.mktemp("torch_home")
    ckpt = hub / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(det, ckpt / S3FD_FILE)
    torch.save(fan, ckpt / FAN_FILE)
    return hub, ckpt / S3FD_FILE, ckpt / FAN_FILE


def _reference_lmd(frames_pred, frames_gt, torch_home, monkeypatch):
    """RAD-NeRF ``LMDMeter(backend='fan')`` (nerf/utils.py 475-566): its predictor and update maths,
    with face-alignment loading its weights itself (from the torch-hub cache, no download)."""
    import face_alignment

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    predictor = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, flip_input=False, device="cpu", compile=False)
    dists = []
    for pred, truth in zip(frames_pred, frames_gt):
        lms_pred = predictor.get_landmarks(pred)[-1].astype(np.float32)[48:68]
        lms_truth = predictor.get_landmarks(truth)[-1].astype(np.float32)[48:68]
        lms_pred = lms_pred - lms_pred.mean(0)
        lms_truth = lms_truth - lms_truth.mean(0)
        dists.append(np.sqrt(((lms_pred - lms_truth) ** 2).sum(1)).mean(0))
    return float(np.mean(dists)), dists


def test_lmd_matches_face_alignments_own_pipeline(face_frames, random_fan_weights, monkeypatch):
    import cv2

    torch_home, s3fd_path, fan_path = random_fan_weights
    gt = face_frames[:3]
    pred = np.stack([cv2.GaussianBlur(f, (7, 7), 2.0) for f in gt])
    r = evaluate(
        pred, gt, metrics=["lmd"], progress=False, weights={"face_alignment_s3fd": str(s3fd_path), "face_alignment_2dfan4": str(fan_path)}
    )
    assert r.info["lmd"]["face_coverage"] == 1.0  # the detector fired on every frame, both sides
    assert r.info["weights"]["face_alignment_2dfan4"]["official"] is False  # random weights are never "official"
    ref, per_frame = _reference_lmd(pred, gt, torch_home, monkeypatch)
    assert r.summary["lmd"] == pytest.approx(ref, rel=1e-5, abs=1e-5)
    assert [f["lmd"] for f in r.frames] == pytest.approx(per_frame, rel=1e-5, abs=1e-5)
    assert r.summary["lmd"] > 0  # blur moved the (random-network) landmarks: not a trivial 0 = 0


def test_lmd_is_missing_without_its_weights_and_says_how_to_fix(face_frames):
    with pytest.warns(UserWarning, match="METRIC MISSING: lmd"):
        r = evaluate(face_frames[:2], face_frames[:2], metrics=["lmd", "psnr"], progress=False)
    assert r.summary["lmd"] is None and r.summary["psnr"] == 60.0
    assert "aebench weights add face_alignment_s3fd" in r.missing["lmd"]
