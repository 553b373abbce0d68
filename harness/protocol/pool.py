"""``launcher=local workers=N``: a protocol's cells in N processes on this machine.

The work of unfinished cells is split into jobs along what they share: a base model (one per
base key), a fine-tuned model (one per fine-tune key, after its base model) and each cell's
render and scoring (after its fine-tuned model). A job starts as soon as what it needs is
done, models before renders, so no worker waits on a lock another worker holds and the
longest chain (base model, fine-tune, renders of one method) starts first. Each job runs with
its cell's ``threads``. A model that fails fails the cells that need it, with its error.

``workers=auto`` (the default) runs as many processes as the machine's cores hold cells of the
protocol's ``threads`` (:func:`auto_workers`): on a CPU the measured choice (docs/speed.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from aebench.harness.protocol.cells import Cell
from aebench.harness.protocol.run_store import base_folder, cell_folder, finetune_folder
from aebench.harness.protocol.runner import CellOutcome, fail_unrun

#: what `workers=` takes besides a whole number
AUTO = "auto"


def machine_cores() -> int:
    """The cores this process may run on (its affinity mask, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this system (macOS)
        return os.cpu_count() or 1


def auto_workers(cells: list[Cell], cores: int | None = None) -> int:
    """How many cells to run side by side here: the cores over the cells' ``threads`` (0, torch's
    default, means every core), and one where a cell runs on a GPU (cells share the one device)."""
    if not cells:
        return 1
    from aebench.device import resolve_device

    try:
        if any(str(c.cfg.device) != "cpu" and resolve_device(str(c.cfg.device)).type != "cpu" for c in cells):
            return 1
    except RuntimeError:  # device=cuda without CUDA: each cell fails with that message, one at a time
        return 1
    cores = cores or machine_cores()
    threads = max(int(c.cfg.threads) or cores for c in cells)
    return max(1, min(len(cells), cores // threads))


def resolve_workers(workers: int | str, cells: list[Cell], launcher: str = "local") -> int:
    """``workers`` as a number of processes: ``auto`` becomes :func:`auto_workers` for the
    local launcher and 1 for the others (they place cells themselves)."""
    if workers == AUTO:
        return auto_workers(cells) if launcher == "local" else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers takes a whole number of processes, at least 1, or {AUTO}; got {workers!r}")
    return workers


@dataclass
class Job:
    """One unit of pool work: ``kind`` base | model | cell, for ``cell`` (the first that needs it)."""

    kind: str
    cell: Cell
    needs: set[str] = field(default_factory=set)  # the jobs it waits for (their keys)
    label: str = ""

    RANK = {"base": 0, "model": 1, "cell": 2}


def plan_jobs(cells: list[Cell], runs_root: Path) -> dict[str, Job]:
    """The jobs of the unfinished ``cells``, keyed by the folder each one fills, with what each needs."""
    from aebench.harness.protocol.run_store import is_done
    from aebench.registry import method_class

    jobs: dict[str, Job] = {}
    for cell in cells:
        cell_dir = cell_folder(runs_root, cell)
        if is_done(cell_dir):
            continue
        needs: set[str] = set()
        if method_class(cell.method).has_base_model:
            base = str(runs_root / base_folder(cell.cfg))
            if not is_done(Path(base)):
                jobs.setdefault(base, Job("base", cell, label=f"base model of {cell.label}"))
                needs.add(base)
        model = str(runs_root / finetune_folder(cell.cfg))
        if not is_done(Path(model)):
            jobs.setdefault(model, Job("model", cell, set(needs), label=f"fine-tune of {cell.label}"))
            needs = {model}
        jobs[str(cell_dir)] = Job("cell", cell, needs, label=cell.label)
    return jobs


def _run_job(kind: str, cell: Cell, runs_root: str, registry: dict) -> CellOutcome | str | None:
    """In a pool process: a base or fine-tuned model (:func:`~aebench.harness.protocol.launchers.model_job`:
    None, or its error as text) or a cell."""
    from aebench.harness.protocol.launchers import _quiet, _remote_cell, model_job

    if kind == "cell":
        return _remote_cell(cell, runs_root, registry, say=_quiet)
    return model_job(kind, cell, runs_root, registry)


def run_pool(cells: list[Cell], runs_root: Path, progress: bool, workers: int) -> list[CellOutcome]:
    """Run the cells' jobs in ``workers`` processes, each as soon as what it needs is done."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from aebench.harness.protocol.launchers import _pool_error, _quiet
    from aebench.registry import REGISTERED

    registry = dict(REGISTERED)
    say = tqdm.write if progress else _quiet
    jobs = plan_jobs(cells, runs_root)
    order = {key: i for i, key in enumerate(jobs)}
    waiting = dict(jobs)
    finished: set[str] = set()  # jobs that ended, done or failed
    failed: dict[str, str] = {}  # model jobs that failed -> their error
    running: dict = {}
    outcomes: dict[str, CellOutcome] = {}
    try:
        with (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
            tqdm(
                total=len(jobs),
                desc=f"models and cells ({workers} workers)",
                unit="job",
                disable=not progress or not jobs,
                dynamic_ncols=True,
            ) as bar,
        ):
            while waiting or running:
                ready = _ready(waiting, finished, failed, order, workers - len(running))
                if not ready and not running:  # cannot happen by construction; never spin
                    raise RuntimeError(f"pool jobs wait on nothing that runs: {', '.join(waiting)}")
                for key in ready:
                    job = waiting.pop(key)
                    error = next((failed[n] for n in sorted(job.needs) if n in failed), None)
                    if error is not None:  # a model it needs failed: so does it, unrun
                        _finish(key, job, None, error, failed, outcomes, runs_root, say, bar)
                        finished.add(key)
                        continue
                    running[pool.submit(_run_job, job.kind, job.cell, str(runs_root), registry)] = key
                if not running:
                    continue  # only unrun jobs this round: what they freed is ready now
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    error = _pool_error(future)
                    _finish(key, jobs[key], None if error else future.result(), error, failed, outcomes, runs_root, say, bar)
                    finished.add(key)
    except BrokenProcessPool as exc:
        raise RuntimeError(
            "a worker process died (killed, or out of memory); finished cells are kept: run the same command again to resume"
        ) from exc
    return [outcomes.get(str(cell_folder(runs_root, c))) or CellOutcome(c, "skipped") for c in cells]


def _ready(waiting: dict[str, Job], finished: set[str], failed: dict[str, str], order: dict[str, int], slots: int) -> list[str]:
    """The waiting jobs whose needs have all ended: every one whose need failed (they take no
    worker), then up to ``slots`` others, models before cells, in plan order."""
    ready = sorted((k for k, j in waiting.items() if j.needs <= finished), key=lambda k: (Job.RANK[waiting[k].kind], order[k]))
    unrun = [k for k in ready if waiting[k].needs & failed.keys()]
    return unrun + [k for k in ready if k not in unrun][: max(0, slots)]


def _finish(key: str, job: Job, result, error: str | None, failed: dict[str, str], outcomes: dict, runs_root: Path, say, bar) -> None:
    """Record a job's end: a model's error fails what needs it; a cell's outcome is kept."""
    if job.kind == "cell":
        if isinstance(result, CellOutcome):
            outcome = result
        elif error is not None and any(n in failed for n in job.needs):
            outcome = fail_unrun(job.cell, runs_root, f"not run: {error}")
        else:
            outcome = CellOutcome(job.cell, "failed", error)
        outcomes[key] = outcome
        say(f"{job.cell.label}  ({job.cell.cell_id}) -> {outcome.status}" + (f": {outcome.error}" if outcome.error else ""))
        bar.set_postfix_str(f"{job.cell.row} / {job.cell.identity}")
    else:
        error = error or result
        if error:
            failed[key] = f"{job.label} failed: {error}"
        say(f"{job.label}: " + ("ready" if not error else f"FAILED: {error}"))
    bar.update(1)
