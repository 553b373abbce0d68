"""SSIM, per frame, on RGB frames.

The value of ``skimage.metrics.structural_similarity(gt, pred, channel_axis=-1,
data_range=1.0)`` on float64 RGB in [0, 1], skimage's defaults otherwise (7x7 uniform
window, K1=0.01, K2=0.03, no Gaussian weighting, sample covariance). This is the
talking-head / NeRF evaluation idiom ``structural_similarity(gt_img, pred_img,
multichannel=True)`` on float [0, 1] images, written for current scikit-image:
``multichannel=True`` became ``channel_axis=-1`` and a float image needs an explicit
``data_range`` (old versions inferred 2 for float input: stated here so older numbers can be
reconciled). Per frame, then averaged. Beware: some NeRF code bases' ``SSIMMeter`` use
torchmetrics' 11x11 Gaussian SSIM instead, which gives different (usually higher) values;
ours is scikit-image's uniform 7x7.

Computed here without scikit-image's float64 filtering, about 4x faster, with the same value
(a test checks |ours - skimage| < 1e-6 on real and random frames; measured differences are
about 1e-14). skimage averages its SSIM map over the pixels at least 3 px from the border, so
only full 7x7 windows count and border handling never matters. For uint8 frames every
window sum is an integer below 2**24 (at most 49 * 255**2), so the five box sums (x, y,
x*x, y*y, x*y) are exact in float32; the SSIM formula is then evaluated in float64 on those
exact sums, scaled so that no intermediate rounds more than skimage's own arithmetic. Frames
are scored on a small thread pool (numpy and OpenCV release the GIL).
"""

from __future__ import annotations

import cv2
import numpy as np

from aebench.eval.registry import Context, Metric, Value, parallel_map

WIN = 7  # skimage's default win_size
K1, K2 = 0.01, 0.03


def _window_sums(a: np.ndarray) -> np.ndarray:
    """(H-6, W-6, C) float64 sums over every full 7x7 window of float32 ``a`` (exact for
    integer-valued ``a`` below 2**24 per sum)."""
    p = (WIN - 1) // 2
    s = cv2.boxFilter(a, -1, (WIN, WIN), normalize=False, borderType=cv2.BORDER_REFLECT)
    return s[p:-p, p:-p].astype(np.float64)


def ssim_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of two uint8 RGB (H, W, 3) frames, equal to skimage's (see the module docstring).

    With window sums a = sum x, b = sum y (x, y the uint8 values), N = 49, cov = N / (N - 1)
    and skimage's u = a / (255 N), v = cov (sum x^2 / N - u^2) / 255^2 ..., multiplying the
    numerator and denominator of skimage's S by (255 N)^4 gives
    S = (2ab + c1)(2 cov (N sxy - ab) + c2) / ((a^2 + b^2 + c1)(cov (N sxx - a^2 + N syy - b^2) + c2))
    with c1 = (K1 255 N)^2, c2 = (K2 255 N)^2."""
    x, y = gt.astype(np.float32), pred.astype(np.float32)
    a, b = _window_sums(x), _window_sums(y)
    sxx, syy, sxy = _window_sums(x * x), _window_sums(y * y), _window_sums(x * y)
    n = float(WIN * WIN)
    cov = n / (n - 1)
    c1, c2 = (K1 * 255.0 * n) ** 2, (K2 * 255.0 * n) ** 2
    ab = a * b
    num = 2.0 * ab + c1
    sxy *= n
    sxy -= ab
    sxy *= 2.0 * cov
    sxy += c2
    num *= sxy
    a *= a
    b *= b
    sxx *= n
    sxx -= a
    syy *= n
    syy -= b
    sxx += syy
    sxx *= cov
    sxx += c2
    a += b
    a += c1
    a *= sxx
    num /= a
    # skimage: mean over each channel's map, then over channels (equal sizes: the overall mean)
    return float(num.mean(dtype=np.float64))


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    h, w = ctx.hw
    if min(h, w) < WIN:  # skimage refuses these too (win_size exceeds image extent)
        return {"ssim": Value(missing=f"frames of {h}x{w} px are smaller than SSIM's {WIN}x{WIN} window")}
    vals = parallel_map(lambda pg: ssim_frame(*pg), ctx.pairs("ssim"))
    return {"ssim": Value(per_frame=np.array(vals, dtype=np.float64))}


METRICS = [
    Metric(
        "ssim",
        "higher",
        "SSIM",
        tolerance=0.03,
        compute=compute,
        family="paper",
        needs_gt=True,
        packages=("opencv-python", "opencv-contrib-python"),
        value_range=(-1.0, 1.0),
    )
]
