"""brightness: the mean grey level of the prediction, in [0, 255] (a metric of another package,
registered through the ``aebench.metrics`` entry point)."""

from __future__ import annotations

import numpy as np

from aebench.eval.registry import Context, Metric, Value


def compute(ctx: Context, names: list[str]) -> dict[str, Value]:
    values = [float(f.mean()) for f in ctx.frames("pred")]
    return {"brightness": Value(per_frame=np.array(values, dtype=np.float64))}


METRICS = [Metric("brightness", "target", "Brightness (plugin)", tolerance=1.0, compute=compute, family="example")]
