"""Checkpoint directories: ``model.pt`` (state dict), ``optim.pt``, ``state.json`` (step,
method metadata). Written to ``<dir>.partial`` and renamed, so a checkpoint directory that
exists is complete; loaded with ``weights_only=True``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

STEP_PREFIX = "step_"


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, step: int, meta: dict | None = None
) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optim.pt")
    (tmp / "state.json").write_text(json.dumps({"step": int(step), "meta": meta or {}}, indent=1, default=str))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def read_state(path: Path) -> dict:
    path = Path(path)
    f = path / "state.json"
    if not f.exists():
        raise FileNotFoundError(f"{path} is not a checkpoint (no state.json)")
    return json.loads(f.read_text())


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, map_location="cpu", strict: bool = True
) -> dict:
    """Load weights (and optimizer state when given and present) in place; returns state.json."""
    path = Path(path)
    state = read_state(path)
    model.load_state_dict(torch.load(path / "model.pt", map_location=map_location, weights_only=True), strict=strict)
    if optimizer is not None and (path / "optim.pt").exists():
        optimizer.load_state_dict(torch.load(path / "optim.pt", map_location=map_location, weights_only=True))
    return state


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"{STEP_PREFIX}{step:08d}"


def list_checkpoints(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(f"{STEP_PREFIX}*") if p.is_dir() and not p.name.endswith(".partial") and (p / "state.json").exists())


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def prune_checkpoints(root: Path, keep: int) -> None:
    for p in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
