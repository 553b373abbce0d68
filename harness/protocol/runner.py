"""Run one cell end to end (base model shared, fine-tune, render, evaluate) into the run store.

A cell is skipped when its ``done`` marker exists; an interrupted cell restarts in the same
directory, and the methods resume from their last checkpoint there. Every write is atomic
and each cell (and each base model) is held under a file lock, so concurrent runs of the
same protocol never corrupt a cell: the second waits, then finds it done.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from aebench.config import to_yaml
from aebench.data import Identity
from aebench.device import torch_threads
from aebench.method_api import render_span
from aebench.paths import shared_path
from aebench.provenance import peak_memory, provenance
from aebench.harness.protocol.cells import Cell
from aebench.harness.protocol.records import SCHEMA, BaseRecord, CellRecord, FinetuneRecord
from aebench.harness.protocol.run_store import (
    atomic_write,
    base_folder,
    cell_folder,
    cell_lock,
    clear_running,
    finetune_folder,
    is_done,
    log_line,
    mark_done,
    mark_failed,
    mark_running,
    read_record,
    write_record,
)


@dataclass
class CellOutcome:
    cell: Cell
    status: str  # "done" | "skipped" | "failed"
    error: str | None = None


def _identity(cfg: DictConfig, name: str) -> Identity:
    return Identity.open(Path(cfg.data.root) / name).at_size(int(cfg.data.size))


def driving_audio(cfg: DictConfig, identity: Identity) -> tuple[np.ndarray, bool]:
    """The cell's driving audio and whether it is self-driven (ground truth exists)."""
    spec = str(cfg.run.audio)
    if spec == "self":
        return identity.split("test").audio, True
    root = Path(cfg.data.root)
    if (root / spec / "meta.json").exists():
        return Identity.open(root / spec).split("test").audio, False
    from aebench.media import read_audio

    return read_audio(shared_path(spec)), False


