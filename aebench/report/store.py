"""Reading finished cells of the run store (see aebench/protocol/store.py for the layout)."""

from __future__ import annotations

import json
from pathlib import Path


def read_cells(runs_root: Path, protocol: str) -> list[dict]:
    """One dict per finished cell: cell.json fields plus ``summary``, ``missing``, ``info`` and ``dir``."""
    from eval.api import read_metrics

    out = []
    pdir = Path(runs_root) / protocol
    if not pdir.is_dir():
        return out
    for d in sorted(pdir.iterdir()):
        if not (d / "done").exists() or not (d / "cell.json").exists():
            continue
        cell = json.loads((d / "cell.json").read_text())
        metrics = read_metrics(d)
        cell.update(summary=metrics["summary"], missing=metrics.get("missing", {}), info=metrics.get("info", {}), dir=d)
        out.append(cell)
    return out


def training_curve(log: Path) -> list[dict]:
    """``step N k=v ...`` lines of a training log as dicts."""
    rows = []
    if not log.exists():
        return rows
    for line in log.read_text().splitlines():
        if not line.startswith("step "):
            continue
        parts = line.split()
        row = {"step": int(parts[1])}
        for p in parts[2:]:
            if "=" in p:
                k, v = p.split("=", 1)
                try:
                    row[k] = float(v)
                except ValueError:
                    pass
        rows.append(row)
    return rows
