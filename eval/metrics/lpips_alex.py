"""LPIPS (Zhang et al. 2018) with the ``lpips`` package, AlexNet backbone, version 0.1.

Recipe: ``lpips.LPIPS(net="alex")`` on the full frame, inputs RGB scaled to [-1, 1] as
``lpips.im2tensor`` does (``x / 127.5 - 1``), one value per frame, averaged. The linear
calibration layers ship inside the ``lpips`` package (``weights/v0.1/alex.pth``); the
AlexNet backbone is torchvision's ``alexnet-owt-7be5be79.pth`` taken from the verified
weights store (``lpips_alexnet``). Same as ER-NeRF/RAD-NeRF's ``LPIPSMeter(net="alex")``
(``lpips.LPIPS(net="alex")(truths, preds, normalize=True)`` on [0, 1] images: identical
to scaling to [-1, 1] first). The backbone is loaded with ``weights_only=True`` into
``lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True)`` so that nothing downloads.
"""

from __future__ import annotations

import math

from functools import lru_cache

import numpy as np

from aebench.eval.registry import Context, Metric, Value
from aebench.lpips_net import build_lpips


def to_lpips_tensor(frames: np.ndarray):
    """uint8 (n, H, W, 3) -> float32 (n, 3, H, W) in [-1, 1] (``lpips.im2tensor`` scaling)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def lpips_frames(model, pred: np.ndarray, gt: np.ndarray, batch: int = 4) -> np.ndarray:
    """Per-frame LPIPS of uint8 (n, H, W, 3) frame stacks."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(pred), batch):
            d = model(to_lpips_tensor(pred[s : s + batch]), to_lpips_tensor(gt[s : s + batch]))
            out.append(d.reshape(-1).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


@lru_cache(maxsize=2)
def _network(path: str, sha256: str):
    """Built once per weights file (keyed by its hash) and reused across evaluations."""
    from aebench import weights as wstore

    return build_lpips(wstore.load_state_dict(path))


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    rec = ctx.weights["lpips_alexnet"]
    model = _network(rec.path, rec.sha256)
    vals, batch = [], []
    for pair in ctx.pairs("lpips"):
        batch.append(pair)
        if len(batch) == 4:
            vals.append(lpips_frames(model, np.stack([p for p, _ in batch]), np.stack([g for _, g in batch])))
            batch = []
    if batch:
        vals.append(lpips_frames(model, np.stack([p for p, _ in batch]), np.stack([g for _, g in batch])))
    return {"lpips": Value(per_frame=np.concatenate(vals) if vals else np.zeros(0))}


METRICS = [
    Metric(
        "lpips",
        "lower",
        "LPIPS",
        tolerance=0.03,
        compute=compute,
        family="paper",
        needs_gt=True,
        weights=("lpips_alexnet",),
        packages=("lpips", "torch", "torchvision"),
        value_range=(0.0, math.inf),
    )
]
