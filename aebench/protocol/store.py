"""The run store: one directory per cell, atomic writes, a lock per cell, ``done`` written last.

``<root>/<protocol>/<cell-id>/``: config.yaml, cell.json, metrics.json, frames.csv,
render.mp4, render_frames/, log.txt, done. Base models are shared by every protocol under
``<root>/_base/<method>-<base-key>/`` (base.json points at the checkpoint, done written last);
fine-tuned models by every cell that differs only after fine-tuning (driving audio, frames
rendered, row label, protocol) under ``<root>/_finetune/<method>-<key>/`` (finetune.json, the
checkpoint/ and its log).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

DONE = "done"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def is_done(cell_dir: Path) -> bool:
    return (cell_dir / DONE).exists()


def mark_done(cell_dir: Path) -> None:
    atomic_write(cell_dir / DONE, datetime.now(timezone.utc).isoformat() + "\n")


def cell_lock(cell_dir: Path, timeout: float = -1) -> FileLock:
    """An exclusive lock beside the cell directory (so a concurrent run waits, then skips it)."""
    cell_dir.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(cell_dir.parent / f".{cell_dir.name}.lock"), timeout=timeout)


def log_line(cell_dir: Path, text: str) -> None:
    cell_dir.mkdir(parents=True, exist_ok=True)
    with open(cell_dir / "log.txt", "a") as fh:
        fh.write(f"[{datetime.now().strftime('%H:%M:%S')}] {text}\n")


def finished_cells(protocol_dir: Path) -> list[Path]:
    if not protocol_dir.is_dir():
        return []
    return sorted(p for p in protocol_dir.iterdir() if p.is_dir() and is_done(p))
