"""PSNR, per frame, on RGB frames.

Per frame on RGB in [0, 1] (uint8 / 255): ``10 * log10(1 / MSE)`` with MSE over all pixels
and channels (the definition of ``skimage.metrics.peak_signal_noise_ratio`` with
``data_range=1`` and of the NeRF/AD-NeRF ``mse2psnr``); the summary is the mean of the
per-frame values. Identical frames give ``inf`` (numpy float), which is kept and written as
``"inf"``; the mean is then ``inf`` too. At the ground truth's resolution (see
:mod:`aebench.eval.frames`).
"""

from __future__ import annotations

import numpy as np

from aebench.eval.registry import Context, Metric, Value


def psnr_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB frames on the [0, 1] scale; inf when identical."""
    d = pred.astype(np.float64) / 255.0 - gt.astype(np.float64) / 255.0
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(1.0 / mse))


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    vals = [psnr_frame(p, g) for p, g in ctx.pairs("psnr")]
    return {"psnr": Value(per_frame=np.array(vals, dtype=np.float64))}


METRICS = [Metric("psnr", "higher", "PSNR", tolerance=1.0, compute=compute, family="paper", needs_gt=True)]
