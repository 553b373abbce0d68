"""Numeric precision of training and rendering on CUDA (``train.precision``).

* ``fp32``: full float32 everywhere (the default, and the only choice on a CPU);
* ``tf32``: float32 tensors, matmuls and convolutions on TF32 tensor cores (Ampere and
  newer: about 10 mantissa bits inside the products, float32 accumulation);
* ``bf16``: ``torch.autocast`` to bfloat16 for the forward pass (autocast's own op lists keep
  reductions, softmax and losses in float32); gradients and weights stay float32.

The switch is part of the training config, so its runs never mix with fp32 ones in a cell's
id or a base model's key; report numbers with and without it side by side.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


@contextmanager
def precision(mode: str, device: torch.device):
    """Run the enclosed forward passes at ``mode`` on ``device`` (see the module docstring)."""
    if mode not in PRECISIONS:
        raise ValueError(f"unknown train.precision '{mode}'; valid: {', '.join(PRECISIONS)}")
    if mode != "fp32" and torch.device(device).type != "cuda":
        raise ValueError(f"train.precision={mode} needs a CUDA device (device={device}); use fp32 on a CPU")
    if mode == "tf32":
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        return
    with torch.autocast("cuda", dtype=torch.bfloat16) if mode == "bf16" else nullcontext():
        yield