def ensure_base(method, cfg: DictConfig, runs_root: Path, progress=print) -> tuple[BaseRecord, Path] | None:
    """The shared base model of this cell's method and settings, trained once: its record
    (checkpoint, identities, pretrain_s) and its folder."""
    if not method.has_base_model:
        return None
    folder = runs_root / base_folder(cfg)
    with cell_lock(folder):
        if is_done(folder):
            return read_record(folder, BaseRecord), folder
        ids = list(cfg.run.base_identities)
        if not ids:
            raise RuntimeError(f"method {cfg.method} needs a base model but the cell names no base identities")
        progress(f"  base model {cfg.method} on {', '.join(ids)} -> {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(to_yaml(cfg))
        t0 = time.perf_counter()
        with peak_memory() as mem:
            ckpt = method.pretrain([_identity(cfg, n) for n in ids], cfg, folder)
        record = BaseRecord(
            SCHEMA,
            checkpoint=str(ckpt),
            identities=ids,
            pretrain_s=time.perf_counter() - t0,
            peak_memory=mem.to_json(),
            provenance=provenance(_device(cfg)),
        )
        write_record(folder, record)
        mark_done(folder)
        return record, folder


def ensure_finetuned(
    method, cfg: DictConfig, identity: Identity, base: Path | None, runs_root: Path, progress=print
) -> tuple[FinetuneRecord, Path]:
    """The cell's fine-tuned model, trained once for every cell that differs only in what it
    does after fine-tuning (driving audio, frames rendered, row label, protocol): the paper
    drives one fine-tuned model with its own and other voices. Returns its record (checkpoint,
    finetune_s) and its folder."""
    ft_dir = runs_root / finetune_folder(cfg)
    with cell_lock(ft_dir):
        if is_done(ft_dir):
            return read_record(ft_dir, FinetuneRecord), ft_dir
        progress(f"  fine-tune {cfg.method} on {identity.name} ({int(cfg.train.iters)} it) -> {ft_dir}")
        ft_dir.mkdir(parents=True, exist_ok=True)
        (ft_dir / "config.yaml").write_text(to_yaml(cfg))
        t0 = time.perf_counter()
        with peak_memory() as mem:
            ckpt = method.finetune(identity, identity.fewshot_clip(float(cfg.data.clip_seconds)), base, cfg, ft_dir)
        record = FinetuneRecord(
            SCHEMA,
            checkpoint=str(ckpt),
            finetune_s=time.perf_counter() - t0,
            peak_memory=mem.to_json(),
            provenance=provenance(_device(cfg)),
        )
        write_record(ft_dir, record)
        mark_done(ft_dir)
        return record, ft_dir


def ensure_models(cell: Cell, runs_root: Path, progress=print) -> None:
    """The cell's base model (where its method has one) and fine-tuned model, trained once with
    the cell's threads: what a pool worker does before the cells that share them render."""
    from aebench.registry import get_method

    with torch_threads(int(cell.cfg.threads)):
        method = get_method(cell.method)
        base = ensure_base(method, cell.cfg, runs_root, progress)
        ensure_finetuned(
            method, cell.cfg, _identity(cell.cfg, cell.identity), Path(base[0].checkpoint) if base else None, runs_root, progress
        )


def fail_unrun(cell: Cell, runs_root: Path, error: str) -> CellOutcome:
    """Record ``cell`` failed without running it (a model it needs failed), unless it is done:
    its config.yaml (what reports count unfinished cells by), log line and failed.json."""
    cell_dir = cell_folder(runs_root, cell)
    with cell_lock(cell_dir):
        if is_done(cell_dir):
            return CellOutcome(cell, "skipped")
        cell_dir.mkdir(parents=True, exist_ok=True)
        if not (cell_dir / "config.yaml").exists():
            atomic_write(cell_dir / "config.yaml", to_yaml(cell.cfg))
        log_line(cell_dir, f"FAILED: {error}")
        mark_failed(cell_dir, error)
        return CellOutcome(cell, "failed", error)


def run_cell(cell: Cell, runs_root: Path, progress=print) -> CellOutcome:
    """Run ``cell`` unless already done: its models (:func:`train_stage`), its render
    (:func:`render_stage`), its scores (:func:`score_cell`) and its record. Failures are logged in
    the cell, recorded in its failed.json and returned; while it runs, running.json says who runs it
    (`aebench status`)."""
    from aebench.registry import get_method

    cell_dir = cell_folder(runs_root, cell)
    if is_done(cell_dir):
        return CellOutcome(cell, "skipped")
    with cell_lock(cell_dir), torch_threads(int(cell.cfg.threads)):
        if is_done(cell_dir):
            return CellOutcome(cell, "skipped")
        try:
            cell_dir.mkdir(parents=True, exist_ok=True)
            mark_running(cell_dir)
            (cell_dir / "config.yaml").write_text(to_yaml(cell.cfg))
            log_line(cell_dir, f"cell {cell.cell_id}: {cell.label}")
            method, identity = get_method(cell.method), _identity(cell.cfg, cell.identity)
            spent = Spent({"prepare_s": prepare_seconds(identity)}, {})
            models = train_stage(method, cell, identity, runs_root, cell_dir, spent, progress)
            audio, self_driven = driving_audio(cell.cfg, identity)
            video = render_stage(method, models, cell, identity, audio, self_driven, cell_dir, spent, progress)
            progress("  evaluate")
            log_line(cell_dir, "evaluate")
            t0 = time.perf_counter()
            scored = score_cell(cell, identity, video, audio, self_driven, cell_dir)
            spent.timings["eval_s"] = time.perf_counter() - t0
            spent.memory["eval"] = scored.info["provenance"]["peak_memory"]
            write_record(cell_dir, cell_record(cell, identity, models, spent, scored, rendered_frames(video)))
            if not (cell_dir / "render.mp4").exists():
                shutil.copy(video, cell_dir / "render.mp4")
            mark_done(cell_dir)
            clear_running(cell_dir)
            log_line(cell_dir, "done")
            return CellOutcome(cell, "done")
        except Exception as exc:  # a failing cell is recorded and the run goes on
            error = f"{type(exc).__name__}: {exc}"
            log_line(cell_dir, "FAILED:\n" + traceback.format_exc())
            mark_failed(cell_dir, error)
            return CellOutcome(cell, "failed", error)


@dataclass
class Spent:
    """What a cell's stages cost: wall seconds per stage and peak memory per stage."""

    timings: dict
    memory: dict


@dataclass
class Models:
    """A cell's trained models: the base model's record and folder (None without one) and the
    fine-tuned model's."""

    base: BaseRecord | None
    base_dir: Path | None
    finetuned: FinetuneRecord
    finetuned_dir: Path


def train_stage(method, cell: Cell, identity: Identity, runs_root: Path, cell_dir: Path, spent: Spent, progress=print) -> Models:
    """The cell's base model and fine-tuned model (each trained once and shared), their cost, and
    the training steps in the cell's log (once, also when an attempt was resumed)."""
    cfg = cell.cfg
    base_record, base_dir = ensure_base(method, cfg, runs_root, progress) or (None, None)
    spent.timings["pretrain_s"] = base_record.pretrain_s if base_record else 0.0
    if base_record:
        spent.memory["pretrain"] = base_record.peak_memory
    log_line(cell_dir, "fine-tune")
    base = Path(base_record.checkpoint) if base_record else None
    ft_record, ft_dir = ensure_finetuned(method, cfg, identity, base, runs_root, progress)
    spent.timings["finetune_s"] = ft_record.finetune_s
    spent.memory["finetune"] = ft_record.peak_memory
    train_log = Path(ft_record.checkpoint).parent / "log.txt"
    if train_log.exists():
        own = cell_dir / "log.txt"
        lines = own.read_text().splitlines(keepends=True) if own.exists() else []
        atomic_write(own, "".join(li for li in lines if not li.startswith("step ")) + train_log.read_text())
    return Models(base_record, base_dir, ft_record, ft_dir)


def render_stage(
    method,
    models: Models,
    cell: Cell,
    identity: Identity,
    audio: np.ndarray,
    self_driven: bool,
    cell_dir: Path,
    spent: Spent,
    progress=print,
) -> Path:
    """The fine-tuned model's render of ``identity`` driven by ``audio`` (``render.mp4`` in the cell)."""
    progress(f"  render ({'self' if self_driven else cell.cfg.run.audio}-driven)")
    log_line(cell_dir, "render")
    t0 = time.perf_counter()
    with peak_memory() as mem:
        video = method.render(Path(models.finetuned.checkpoint), identity, audio, cell.cfg, cell_dir / "render.mp4")
    spent.timings["render_s"] = time.perf_counter() - t0
    spent.memory["render"] = mem.to_json()
    return Path(video)


def cell_record(cell: Cell, identity: Identity, models: Models, spent: Spent, scored, rendered: int) -> CellRecord:
    """What a finished cell ran and what it cost (``cell.json``)."""
    cfg, timings = cell.cfg, spent.timings
    return CellRecord(
        SCHEMA,
        protocol=cell.protocol,
        cell_id=cell.cell_id,
        row=cell.row,
        method=cell.method,
        identity=cell.identity,
        clip_seconds=cell.clip_seconds,
        iters=cell.iters,
        audio=cell.audio,
        seed=cell.seed,
        scale=cfg.scale,
        data_root=str(cfg.data.root),
        size=int(identity.size[0]),
        base=str(models.base_dir) if models.base_dir else None,
        finetuned=str(models.finetuned_dir),
        base_identities=list(cfg.run.base_identities),
        timings=timings,
        train_hours=(timings["pretrain_s"] + timings["finetune_s"]) / 3600.0,
        cost=cell_cost(timings, spent.memory, rendered),
        peak_memory=spent.memory,
        sha256=scored.hashes(),
        provenance=provenance(_device(cfg)),
        trained_with={"pretrain": models.base.provenance if models.base else None, "finetune": models.finetuned.provenance},
        key=cell.key,
    )


def _device(cfg: DictConfig) -> str:
    """The torch device the cell's ``device`` setting resolves to here (``auto`` -> cuda or cpu)."""
    from aebench.device import resolve_device

    return str(resolve_device(str(cfg.device)))


def prepare_seconds(identity: Identity) -> float | None:
    """Wall time the identity's preparation took (``meta.json``), None where it was not recorded."""
    spf = identity.meta.get("seconds_per_frame")
    return float(spf) * int(identity.meta["n_frames"]) if spf is not None else None


def rendered_frames(video: Path) -> int:
    """How many frames a render holds (its lossless frames, else the video's packets)."""
    from aebench.eval.frames import FrameSource

    return len(FrameSource.of(scored_source(video)))


def cell_cost(timings: dict, memory: dict, rendered: int) -> dict:
    """The cost columns a table can show (:data:`aebench.harness.protocol.spec.CELL_VALUES`):
    ``train_s`` (base model + fine-tune), ``render_fps`` (frames rendered / render wall time) and
    ``peak_mem`` (the largest resident peak of the cell's stages, GiB)."""
    peaks = [m["rss_bytes"] for m in memory.values() if m and m.get("rss_bytes")]
    return {
        "train_s": timings["pretrain_s"] + timings["finetune_s"],
        "render_fps": rendered / timings["render_s"] if timings.get("render_s") else None,
        "peak_mem": max(peaks) / 2**30 if peaks else None,
    }


def score_cell(cell: Cell, identity: Identity, video: Path, audio: np.ndarray, self_driven: bool, cell_dir: Path):
    """Score a cell's render with the protocol's metrics into ``metrics.json``/``frames.csv``;
    returns the :class:`aebench.eval.EvalResult`."""
    from aebench.eval import evaluate

    cfg = cell.cfg
    pred, n, audio = scored_frames(video, identity, audio, int(cfg.train.render_frames))
    gt = ground_truth(identity, n) if self_driven else None
    weights = {k: str(v) for k, v in cfg.weights.items()} or None
    result = evaluate(pred, gt=gt, audio=audio, fps=identity.fps, metrics=_metrics_for(cell, self_driven), weights=weights, progress=False)
    result.info["scored_from"] = str(scored_source(video))
    result.write(cell_dir)
    return result


def ground_truth(identity: Identity, n: int):
    """The first ``n`` frames of ``identity``'s test half, what a self-driven render is scored against."""
    from aebench.eval.frames import FrameSource

    return FrameSource.from_getter(n, identity.split("test").frame, identity.fps, f"{identity.name} test half")


def rescore_cell(cell: Cell, runs_root: Path) -> CellOutcome:
    """Score a finished cell again with the protocol's metrics as they are now (a metric added
    or fixed later), from its stored render, without training or rendering."""
    cell_dir = cell_folder(runs_root, cell)
    if not is_done(cell_dir):
        return CellOutcome(cell, "skipped", "not finished")
    with cell_lock(cell_dir), torch_threads(int(cell.cfg.threads)):
        try:
            identity = _identity(cell.cfg, cell.identity)
            audio, self_driven = driving_audio(cell.cfg, identity)
            check_render_complete(cell, cell_dir, identity, audio)
            score_cell(cell, identity, cell_dir / "render.mp4", audio, self_driven, cell_dir)
            log_line(cell_dir, "rescored")
            return CellOutcome(cell, "done")
        except Exception as exc:
            log_line(cell_dir, "RESCORE FAILED:\n" + traceback.format_exc())
            return CellOutcome(cell, "failed", f"{type(exc).__name__}: {exc}")


class RenderIncomplete(RuntimeError):
    """A stored render has lost frames since its cell was scored: rescoring it would score the
    frames left (against as much ground truth) and report a different clip as the cell's."""


def check_render_complete(cell: Cell, cell_dir: Path, identity: Identity, audio: np.ndarray) -> None:
    """Refuse (RenderIncomplete) a cell whose render lacks frames: every frame the cell scored
    (its ``metrics.json``), else every frame it renders for its audio (an external video may be
    one short, as ``external`` allows), must still be there."""
    from aebench.eval.frames import FrameSource, frame_numbers
    from aebench.media import frame_ranges

    source = scored_source(cell_dir / "render.mp4")
    expected, slack, what = _frames_scored(cell_dir), 0, "scored"
    if expected is None:
        expected = render_span(identity, audio, int(cell.cfg.train.render_frames))[0]
        slack, what = (0 if source.is_dir() else 1), "renders"
    if source.is_dir():
        present = set(frame_numbers(source))
        missing = [k for k in range(expected) if k not in present]
    else:
        missing = list(range(len(FrameSource.of(source)), expected - slack))
    if missing:
        raise RenderIncomplete(
            f"cell {cell.cell_id}: {len(missing)} render frame(s) missing from {source} (numbers "
            f"{frame_ranges(missing)}; the cell {what} {expected} frames); refusing to score the "
            "frames left: run the cell again (remove its folder, then `aebench run`)"
        )


def _frames_scored(cell_dir: Path) -> int | None:
    """How many frames the cell's last scoring read (``metrics.json``), None where unrecorded."""
    try:
        n = json.loads((cell_dir / "metrics.json").read_text())["info"]["n_frames"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(n) if isinstance(n, int) and n > 0 else None


def scored_source(video: Path) -> Path:
    """What metrics read of a render: its lossless frames when the method wrote them, else the file."""
    from aebench.media import lossless_frames_dir

    frames = lossless_frames_dir(video)
    return frames if frames.is_dir() else video


def scored_frames(video: Path, identity: Identity, audio: np.ndarray, cap: int = 0):
    """What a cell's metrics read: the render's lossless frames when the method wrote them (every
    NeRF method does), else the video file exactly as given (external renders: decoded, never
    re-encoded), cut to the frames of the driving audio (``external`` checked its tolerance of
    one frame more or less: an extra frame is dropped here, a missing one shortens the clip).
    Returns a :class:`aebench.eval.frames.FrameSource` (read lazily), the frame count and the
    driving audio those frames cover (:func:`aebench.method_api.render_span`)."""
    from aebench.eval.frames import FrameSource

    frames = FrameSource.of(scored_source(video), fps=identity.fps)
    n, audio = render_span(identity, audio, len(frames) if cap <= 0 else min(cap, len(frames)))
    return frames.limit(n), n, audio


def _metrics_for(cell: Cell, self_driven: bool) -> list[str]:
    """The protocol's metrics; cross-driven cells keep only those that need no ground truth."""
    from aebench.eval import METRICS

    return [n for n in cell.metrics if self_driven or not METRICS[n].needs_gt]
