"""``launcher=slurm``: a protocol's cells as SLURM jobs, submitted through submitit.

Every base model the unfinished cells need is a job (one job array for all of them); the cells
that need one base model are a job array that waits for that base model's job
(``--dependency=afterany:<job>``); the cells of methods without a base model are one array with
no dependency. ``afterany`` rather than ``afterok``: a base job SLURM killed would leave cells
waiting on ``afterok`` pending forever (nobody follows a ``--detach``ed run), while under
``afterany`` they run and finish the base model themselves, under its lock, from its checkpoint;
a base model that failed makes them fail with their own message, as with ``launcher=local``.

Resources come from the ``slurm`` config section (``aebench/configs/sections/slurm.yaml``);
submitit's files and each job's log lie in ``<runs>/_slurm/<job id>_*``. The jobs read and
write the run store as the local launcher does, so the run store, the data and this Python
environment must be at the same paths on every node: a filesystem shared by the nodes. A job
SLURM kills (time limit, preemption, scancel) leaves its cell without ``done`` and its lock
released (an flock dies with its process): the same command resumes the cell from its
checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from tqdm import tqdm

from aebench.harness.protocol.cells import Cell, base_key
from aebench.harness.protocol.runner import CellOutcome
from aebench.harness.protocol.spec import Protocol

#: where submitit's files and the jobs' logs lie, under the run store root
JOBS_FOLDER = "_slurm"
#: squeue states of a job that has ended (any other state it shows means it is still queued or running)
ENDED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED"}
#: seconds a job that ended as if it returned may take to show its result file (a shared filesystem's caching)
RESULT_GRACE_S = 10.0
#: how squeue names a job it no longer lists (ended some minutes ago)
UNLISTED = "no longer listed by squeue"
#: states of a job SLURM stopped from outside (its cell resumes on the next run)
KILLED = {"CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "DEADLINE", "BOOT_FAIL", "REVOKED"}


@dataclass
class Submitted:
    """What one submission made: the jobs of the base models and of the cells (submitit jobs,
    with their cells) and the cells already done (not submitted)."""

    bases: list[tuple[Cell, Any]] = field(default_factory=list)
    cells: list[tuple[Cell, Any]] = field(default_factory=list)
    done: list[Cell] = field(default_factory=list)


def slurm_settings(protocol: Protocol, overrides: list[str]) -> dict:
    """The ``slurm`` section as a run's overrides and its protocol's settings leave it (checked
    like any config key), as a plain dict; cells never carry it (:data:`aebench.config.LAUNCHER_SECTIONS`)."""
    from omegaconf import OmegaConf

    from aebench.config import load_config

    cfg = load_config([o for o in overrides if not o.startswith("scale=")], extra=protocol.settings, scale=protocol.scale)
    return OmegaConf.to_container(cfg.slurm, resolve=True)


def require_slurm() -> None:
    """Refuse (RuntimeError, one line) before any work where this machine cannot submit jobs."""
    try:
        import submitit  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("launcher=slurm needs submitit: pip install 'aebench[slurm]'") from exc
    missing = [cmd for cmd in ("sbatch", "squeue", "srun") if shutil.which(cmd) is None]
    if missing:
        raise RuntimeError(
            f"launcher=slurm needs SLURM's {', '.join(missing)} on PATH: run it on a machine that submits to the cluster (a login node)"
        )


def sbatch_parameters(settings: dict, name: str, dependency: str | None = None) -> dict:
    """submitit's SlurmExecutor parameters for one array of jobs: the ``slurm`` section's
    resources (0 or "" = the site's default, so nothing is asked), a job name, a dependency."""
    params: dict[str, Any] = {"job_name": name, "time": int(settings["time_min"]), "cpus_per_task": int(settings["cpus_per_job"])}
    if str(settings.get("partition") or ""):
        params["partition"] = str(settings["partition"])
    if int(settings["gpus_per_job"]):
        params["gpus_per_node"] = int(settings["gpus_per_job"])
    if float(settings["mem_gb"]):
        params["mem"] = f"{max(1, round(float(settings['mem_gb']) * 1024))}M"
    if dependency:
        params["dependency"] = dependency
    extra = dict(settings.get("extra") or {})
    if extra:
        params["additional_parameters"] = extra
    return params


def sbatch_message(text: str) -> str:
    """sbatch's error output as one line (its ``sbatch: error:`` prefixes dropped)."""
    lines = [li.strip().removeprefix("sbatch: error:").strip() for li in str(text).splitlines()]
    return "; ".join(li for li in lines if li) or "no message"


def error_line(trace: str) -> str:
    """The last line of a Python traceback (``Type: message``), what a job's failure is named by."""
    lines = [li.strip() for li in str(trace).splitlines() if li.strip()]
    return lines[-1] if lines else "no error text"


def _submit_array(folder: Path, fn: Callable, calls: list[tuple], params: dict) -> list:
    """``fn(*args)`` for each of ``calls`` as one job array (a plain job when there is one), by
    an executor of its own (an executor keeps the parameters it was given: a dependency would
    carry over to the next array); sbatch's refusal becomes one RuntimeError line."""
    import submitit
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    executor = submitit.SlurmExecutor(folder=folder)
    executor.update_parameters(**params)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr; it is in the error below
            with executor.batch():
                jobs = [executor.submit(fn, *args) for args in calls]
    except (FailedJobError, FailedSubmissionError) as exc:
        raise RuntimeError(
            f"launcher=slurm: sbatch refused the jobs: {sbatch_message(str(exc))} (check the "
            f"slurm.* settings: aebench config show; slurm.extra names sbatch options)"
        ) from exc
    return jobs


def submit(cells: list[Cell], runs_root: Path, settings: dict) -> Submitted:
    """Submit the unfinished cells (and the base models they need) as SLURM jobs and return at
    once. A refused submission cancels what was already submitted and raises RuntimeError."""
    from aebench.harness.protocol.launchers import _bases_needed, _pool_base, _remote_cell
    from aebench.harness.protocol.run_store import cell_folder, is_done
    from aebench.registry import REGISTERED

    require_slurm()
    registry = dict(REGISTERED)  # methods a test or session registered here, for the jobs
    root = str(runs_root)
    out = Submitted(done=[c for c in cells if is_done(cell_folder(runs_root, c))])
    finished = {c.cell_id for c in out.done}
    todo = [c for c in cells if c.cell_id not in finished]
    if not todo:
        return out
    folder = runs_root / JOBS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"aebench-{todo[0].protocol}"
    bases = [c for c in _bases_needed(todo, runs_root) if not is_done(_base_dir(c, runs_root))]
    try:
        if bases:
            jobs = _submit_array(folder, _pool_base, [(c, root, registry) for c in bases], sbatch_parameters(settings, f"{name}-base"))
            out.bases = list(zip(bases, jobs))
        after = {base_key(c.cfg): job.job_id for c, job in out.bases}
        for key, group in _by_base(todo).items():
            dependency = f"afterany:{after[key]}" if key in after else None
            jobs = _submit_array(folder, _remote_cell, [(c, root, registry) for c in group], sbatch_parameters(settings, name, dependency))
            out.cells += list(zip(group, jobs))
    except BaseException:
        cancel(out)
        raise
    return out


def _base_dir(cell: Cell, runs_root: Path) -> Path:
    """Where the base model of ``cell`` is trained (as :func:`aebench.harness.protocol.runner.ensure_base`)."""
    from aebench.harness.protocol.run_store import base_folder

    return runs_root / base_folder(cell.cfg)


def _by_base(cells: list[Cell]) -> dict[str | None, list[Cell]]:
    """The cells grouped by the base model they need (None: their method has none), in order:
    one job array per group, waiting for that base model's job."""
    from aebench.registry import method_class

    groups: dict[str | None, list[Cell]] = {}
    for cell in cells:
        key = base_key(cell.cfg) if method_class(cell.method).has_base_model else None
        groups.setdefault(key, []).append(cell)
    return groups


def cancel(submitted: Submitted) -> None:
    """scancel every job of ``submitted`` (a half-made submission is taken back whole)."""
    ids = sorted({str(job.job_id).split("_")[0] for _, job in submitted.bases + submitted.cells})
    if ids:
        subprocess.run(["scancel", *ids], check=False, capture_output=True)


def job_lines(submitted: Submitted) -> list[str]:
    """The submitted jobs for a person: one line per job array, its id and what it runs."""
    lines = []
    for what, pairs in (("base models", submitted.bases), ("cells", submitted.cells)):
        arrays: dict[str, list[str]] = {}
        for _, job in pairs:
            array, _, task = str(job.job_id).partition("_")
            arrays.setdefault(array, []).append(task)
        for array, tasks in arrays.items():
            size = f"array of {len(tasks)}" if tasks != [""] else "1 job"
            lines.append(f"  job {array}: {what} ({size})")
    return lines


def queue_states() -> dict[str, str]:
    """This user's jobs as squeue shows them: job id (``<array>_<task>`` for array tasks) -> state.
    A job that ended some minutes ago (SLURM's MinJobAge) is no longer listed."""
    res = subprocess.run(["squeue", "--me", "-h", "-r", "-t", "all", "-o", "%i|%T"], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"launcher=slurm: squeue failed: {' '.join(res.stderr.split()) or res.returncode}")
    states = {}
    for line in res.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            states[job] = state.split()[0] if state else "UNKNOWN"
    return states


def read_result(job) -> tuple[str, Any] | None:
    """A finished job's ``(outcome, value)`` from submitit's result file: ``("success", what the
    function returned)`` or ``("error", the traceback text)``; None while there is none."""
    from submitit.core.utils import pickle_load

    path = Path(job.paths.result_pickle)
    if not path.exists():
        return None
    return pickle_load(path)


def _log(job) -> Path:
    return Path(job.paths.stderr)


def _log_tail(job) -> str:
    """The last line of a job's error log ("" when there is none): why a job that never ran its
    function ended (a node that cannot see this Python or the run store: no shared filesystem)."""
    try:
        return error_line(_log(job).read_text(errors="replace")[-4096:]) if _log(job).is_file() else ""
    except OSError:
        return ""


def _cell_outcome(cell: Cell, job, result: tuple[str, Any] | None, state: str) -> CellOutcome:
    """What a cell's job ended with: the cell's own outcome, or one line naming why it gave none."""
    if result is None and state in KILLED:
        return CellOutcome(
            cell,
            "failed",
            f"SLURM job {job.job_id} ended without finishing the cell ({state}); run "
            f"the same command again to resume it from its checkpoint [job log: {_log(job)}]",
        )
    if result is None:
        why = _log_tail(job)
        return CellOutcome(
            cell,
            "failed",
            f"SLURM job {job.job_id} ended without running the cell ({state})" + (f": {why}" if why else "") + f" [job log: {_log(job)}]",
        )
    outcome, value = result
    if outcome == "success":
        return value
    return CellOutcome(cell, "failed", f"{error_line(value)} (SLURM job {job.job_id}) [job log: {_log(job)}]")


def _base_line(cell: Cell, job, result: tuple[str, Any] | None, state: str) -> str:
    """What a base model's job ended with, for a person."""
    if result is None:
        return (
            f"base model of {cell.label}: SLURM job {job.job_id} ended without finishing it ({state}); the cells "
            "that need it train it themselves, from its checkpoint"
        )
    outcome, value = result
    if outcome == "success" and value is None:
        return f"base model of {cell.label}: ready"
    return f"base model of {cell.label}: FAILED: {value if outcome == 'success' else error_line(value)}"


def follow(submitted: Submitted, poll_s: float = 10.0, progress: bool = True) -> list[CellOutcome]:
    """Wait until every job of ``submitted`` has ended, with a progress bar over the cells; the
    cells' outcomes in the order submitted (cells already done: ``skipped``)."""
    say = tqdm.write if progress else (lambda *_: None)
    waiting = [("base", c, j) for c, j in submitted.bases] + [("cell", c, j) for c, j in submitted.cells]
    ended_at: dict[str, float] = {}
    outcomes = {c.cell_id: CellOutcome(c, "skipped") for c in submitted.done}
    with tqdm(total=len(submitted.cells), desc="cells (slurm)", unit="cell", disable=not progress, dynamic_ncols=True) as bar:
        while waiting:
            states = queue_states()
            still = []
            for kind, cell, job in waiting:
                result = read_result(job)
                state = states.get(str(job.job_id), UNLISTED)
                if result is None and state not in ENDED and state != UNLISTED:
                    still.append((kind, cell, job))
                    continue
                if (
                    result is None
                    and state in ("COMPLETED", "FAILED", UNLISTED)
                    and time.monotonic() - ended_at.setdefault(job.job_id, time.monotonic()) < RESULT_GRACE_S
                ):
                    still.append((kind, cell, job))  # ended as if it returned: its result file may be on its way
                    continue
                if kind == "base":
                    say(_base_line(cell, job, result, state))
                    continue
                outcome = _cell_outcome(cell, job, result, state)
                outcomes[cell.cell_id] = outcome
                say(f"{cell.label}  ({cell.cell_id}) -> {outcome.status}" + (f": {outcome.error}" if outcome.error else ""))
                bar.update(1)
            waiting = still
            if waiting:
                time.sleep(poll_s)
    order = [c for c in submitted.done] + [c for c, _ in submitted.cells]
    return [outcomes[c.cell_id] for c in order]


def run_slurm(cells: list[Cell], runs_root: Path, settings: dict, progress: bool = True) -> list[CellOutcome]:
    """Submit the cells as SLURM jobs and follow them to their end (:func:`submit`, :func:`follow`)."""
    submitted = submit(cells, runs_root, settings)
    if progress:
        for line in job_lines(submitted):
            tqdm.write(line)
    outcomes = follow(submitted, float(settings.get("poll_s", 10.0)), progress)
    order = {c.cell_id: i for i, c in enumerate(cells)}
    return sorted(outcomes, key=lambda o: order[o.cell.cell_id])
