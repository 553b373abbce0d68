"""LMD and the full sync path on real face frames from the shared clips (skipped without them)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from aebench.media import read_audio
from eval import evaluate, sync
from eval.weights import load_state_dict

pytestmark = pytest.mark.shared


def _blur(frames, sigma):
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def test_lmd_identity_blur_shift(face_frames):
    gt = face_frames[:6]
    same = evaluate(gt, gt, metrics=["lmd"], progress=False)
    assert same.summary["lmd"] == 0.0
    assert same.info["lmd"]["frames_without_face"] == 0 and same.info["lmd"]["resolution"] == [256, 256]
    vals = [evaluate(_blur(gt, s), gt, metrics=["lmd"], progress=False).summary["lmd"] for s in (1.0, 4.0)]
    assert 0 < vals[0] < vals[1]
    # mean-centring removes the translation itself; what remains is dlib's response to the new pixel grid
    assert evaluate(np.roll(gt, 3, axis=2), gt, metrics=["lmd"], progress=False).summary["lmd"] > 0


def test_lmd_counts_frames_without_face(face_frames):
    gt = face_frames[:4].copy()
    pred = gt.copy()
    pred[1] = 0  # no face in this prediction frame
    r = evaluate(pred, gt, metrics=["lmd"], progress=False)
    assert r.frames[1]["lmd"] is None and r.info["lmd"]["frames_without_face"] == 1
    assert r.summary["lmd"] == pytest.approx(np.mean([r.frames[i]["lmd"] for i in (0, 2, 3)]))


def test_sync_end_to_end_matches_the_pieces(face_frames, shared_data, syncnet_file):
    frames = face_frames[:16]
    audio = read_audio(shared_data / "clips" / "may_short.mp4")[: 16 * 640]
    r = evaluate(frames, audio=audio, weights={"syncnet": syncnet_file}, progress=False)
    assert set(r.summary) == {"sync_conf", "sync_dist"}  # cross-driven: sync only
    assert r.info["weights"]["syncnet"]["official"] is False
    from aebench.data.landmarks import LandmarkDetector

    crops = sync.crop_faces(frames, sync.fill_missing(sync.boxes_from_landmarks(LandmarkDetector().detect_many(frames))))
    offset, conf, dist = sync.sync_scores(crops, audio, sync.load_syncnet(load_state_dict(syncnet_file)))
    assert r.summary["sync_conf"] == pytest.approx(conf) and r.summary["sync_dist"] == pytest.approx(dist)
    assert r.info["sync"]["offset"] == offset and dist > 0
