"""PSNR, per frame, on RGB frames, capped at 60 dB.

Per frame on RGB in [0, 1] (uint8 / 255): ``10 * log10(1 / MSE)`` with MSE over all pixels
and channels (the definition of ``skimage.metrics.peak_signal_noise_ratio`` with
``data_range=1`` and of the NeRF/AD-NeRF ``mse2psnr``), capped at :data:`PSNR_MAX` = 60 dB;
the summary is the mean of the per-frame values. At the ground truth's resolution (see
:mod:`aebench.eval.frames`).

Why the cap: identical frames have MSE 0 and an infinite PSNR, and one such frame makes the
mean infinite (49 frames of noise plus one exact copy of a ground-truth frame would score
``inf``). The cap is the video-quality community's convention for 8-bit video: Netflix's
libvmaf caps PSNR at 60 dB for 8-bit input (``feature/src/psnr_tools.c``, ``psnr_constants``:
"max psnr 60.0 for 8-bit"), i.e. MSE is floored at 1e-6 on the [0, 1] scale, about a
quarter of the quantisation noise of an 8-bit signal ((1/255)^2 / 12 = 1.3e-6). A NeRF render
scores 20 to 40 dB, so the cap binds only on (near-)exact copies; how many frames it bound is
recorded in ``info["psnr"]["capped_frames"]``.
"""

from __future__ import annotations

import numpy as np

from aebench.eval.registry import Context, Metric, Value

#: the largest PSNR a frame can score, dB (libvmaf's 8-bit cap)
PSNR_MAX = 60.0


def psnr_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB frames on the [0, 1] scale, at most :data:`PSNR_MAX`."""
    d = pred.astype(np.float64) / 255.0 - gt.astype(np.float64) / 255.0
    mse = float(np.mean(d * d))
    return PSNR_MAX if mse <= 10.0 ** (-PSNR_MAX / 10.0) else float(10.0 * np.log10(1.0 / mse))


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    vals = np.array([psnr_frame(p, g) for p, g in ctx.pairs("psnr")], dtype=np.float64)
    ctx.info["psnr"] = {"cap_db": PSNR_MAX, "capped_frames": int((vals >= PSNR_MAX).sum())}
    return {"psnr": Value(per_frame=vals)}


METRICS = [Metric("psnr", "higher", "PSNR", tolerance=1.0, compute=compute, family="paper", needs_gt=True, value_range=(0.0, PSNR_MAX))]
