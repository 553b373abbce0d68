"""Launchers: run a protocol's cells in-process (``local``) or as Ray tasks (``ray``).

Both write the same run store. With Ray, base models are trained first (one task per
distinct base model), then every cell is a task asking for one GPU where the cluster has
GPUs; ``RAY_ADDRESS`` picks a running cluster, otherwise a local instance is started.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from aebench.paths import data_dir
from aebench.harness.protocol.cells import Cell, base_key
from aebench.harness.protocol.runner import CellOutcome, ensure_base, run_cell
from aebench.harness.protocol.spec import Protocol

LAUNCHERS = ("local", "ray")


def data_root_for(protocol: Protocol, data: str | None = None) -> Path:
    """The identities folder of a run; ``synth`` builds the synthetic corpus and ``clips``
    prepares the protocol's clips on first use (both cached)."""
    spec = data or protocol.data
    if spec == "clips":
        return prepared_clips(protocol.clips)
    if spec != "synth":
        return Path(spec).expanduser().resolve()
    s = protocol.synth
    root = data_dir().resolve() / "synth" / f"{s['identities']}x{float(s['seconds']):g}s-{s['size']}px-seed{s['seed']}"
    from aebench.data.synth import make_corpus

    make_corpus(root, identities=int(s["identities"]), seconds=float(s["seconds"]), size=int(s["size"]),
                seed=int(s["seed"]))
    return root


def prepared_clips(clips: dict, under: Path | None = None) -> Path:
    """Every video in ``clips["from"]`` prepared (``aebench data prepare``, which skips an
    identity already prepared from the same file and settings) into one folder per settings
    under ``under`` (default ``prepared/`` in :func:`aebench.paths.data_dir`). Raises :class:`ProtocolError` when the
    folder has no clips."""
    from aebench.data.prepare import PrepareError, prepare
    from aebench.data.prepare import identity_name
    from aebench.media import videos_in
    from aebench.paths import SHARED_PREFIX, shared_path
    from aebench.harness.protocol.spec import ProtocolError

    src = shared_path(clips["from"])
    videos = videos_in(src) if src.is_dir() else []
    if not videos:
        hint = " (set AEBENCH_SHARED to the shared folder)" if str(clips["from"]).startswith(SHARED_PREFIX) else ""
        raise ProtocolError(f"no video clips in {src}{hint}")
    secs = clips.get("max_seconds")
    tag = f"{src.name}-{int(clips['size'])}px-{float(clips['fps']):g}fps" + (f"-{float(secs):g}s" if secs else "")
    root = Path(under or data_dir().resolve() / "prepared") / tag
    for video in videos:
        try:
            prepare(video, identity_name(video), root, size=int(clips["size"]), fps=float(clips["fps"]),
                    max_seconds=None if secs is None else float(secs), progress=True, log=tqdm.write)
        except PrepareError as exc:
            raise ProtocolError(f"preparing {video}: {exc}") from exc
    return root


def run_local(cells: list[Cell], runs_root: Path, progress: bool = True) -> list[CellOutcome]:
    outcomes = []
    bar = tqdm(cells, desc="cells", unit="cell", disable=not progress, dynamic_ncols=True)
    say = tqdm.write if progress else (lambda *_: None)
    for i, cell in enumerate(bar):
        bar.set_postfix_str(f"{cell.row} / {cell.identity}")
        say(f"[{i + 1}/{len(cells)}] {cell.label}  ({cell.cell_id})")
        outcome = run_cell(cell, runs_root, progress=say)
        say(f"  -> {outcome.status}" + (f": {outcome.error}" if outcome.error else ""))
        outcomes.append(outcome)
    return outcomes


def _remote_base(cell: Cell, runs_root: str, registry: dict) -> dict | None:
    from aebench.harness.registry import BUILTIN_METHODS, get_method

    BUILTIN_METHODS.update(registry)  # methods a test or session registered in the driver
    return ensure_base(get_method(cell.method), cell.cfg, Path(runs_root), progress=print)


def _remote_cell(cell: Cell, runs_root: str, registry: dict) -> CellOutcome:
    from aebench.harness.registry import BUILTIN_METHODS

    BUILTIN_METHODS.update(registry)
    return run_cell(cell, Path(runs_root), progress=print)


def run_ray(cells: list[Cell], runs_root: Path, progress: bool = True) -> list[CellOutcome]:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("launcher=ray needs Ray: pip install 'aebench[ray]'") from exc
    from aebench.harness.registry import BUILTIN_METHODS, method_class

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=progress,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}})
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    registry = dict(BUILTIN_METHODS)
    base_task = ray.remote(num_gpus=gpus, num_cpus=1)(_remote_base)
    cell_task = ray.remote(num_gpus=gpus, num_cpus=1)(_remote_cell)
    firsts: dict[str, Cell] = {}
    for cell in cells:
        if method_class(cell.method).has_base_model:
            firsts.setdefault(base_key(cell.cfg), cell)
    ray.get([base_task.remote(c, str(runs_root), registry) for c in firsts.values()])
    pending = {cell_task.remote(c, str(runs_root), registry): c for c in cells}
    outcomes = []
    with tqdm(total=len(cells), desc="cells (ray)", unit="cell", disable=not progress) as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            pending.pop(done[0])
            outcomes.append(ray.get(done[0]))
            bar.update(1)
    order = {c.cell_id: i for i, c in enumerate(cells)}
    return sorted(outcomes, key=lambda o: order[o.cell.cell_id])


def launch(cells: list[Cell], runs_root: Path, launcher: str = "local", progress: bool = True) -> list[CellOutcome]:
    if launcher == "local":
        return run_local(cells, runs_root, progress)
    if launcher == "ray":
        return run_ray(cells, runs_root, progress)
    raise ValueError(f"unknown launcher '{launcher}'; valid: {', '.join(LAUNCHERS)}")
