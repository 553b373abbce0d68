"""PSNR and SSIM: against scikit-image directly, identity and degradation sanity."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aebench.eval import evaluate
from aebench.eval.metrics.psnr import PSNR_MAX


def _frames(seed=0, n=3, size=64):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in small])


def test_ssim_and_psnr_match_skimage():
    gt = _frames(0)
    pred = np.stack([cv2.GaussianBlur(f, (5, 5), 1.2) for f in gt])
    r = evaluate(pred, gt, metrics=["psnr", "ssim"], progress=False)
    for row, p, g in zip(r.frames, pred, gt):
        gf, pf = g / 255.0, p / 255.0
        assert row["ssim"] == pytest.approx(structural_similarity(gf, pf, channel_axis=-1, data_range=1.0), abs=1e-12)
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(gf, pf, data_range=1.0), abs=1e-9)
    assert r.summary["psnr"] == pytest.approx(np.mean([f["psnr"] for f in r.frames]))


def test_identical_clip_scores_the_cap_not_infinity():
    gt = _frames(1)
    r = evaluate(gt, gt.copy(), metrics=["psnr", "ssim"], progress=False)
    assert r.summary["psnr"] == PSNR_MAX == 60.0
    assert r.info["psnr"]["capped_frames"] == len(gt)
    assert r.summary["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert r.to_json()["summary"]["psnr"] == 60.0


def test_one_copied_frame_cannot_make_psnr_infinite():
    """The trial's case: 49 frames of noise and one exact copy of a ground-truth frame scored inf."""
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, gt.shape, dtype=np.uint8)
    pred[0] = gt[0]
    r = evaluate(pred, gt, metrics=["psnr"], progress=False)
    noise = [peak_signal_noise_ratio(g / 255.0, p / 255.0, data_range=1.0) for p, g in zip(pred[1:], gt[1:])]
    assert math.isfinite(r.summary["psnr"])
    assert r.summary["psnr"] == pytest.approx((sum(noise) + PSNR_MAX) / 50)
    assert r.frames[0]["psnr"] == PSNR_MAX and r.info["psnr"]["capped_frames"] == 1


def test_psnr_below_the_cap_is_untouched():
    """The cap binds only where MSE <= 1e-6: one value off by one grey level in a 2x2 frame is 58.9 dB."""
    gt = np.zeros((1, 2, 2, 3), np.uint8)
    pred = gt.copy()
    pred[0, 0, 0, 0] = 1
    r = evaluate(pred, gt, metrics=["psnr"], progress=False)
    assert r.summary["psnr"] == pytest.approx(peak_signal_noise_ratio(gt[0] / 255.0, pred[0] / 255.0, data_range=1.0))
    assert r.summary["psnr"] < PSNR_MAX and r.info["psnr"]["capped_frames"] == 0


@pytest.mark.parametrize("name,sign", [("psnr", 1), ("ssim", 1)])
def test_blur_and_shift_make_it_worse(name, sign):
    gt = _frames(2)
    vals = []
    for s in (0.8, 2.0, 4.0):
        pred = np.stack([cv2.GaussianBlur(f, (0, 0), s) for f in gt])
        vals.append(evaluate(pred, gt, metrics=[name], progress=False).summary[name])
    assert vals[0] > vals[1] > vals[2]  # more blur, worse
    shifted = evaluate(np.roll(gt, 2, axis=2), gt, metrics=[name], progress=False).summary[name]
    perfect = evaluate(gt, gt, metrics=[name], progress=False).summary[name]
    assert shifted < perfect


@pytest.mark.parametrize("case", ["noise", "flat", "extremes", "odd_shape", "smallest", "real"])
def test_fast_ssim_equals_skimage(case, request):
    """aebench.eval.metrics.ssim computes skimage's SSIM another way (exact integer window sums): the
    values must agree within 1e-6 on every kind of frame, including flat regions (where the
    constants dominate), 0/255 extremes, odd sizes and the 7x7 minimum."""
    from aebench.eval.metrics.ssim import ssim_frame

    rng = np.random.default_rng(3)
    if case == "real":
        from aebench.media import read_video

        frames, _ = read_video(request.getfixturevalue("shared_data") / "clips" / "may_short.mp4", max_frames=4)
        pairs = [(cv2.GaussianBlur(frames[3], (0, 0), 1.5), frames[0]), (frames[1], frames[2])]
    else:
        shape = {"odd_shape": (37, 53, 3), "smallest": (7, 7, 3)}.get(case, (64, 64, 3))
        if case == "flat":
            g = np.full(shape, 128, np.uint8)
            pairs = [(g, g), (np.full(shape, 130, np.uint8), g), (g + rng.integers(0, 2, shape, dtype=np.uint8), g)]
        elif case == "extremes":
            g = (rng.random(shape) > 0.5).astype(np.uint8) * 255
            pairs = [(255 - g, g), (g, g)]
        else:
            pairs = [(rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8))]
    for p, g in pairs:
        want = structural_similarity(g / 255.0, p / 255.0, channel_axis=-1, data_range=1.0)
        assert abs(ssim_frame(p, g) - want) < 1e-6, (case, ssim_frame(p, g), want)


def test_parallel_map_keeps_order_and_bounds_what_it_holds():
    from aebench.eval.registry import parallel_map

    held, peak = [0], [0]

    def items():
        for i in range(50):
            held[0] += 1
            peak[0] = max(peak[0], held[0])
            yield i

    def work(i):
        held[0] -= 1
        return i * i

    assert parallel_map(work, items(), workers=2, ahead=2) == [i * i for i in range(50)]
    assert peak[0] <= 2 * 2 + 2


def test_ssim_on_frames_smaller_than_its_window_is_missing_with_the_reason():
    import warnings

    from aebench.eval import evaluate

    f = np.random.default_rng(0).integers(0, 255, (3, 5, 5, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = evaluate(f, gt=f, metrics=["ssim", "psnr"], progress=False)
    assert r.summary["ssim"] is None and "smaller than SSIM's 7x7 window" in r.missing["ssim"]
    assert r.summary["psnr"] == PSNR_MAX
