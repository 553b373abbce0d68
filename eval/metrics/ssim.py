"""SSIM, per frame, on RGB frames.

``skimage.metrics.structural_similarity(gt, pred, channel_axis=-1, data_range=1.0)`` on
float64 RGB in [0, 1], skimage's defaults otherwise (7x7 uniform window, K1=0.01, K2=0.03,
no Gaussian weighting, sample covariance). This is the talking-head / NeRF evaluation idiom
``structural_similarity(gt_img, pred_img, multichannel=True)`` on float [0, 1] images,
written for current scikit-image: ``multichannel=True`` became ``channel_axis=-1`` and a
float image needs an explicit ``data_range`` (old versions inferred 2 for float input:
stated here so older numbers can be reconciled). Per frame, then averaged. Beware: some
NeRF code bases' ``SSIMMeter`` use torchmetrics' 11x11 Gaussian SSIM instead, which gives
different (usually higher) values; ours is scikit-image's uniform 7x7.
"""

from __future__ import annotations

import numpy as np

from eval.registry import Context, Metric, Value


def ssim_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of two uint8 RGB frames (see the module docstring for the settings)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(gt.astype(np.float64) / 255.0, pred.astype(np.float64) / 255.0,
                                       channel_axis=-1, data_range=1.0))


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    vals = [ssim_frame(p, g) for p, g in ctx.pairs("ssim")]
    return {"ssim": Value(per_frame=np.array(vals, dtype=np.float64))}


METRICS = [Metric("ssim", "higher", "SSIM", tolerance=0.03, compute=compute, needs_gt=True)]
