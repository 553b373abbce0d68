"""Metrics (PSNR, SSIM, LPIPS, LMD, SyncNet LSE-C/LSE-D) and their weights store.

``evaluate(pred, gt, audio, ...)`` scores any method's output; ``METRICS`` names each
metric with its direction and needs. Importing this package does not import torch.
"""

from eval.api import EvalResult, evaluate, read_metrics
from eval.registry import METRICS, Metric

__all__ = ["METRICS", "EvalResult", "Metric", "evaluate", "read_metrics"]
