"""PSNR and SSIM, per frame, on RGB frames.

PSNR
    Per frame on RGB in [0, 1] (uint8 / 255): ``10 * log10(1 / MSE)`` with MSE over all
    pixels and channels (the definition of ``skimage.metrics.peak_signal_noise_ratio``
    with ``data_range=1`` and of the NeRF/AD-NeRF ``mse2psnr``); the summary is the mean
    of the per-frame values. Identical frames give ``inf`` (numpy float), which is kept and
    written as ``"inf"``; the mean is then ``inf`` too.

SSIM
    ``skimage.metrics.structural_similarity(gt, pred, channel_axis=-1, data_range=1.0)``
    on float64 RGB in [0, 1], skimage's defaults otherwise (7x7 uniform window, K1=0.01,
    K2=0.03, no Gaussian weighting, sample covariance). This is the talking-head / NeRF
    evaluation idiom ``structural_similarity(gt_img, pred_img, multichannel=True)`` on
    float [0, 1] images (e.g. the evaluation scripts found with the project's code
    search, where the images are ``np.float32(cv2.imread(...)) / 255``), written for
    current scikit-image: ``multichannel=True`` became ``channel_axis=-1`` and a float
    image needs an explicit ``data_range`` (old versions inferred 2 for float input:
    stated here so older numbers can be reconciled). Per frame, then averaged. Beware:
    some NeRF code bases' ``SSIMMeter`` use torchmetrics' 11x11 Gaussian SSIM instead,
    which gives different (usually higher) values; ours is scikit-image's uniform 7x7.
"""

from __future__ import annotations

import numpy as np


def psnr_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB frames on the [0, 1] scale; inf when identical."""
    d = pred.astype(np.float64) / 255.0 - gt.astype(np.float64) / 255.0
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(1.0 / mse))


def ssim_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of two uint8 RGB frames (see the module docstring for the settings)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(gt.astype(np.float64) / 255.0, pred.astype(np.float64) / 255.0,
                                       channel_axis=-1, data_range=1.0))
