"""Metrics (PSNR, SSIM, LPIPS, LMD, SyncNet LSE-C/LSE-D, THEval's four) and their registry.

``evaluate(pred, gt, audio, ...)`` scores any method's output; ``METRICS`` (the registry,
:mod:`aebench.eval.registry`) describes each metric: direction, needs, label, regression tolerance,
compute function, recipe module (``eval/metrics/``). Importing this package does not import torch.
"""

if __name__ != "aebench.eval":  # one import namespace: the folder is the package aebench.eval
    raise ImportError(
        f"'{__name__}' is not an import name: the eval/ folder imports as aebench.eval "
        "(e.g. `from aebench.eval import evaluate`) once aebench is installed (pip install -e .)"
    )


from aebench.eval.api import EvalResult, evaluate, read_metrics
from aebench.eval.registry import METRICS, Metric

__all__ = ["METRICS", "EvalResult", "Metric", "evaluate", "read_metrics"]
