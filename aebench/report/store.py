"""Reading finished cells of the run store (see aebench/protocol/store.py for the layout)."""

from __future__ import annotations

import json
from pathlib import Path


def grid_key(cell: dict) -> str:
    """A cell's grid point: row, identity, clip seconds, iterations, driving audio, seed."""
    return cell.get("key") or (f"{cell['row']}|{cell['identity']}|{float(cell['clip_seconds']):g}|{cell['iters']}|"
                               f"{cell['audio']}|{cell['seed']}")


def read_cells(runs_root: Path, protocol: str) -> list[dict]:
    """One dict per grid point of the finished cells: cell.json fields plus ``summary``,
    ``missing``, ``info``, ``dir`` and ``superseded`` (the ids of older finished cells of the
    same grid point). Two cells share a grid point when they ran with other settings (the
    protocol or an override changed since); only the most recently finished one is reported,
    so a table never pools different experiments as if they were repeats."""
    from eval.api import read_metrics

    latest: dict[str, dict] = {}
    pdir = Path(runs_root) / protocol
    if not pdir.is_dir():
        return []
    for d in sorted(pdir.iterdir()):
        if not (d / "done").exists() or not (d / "cell.json").exists():
            continue
        cell = json.loads((d / "cell.json").read_text())
        metrics = read_metrics(d)
        cell.update(summary=metrics["summary"], missing=metrics.get("missing", {}), info=metrics.get("info", {}), dir=d,
                    finished=(d / "done").stat().st_mtime, superseded=[])
        key = grid_key(cell)
        old = latest.get(key)
        if old is not None:
            new, gone = (cell, old) if cell["finished"] >= old["finished"] else (old, cell)
            new["superseded"] = old["superseded"] + cell["superseded"] + [gone["dir"].name]
            cell = new
        latest[key] = cell
    return list(latest.values())


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
