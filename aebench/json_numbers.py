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


class JSONFileError(ValueError):
    """A JSON file aebench reads that is missing, unreadable, not JSON, or holds NaN/Infinity literals."""


def _no_constants(name: str):
    raise ValueError(f'{name} is not a JSON number (aebench writes NaN as null and infinity as "inf")')


def read_json(path, what: str = "file"):
    """The JSON document in ``path``, strictly: a truncated or damaged file, NaN/Infinity literals
    (which Python's json accepts but JSON has not) and absurd nesting are a :class:`JSONFileError`
    naming the file (``what`` says what the file is, e.g. "cell record")."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise JSONFileError(f"{what} {path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise JSONFileError(f"{what} {path} cannot be read: {exc}") from exc
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError as exc:
        raise JSONFileError(f"{what} {path} is nested too deeply to be one aebench wrote") from exc
    except ValueError as exc:  # json.JSONDecodeError is a ValueError, so are the NaN/Infinity literals
        raise JSONFileError(
            f"{what} {path} is not JSON ({exc}); a truncated or edited file? re-create it with the command that wrote it"
        ) from exc
