"""Metric values in JSON and CSV files: JSON has no infinity or NaN, so an infinite value (e.g.
PSNR of identical frames) is written as the string ``"inf"``/``"-inf"`` and NaN as null, and read
back to a float. The one place both directions live (metrics.json, frames.csv, results files,
CI references)."""

from __future__ import annotations

import math


def to_json(v):
    """``v`` as written: infinities as ``"inf"``/``"-inf"``, NaN as None, anything else unchanged."""
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def from_json(v):
    """A value :func:`to_json` wrote, as read: ``"inf"``/``"-inf"`` as floats, anything else unchanged."""
    return float(v) if isinstance(v, str) and v in ("inf", "-inf") else v
