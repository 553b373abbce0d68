"""LMD and the full sync path on real face frames from the shared clips (skipped without them)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from aebench.media import read_audio
from aebench.eval import evaluate
from aebench.eval.metrics import sync
from aebench.weights import load_state_dict

pytestmark = pytest.mark.shared


def _blur(frames, sigma):
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def test_lmd_identity_blur_shift(face_frames):
    gt = face_frames[:6]
    same = evaluate(gt, gt, metrics=["lmd_dlib"], progress=False)
    assert same.summary["lmd_dlib"] == 0.0
    assert same.info["lmd_dlib"]["frames_without_face"] == 0 and same.info["lmd_dlib"]["resolution"] == [256, 256]
    vals = [evaluate(_blur(gt, s), gt, metrics=["lmd_dlib"], progress=False).summary["lmd_dlib"] for s in (1.0, 4.0)]
    assert 0 < vals[0] < vals[1]
    # mean-centring removes the translation itself; what remains is dlib's response to the new pixel grid
    assert evaluate(np.roll(gt, 3, axis=2), gt, metrics=["lmd_dlib"], progress=False).summary["lmd_dlib"] > 0


def test_lmd_counts_frames_without_face_and_needs_90_percent(face_frames):
    gt = face_frames[:10].copy()
    pred = gt.copy()
    pred[1] = 0  # no face in this prediction frame: 9 of 10 frames (90%) still count
    r = evaluate(pred, gt, metrics=["lmd_dlib"], progress=False)
    assert r.frames[1]["lmd_dlib"] is None and r.info["lmd_dlib"]["frames_without_face"] == 1
    assert r.info["lmd_dlib"]["face_coverage"] == pytest.approx(0.9)
    assert r.summary["lmd_dlib"] == pytest.approx(np.mean([r.frames[i]["lmd_dlib"] for i in range(10) if i != 1]))
    pred[2] = 0  # 80%: a mean over the lucky frames is not the clip's LMD -> missing, with the coverage
    with pytest.warns(UserWarning, match="METRIC MISSING: lmd_dlib"):
        r = evaluate(pred, gt, metrics=["lmd_dlib"], progress=False)
    assert r.summary["lmd_dlib"] is None and "8/10 frames (80%; needs 90%)" in r.missing["lmd_dlib"]


def test_sync_end_to_end_matches_the_pieces(face_frames, shared_data, syncnet_file):
    frames = face_frames[:16]
    audio = read_audio(shared_data / "clips" / "may_short.mp4")[: 16 * 640]
    r = evaluate(frames, audio=audio, weights={"syncnet": syncnet_file}, progress=False)
    # cross-driven: only what needs no ground truth (sync, and THEval's raw values)
    assert set(r.summary) == {"sync_conf", "sync_dist", "lip_sync_dlib", "silent_lip_dlib", "lip_dyn_dlib", "brow_dyn_dlib"}
    assert r.info["weights"]["syncnet"]["official"] is False
    from aebench.data.landmarks import LandmarkDetector

    crops = sync.crop_faces(frames, sync.fill_missing(sync.boxes_from_landmarks(LandmarkDetector().detect_many(frames))))
    offset, conf, dist = sync.sync_scores(crops, audio, sync.load_syncnet(load_state_dict(syncnet_file)))
    assert r.summary["sync_conf"] == pytest.approx(conf) and r.summary["sync_dist"] == pytest.approx(dist)
    assert r.info["sync"]["offset"] == offset and dist > 0
