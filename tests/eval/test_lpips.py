"""LPIPS: parity with lpips.LPIPS loading its AlexNet through torchvision (random weights)."""

from __future__ import annotations

import cv2
import lpips
import numpy as np
import pytest
import torch

from aebench.eval import evaluate


def _frames(seed=0, n=3, size=64):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in small])


@pytest.fixture(scope="module")
def reference(alexnet_state):
    """The reference package's own path: lpips.LPIPS(net='alex') whose backbone comes from
    torchvision.models.alexnet(pretrained=True), here patched to return the random weights."""
    import torchvision

    tv_model = torchvision.models.alexnet()
    tv_model.load_state_dict(alexnet_state)
    orig = lpips.pretrained_networks.tv.alexnet
    lpips.pretrained_networks.tv.alexnet = lambda *a, **k: tv_model
    try:
        model = lpips.LPIPS(net="alex", verbose=False)
    finally:
        lpips.pretrained_networks.tv.alexnet = orig
    return model.eval()


def test_parity_with_lpips_package(reference, alexnet_file):
    gt = _frames(0)
    pred = cv2.GaussianBlur(gt[0], (5, 5), 2)[None].repeat(3, 0)
    r = evaluate(pred, gt, metrics=["lpips"], weights={"lpips_alexnet": alexnet_file}, progress=False)
    with torch.no_grad():
        ref = [float(reference(lpips.im2tensor(p), lpips.im2tensor(g))) for p, g in zip(pred, gt)]
    got = [row["lpips"] for row in r.frames]
    assert np.allclose(got, ref, rtol=0, atol=1e-5)
    assert r.summary["lpips"] == pytest.approx(np.mean(ref), abs=1e-5)
    assert min(ref) > 0


def test_identical_zero_and_blur_monotone(alexnet_file):
    gt = _frames(1)
    w = {"lpips_alexnet": alexnet_file}
    same = evaluate(gt, gt, metrics=["lpips"], weights=w, progress=False).summary["lpips"]
    assert same == pytest.approx(0.0, abs=1e-7)
    vals = [
        evaluate(np.stack([cv2.GaussianBlur(f, (0, 0), s) for f in gt]), gt, metrics=["lpips"], weights=w, progress=False).summary["lpips"]
        for s in (1.0, 3.0)
    ]
    shifted = evaluate(np.roll(gt, 3, axis=2), gt, metrics=["lpips"], weights=w, progress=False).summary["lpips"]
    assert 0 < vals[0] < vals[1]
    assert shifted > 0


def test_lpips_missing_without_weights():
    gt = _frames(2)
    with pytest.warns(UserWarning, match="METRIC MISSING: lpips"):
        r = evaluate(gt, gt, metrics=["psnr", "lpips"], progress=False)
    assert r.summary["lpips"] is None
    assert "aebench weights add lpips_alexnet" in r.missing["lpips"]
    assert "lpips" not in r.frames[0]
