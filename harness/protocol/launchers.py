"""Launchers: run a protocol's cells on this machine (``local``), as Ray tasks (``ray``) or as
SLURM jobs (``slurm``, :mod:`aebench.harness.protocol.slurm`).

All write the same run store. ``local`` runs the cells one after the other, or with
``workers=N`` in N processes side by side (:mod:`aebench.harness.protocol.pool`; ``workers=auto``,
the default, as many as the cores hold cells of the protocol's ``threads``). Each cell runs with
its own ``threads`` torch threads, so a protocol meant for N workers on C cores sets
``threads: C / N``. With Ray, base
models are trained first the same way, then every cell is a task asking for one GPU where the
cluster has GPUs; ``RAY_ADDRESS`` picks a running cluster, otherwise a local instance is started.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from aebench.paths import data_dir
from aebench.harness.protocol.cells import Cell, base_key
from aebench.harness.protocol.runner import CellOutcome, ensure_base, run_cell
from aebench.harness.protocol.spec import Protocol, ProtocolError

LAUNCHERS = ("local", "ray", "slurm")


def data_root_for(protocol: Protocol, data: str | None = None) -> Path:
    """The identities folder of a run; ``synth`` builds the synthetic corpus and ``clips``
    prepares the protocol's clips on first use (both cached)."""
    spec = data or protocol.data
    if spec == "clips":
        return prepared_clips(protocol.clips)
    root = data_root_path(protocol, data)
    if spec != "synth":
        return root
    s = protocol.synth
    from aebench.data.staging import WriteError
    from aebench.data.synth import make_corpus

    try:
        make_corpus(root, identities=int(s["identities"]), seconds=float(s["seconds"]), size=int(s["size"]), seed=int(s["seed"]))
    except WriteError as exc:  # a full disk or a read-only data folder: one line, before any training
        raise ProtocolError(f"protocol {protocol.name}: the synthetic corpus cannot be written: {exc}") from exc
    return root


def data_root_path(protocol: Protocol, data: str | None = None) -> Path:
    """Where the identities of a run lie, built or not (:func:`data_root_for` builds them):
    what `aebench status` expands a protocol over without preparing anything."""
    spec = data or protocol.data
    if spec == "clips":
        return prepared_root(protocol.clips)
    if spec != "synth":
        return Path(spec).expanduser().resolve()
    s = protocol.synth
    return data_dir().resolve() / "synth" / f"{s['identities']}x{float(s['seconds']):g}s-{s['size']}px-seed{s['seed']}"


def prepared_root(clips: dict, under: Path | None = None) -> Path:
    """The folder :func:`prepared_clips` prepares ``clips`` into: one per source folders and settings."""
    from aebench.paths import shared_path

    sources = clips["from"] if isinstance(clips["from"], list) else [clips["from"]]
    secs = clips.get("max_seconds")
    folders = "+".join(shared_path(spec).name for spec in sources)
    tag = f"{folders}-{int(clips['size'])}px-{float(clips['fps']):g}fps" + (f"-{float(secs):g}s" if secs else "")
    return Path(under or data_dir().resolve() / "prepared") / tag


def prepared_clips(clips: dict, under: Path | None = None) -> Path:
    """Every video in ``clips["from"]`` (a folder, or a list of folders) prepared (``aebench data
    prepare``, which skips an identity already prepared from the same file and settings) into one
    folder per settings under ``under`` (default ``prepared/`` in :func:`aebench.paths.data_dir`),
    named by the source folders. Raises :class:`ProtocolError` when a folder has no clips or two
    clips would make identities of the same name."""
    from aebench.data.prepare import PrepareError, prepare
    from aebench.data.prepare import identity_name
    from aebench.media import videos_in
    from aebench.paths import SHARED_PREFIX, shared_path
    from aebench.harness.protocol.spec import ProtocolError

    sources = clips["from"] if isinstance(clips["from"], list) else [clips["from"]]
    if not sources or not all(isinstance(x, str) and x for x in sources):
        raise ProtocolError(f"clips.from names a folder of clips or a list of folders, got {clips['from']!r}")
    videos, names = [], {}
    for spec in sources:
        src = shared_path(spec)
        found = videos_in(src) if src.is_dir() else []
        if not found:
            hint = " (set AEBENCH_SHARED to the shared folder)" if str(spec).startswith(SHARED_PREFIX) else ""
            raise ProtocolError(f"no video clips in {src}{hint}")
        for video in found:
            name = identity_name(video)
            if name in names:
                raise ProtocolError(f"clips {names[name]} and {video} would both be identity '{name}'; rename one")
            names[name] = video
        videos += found
    secs = clips.get("max_seconds")
    root = prepared_root(clips, under)
    for video in videos:
        try:
            prepare(
                video,
                identity_name(video),
                root,
                size=int(clips["size"]),
                fps=float(clips["fps"]),
                max_seconds=None if secs is None else float(secs),
                progress=True,
                log=tqdm.write,
            )
        except PrepareError as exc:
            raise ProtocolError(f"preparing {video}: {exc}") from exc
    return root


