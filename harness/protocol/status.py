"""What a protocol's cells are doing, read from the run store alone, whichever launcher runs
them (local, ``workers=N``, ray, slurm): `aebench status`.

A cell is in the first of these states that holds:

* **done**: its ``done`` marker exists.
* **running**: a live process runs it (:func:`runner_alive`: the cell lock is held, and on the
  host that running.json names, its pid is alive too).
* **failed**: its failed.json holds the error of its last run (the runner writes it when the
  cell raises and removes it when the cell runs again).
* **waiting**: the rest: *not started* (the protocol expands to it and it has no folder, or a
  folder without progress), *interrupted* (running.json names a runner that is gone: killed, out
  of memory, a lost node, a batch job past its time limit; the next run resumes it) or
  *started* (progress but no record of who ran it: written by an aebench before running.json).

The cells the protocol expands to (with the settings given, as `aebench run` takes them) are
listed even without a folder; cells in the store that the expansion does not name (run with
another scale, other overrides or an older protocol file) are listed too, marked ``planned:
false``. Where the protocol's data is not prepared yet, what the store holds is shown alone.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from aebench.harness.protocol.run_store import DONE, FAILED, PROTOCOL_MARKS, RUNNING, is_done, last_log_line, lock_held, read_marker

STATES = ("done", "running", "waiting", "failed")
#: what makes a folder of a protocol's store a cell (its plots/ folder holds none of them)
CELL_FILES = ("config.yaml", "log.txt", RUNNING, FAILED, DONE)


class StoreError(ValueError):
    """The run store named is none (missing, or no protocol ever ran into it)."""


@dataclass
class CellStatus:
    cell_id: str
    state: str  # one of STATES
    label: str
    detail: str = ""  # waiting: not started | interrupted | started; running: "" or why it is unverified
    planned: bool | None = True  # one of the cells the protocol expands to with the settings given (None: unknown)
    host: str | None = None
    job: str | None = None
    pid: int | None = None
    since: str | None = None  # running, interrupted: started; failed: failed at; done: finished (UTC)
    last_log: str | None = None
    error: str | None = None
    dir: str | None = None


@dataclass
class StoreStatus:
    protocol: str
    scale: str
    store: Path
    cells: list[CellStatus] = field(default_factory=list)
    note: str | None = None  # why the expansion's waiting cells are not listed

    def counts(self) -> dict[str, int]:
        return {s: sum(c.state == s for c in self.cells) for s in STATES}

    def to_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "scale": self.scale,
            "store": str(self.store),
            "note": self.note,
            "counts": self.counts(),
            "cells": [asdict(c) for c in self.cells],
        }


def pid_alive(pid) -> bool | None:
    """Whether a process with this id exists on this host; None where it cannot be asked
    (Windows, where signal 0 would interrupt the process instead)."""
    if os.name == "nt":
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except OSError:
        return False
    return True


def runner_alive(record: dict | None, held: bool | None, here: str) -> bool | None:
    """Whether the runner of a cell is alive; None where it cannot be told from here.

    The cell lock decides (:func:`~aebench.harness.protocol.run_store.lock_held`: a flock, which
    the kernel releases when its holder dies, so a crashed runner never leaves it held). On the
    host that running.json names, its pid must be alive as well: a free lock with a live pid is
    a pid reused by another program, and a held lock with a dead pid is no longer the recorded
    runner's. Where the lock cannot be probed (a filesystem without flock) the pid alone decides
    on its host, and nothing can be told from another host. Across hosts this trusts what the
    run store's locks already rely on (two runs of one cell on two hosts never both run it): a
    filesystem that shares locks between hosts (NFS with lockd, GPFS, Lustre mounted ``flock``).
    """
    if record is not None and record.get("host") == here:
        alive = pid_alive(record.get("pid"))
        if alive is not None:
            return alive and held is not False
    return held


def store_label(cell_dir: Path) -> str:
    """A store cell's name for a person, from its config.yaml (the same words as its Cell's label)."""
    import yaml

    from aebench.harness.protocol.cells import cell_label

    try:
        cfg = yaml.safe_load((cell_dir / "config.yaml").read_text())
        run = cfg["run"]
        return cell_label(run["row"], run["identity"], cfg["data"]["clip_seconds"], cfg["train"]["iters"], run["audio"], cfg["seed"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return "(no readable config.yaml)"


def _when(text: str | None) -> str | None:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (UTC where it says so), the text itself when unparsable."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        return text.strip()
    return t.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if t.utcoffset() is not None and not t.utcoffset() else "")


def folder_status(cell_dir: Path, label: str | None = None, here: str | None = None) -> CellStatus:
    """The state of one cell folder (see the module's docstring for how each is told)."""
    cell = CellStatus(cell_dir.name, "waiting", label or store_label(cell_dir), "not started", dir=str(cell_dir))
    if not is_cell_folder(cell_dir):
        return cell
    if is_done(cell_dir):
        cell.state, cell.detail = "done", ""
        cell.since = _when((cell_dir / DONE).read_text(errors="replace"))
        return cell
    record = read_marker(cell_dir / RUNNING)
    held = lock_held(cell_dir)
    if record is not None or held:
        alive = runner_alive(record, held, here or socket.gethostname())
        record = record or {}
        cell.host, cell.job, cell.pid = record.get("host"), record.get("job"), record.get("pid")
        cell.since, cell.last_log = _when(record.get("started")), last_log_line(cell_dir)
        if alive is not False:
            cell.state = "running"
            cell.detail = "" if alive else "unverified: the cell lock cannot be probed from this host"
            return cell
        cell.detail = "interrupted"
    if (cell_dir / FAILED).exists():
        failure = read_marker(cell_dir / FAILED) or {"error": "(failed.json unreadable; see log.txt)"}
        cell.state, cell.detail, cell.error = "failed", "", failure.get("error")
        cell.host, cell.job, cell.pid = failure.get("host"), failure.get("job"), failure.get("pid")
        cell.since, cell.last_log = _when(failure.get("time")), None
        return cell
    if cell.detail != "interrupted":
        cell.detail, cell.last_log = "started", last_log_line(cell_dir)
    return cell


def is_cell_folder(path: Path) -> bool:
    """A folder of the protocol's store that a run wrote into (not plots/, not an empty folder)."""
    return path.is_dir() and any((path / name).exists() for name in CELL_FILES)


def check_store(runs_root: Path, protocol: str) -> None:
    """Refuse (StoreError) a run store that is none: missing, or no protocol ever claimed it
    (every `aebench run` records its protocol in ``_protocols/`` before anything else)."""
    if not runs_root.is_dir():
        raise StoreError(f"no run store at {runs_root}: nothing has run there (name the store `aebench run` wrote into with --runs DIR)")
    if not (runs_root / PROTOCOL_MARKS).is_dir() and not (runs_root / protocol).is_dir():
        raise StoreError(
            f"{runs_root} holds no run store: no protocol has run there (name the store `aebench run` wrote into with --runs DIR)"
        )


def protocol_status(
    runs_root: Path, protocol_name: str, overrides: list[str] = (), data: str | None = None, methods: list[str] | None = None
) -> StoreStatus:
    """Every cell of the protocol in its state: the expansion's cells first (in its order), then
    the store's other cells. Refuses (ValueError) an unknown protocol, a store that is none, or a
    store folder that holds another protocol file of the same name."""
    from aebench.harness.protocol.plan import DataNotReady, expand_prepared, load_at_scale
    from aebench.harness.protocol.run_store import check_protocol_folder

    runs_root = Path(runs_root)
    protocol = load_at_scale(protocol_name, list(overrides))
    check_store(runs_root, protocol.name)
    check_protocol_folder(runs_root, protocol)
    out = StoreStatus(protocol.name, protocol.scale, runs_root / protocol.name)
    here = socket.gethostname()
    try:
        planned = expand_prepared(protocol, list(overrides), data, methods)
    except DataNotReady as exc:
        planned, out.note = [], f"{exc}: waiting cells not listed; showing what the store holds"
    seen = set()
    for cell in planned:
        folder = out.store / cell.cell_id
        seen.add(cell.cell_id)
        out.cells.append(folder_status(folder, cell.label, here))
    if out.store.is_dir():
        for folder in sorted(out.store.iterdir()):
            if folder.name not in seen and is_cell_folder(folder):
                cell = folder_status(folder, here=here)
                cell.planned = None if out.note else False  # not in the expansion; unknown without one
                out.cells.append(cell)
    return out
