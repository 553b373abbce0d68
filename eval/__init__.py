"""Metrics (PSNR, SSIM, LPIPS, LMD (dlib), SyncNet LSE-C/LSE-D) and their weights store.

``evaluate(pred, gt, audio, ...)`` scores any method's output; ``METRICS`` (the registry,
:mod:`eval.registry`) describes each metric: direction, needs, label, regression tolerance,
compute function, recipe module (``eval/metrics/``). Importing this package does not import torch.
"""

from eval.api import EvalResult, evaluate, read_metrics
from eval.registry import METRICS, Metric

__all__ = ["METRICS", "EvalResult", "Metric", "evaluate", "read_metrics"]