def run_local(cells: list[Cell], runs_root: Path, progress: bool = True, workers: int = 1) -> list[CellOutcome]:
    """The cells one after the other in this process, or in ``workers`` processes side by side."""
    if workers > 1 and len(cells) > 1:
        from aebench.harness.protocol.pool import run_pool

        return run_pool(cells, runs_root, progress, workers)
    outcomes = []
    bar = tqdm(cells, desc="cells", unit="cell", disable=not progress, dynamic_ncols=True)
    say = tqdm.write if progress else _quiet
    for i, cell in enumerate(bar):
        bar.set_postfix_str(f"{cell.row} / {cell.identity}")
        say(f"[{i + 1}/{len(cells)}] {cell.label}  ({cell.cell_id})")
        outcome = run_cell(cell, runs_root, progress=say)
        say(f"  -> {outcome.status}" + (f": {outcome.error}" if outcome.error else ""))
        outcomes.append(outcome)
    return outcomes


def _quiet(*_) -> None:
    pass


def _bases_needed(cells: list[Cell], runs_root: Path) -> list[Cell]:
    """One cell per distinct base model that an unfinished cell needs (methods with a base model)."""
    from aebench.harness.protocol.run_store import cell_folder, is_done
    from aebench.registry import method_class

    firsts: dict[str, Cell] = {}
    for cell in cells:
        if method_class(cell.method).has_base_model and not is_done(cell_folder(runs_root, cell)):
            firsts.setdefault(base_key(cell.cfg), cell)
    return list(firsts.values())


def _remote_base(cell: Cell, runs_root: str, registry: dict, say=print) -> dict | None:
    """In a worker (Ray task or pool process): the cell's base model, trained once, with the cell's threads."""
    from aebench.device import torch_threads
    from aebench.registry import REGISTERED, get_method

    REGISTERED.update(registry)  # methods a test or session registered in the driver
    with torch_threads(int(cell.cfg.threads)):
        return ensure_base(get_method(cell.method), cell.cfg, Path(runs_root), progress=say)


def _remote_cell(cell: Cell, runs_root: str, registry: dict, say=print) -> CellOutcome:
    from aebench.registry import REGISTERED

    REGISTERED.update(registry)
    return run_cell(cell, Path(runs_root), progress=say)


def model_job(kind: str, cell: Cell, runs_root: str, registry: dict) -> str | None:
    """In a worker (a pool process, a SLURM job, a Ray task): the cell's base model (``kind``
    "base") or its base and fine-tuned models ("finetune"), each trained once. None, or the error
    as text with its traceback appended to the model folder's log.txt: the cells that need the
    model then fail with that message, in the run store."""
    import traceback

    from aebench.harness.protocol.run_store import base_folder, finetune_folder, log_line
    from aebench.harness.protocol.runner import ensure_models
    from aebench.registry import REGISTERED

    REGISTERED.update(registry)
    folder = Path(runs_root) / (base_folder(cell.cfg) if kind == "base" else finetune_folder(cell.cfg))
    try:
        if kind == "base":
            _remote_base(cell, runs_root, registry, say=_quiet)
        else:
            ensure_models(cell, Path(runs_root), progress=_quiet)
        return None
    except Exception as exc:
        log_line(folder, "FAILED:\n" + traceback.format_exc())
        return f"{type(exc).__name__}: {exc} (traceback: {folder / 'log.txt'})"


def _pool_base(cell: Cell, runs_root: str, registry: dict) -> str | None:
    """A worker: the cell's base model (:func:`model_job`)."""
    return model_job("base", cell, runs_root, registry)


def _pool_error(job) -> str | None:
    """The error of a pool job that raised outside the cell's own handling (e.g. a method class a
    spawned process cannot import), as text; None when it returned. A dead worker re-raises."""
    from concurrent.futures.process import BrokenProcessPool

    exc = job.exception()
    if exc is None or isinstance(exc, BrokenProcessPool):
        return None
    return f"{type(exc).__name__}: {exc}"


def run_ray(cells: list[Cell], runs_root: Path, progress: bool = True) -> list[CellOutcome]:
    """The cells as Ray tasks, on a shared disk or shipped (:mod:`aebench.harness.protocol.ray_launcher`)."""
    from aebench.harness.protocol.ray_launcher import run_ray as run

    return run(cells, runs_root, progress)


def launch(
    cells: list[Cell], runs_root: Path, launcher: str = "local", progress: bool = True, workers: int | str = 1, slurm: dict | None = None
) -> list[CellOutcome]:
    """Run ``cells`` into ``runs_root`` with ``launcher``; ``workers``: processes side by side (local;
    ``auto``: :func:`aebench.harness.protocol.pool.auto_workers`); ``slurm``: the jobs' resources
    (:func:`aebench.harness.protocol.slurm.slurm_settings`, for launcher=slurm)."""
    from aebench.harness.protocol.pool import resolve_workers
    from aebench.harness.protocol.run_store import adopt_earlier

    if launcher != "local" and workers not in (1, "auto"):
        raise ValueError(f"workers=N is for launcher=local; launcher={launcher} places the cells itself")
    workers = resolve_workers(workers, cells, launcher)
    moved = adopt_earlier(runs_root, cells)  # finished work of a store written before today's ids
    if moved and progress:
        print(f"{len(moved)} finished folder(s) of a store written before the settings tree take today's ids: " + ", ".join(moved))
    if launcher == "local":
        return run_local(cells, runs_root, progress, workers)
    if launcher == "ray":
        return run_ray(cells, runs_root, progress)
    if launcher == "slurm":
        from aebench.harness.protocol.slurm import run_slurm

        if slurm is None:
            raise ValueError("launcher=slurm needs the slurm settings (aebench.harness.protocol.slurm.slurm_settings)")
        return run_slurm(cells, runs_root, slurm, progress)
    raise ValueError(f"unknown launcher '{launcher}'; valid: {', '.join(LAUNCHERS)}")
