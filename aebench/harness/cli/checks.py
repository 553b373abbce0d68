"""Checks of the command line's own arguments, made before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

import click


def writable_folder(path: Path, option: str) -> Path:
    """``path`` when it is, or can be created as, a writable folder; a one-line usage error naming
    ``option`` otherwise (a file, a read-only place)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{option} {path} is a file; name a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise click.UsageError(f"{option} {path}: {probe} is not writable; name a folder you can write to")
    return path


def comma_list(text: str | None) -> list[str] | None:
    """``--metrics a, b`` as ``["a", "b"]`` (blank items dropped); None when the option is not given."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None
