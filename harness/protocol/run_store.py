"""The run store: one directory per cell, atomic writes, a lock per cell, ``done`` written last.

``<root>/<protocol>/<cell-id>/``: config.yaml, cell.json, metrics.json, frames.csv,
render.mp4, render_frames/, log.txt, done; while a process runs the cell, running.json (who:
host, pid, start, batch job), and after a failure failed.json (the error), each cleared when
the cell is run again (:func:`mark_running`, :func:`mark_failed`). Base models are shared by every protocol under
``<root>/_base/<method>-<base-key>/`` (base.json points at the checkpoint, done written last);
fine-tuned models by every cell that differs only after fine-tuning (driving audio, frames
rendered, row label, protocol) under ``<root>/_finetune/<method>-<key>/`` (finetune.json, the
checkpoint/ and its log). ``<root>/_protocols/<protocol>.json`` names the protocol file (and
the sha256 of its text) whose cells the protocol's folder holds.

Writing (atomic writes, locks, ``done`` markers, the typed records of
:mod:`aebench.harness.protocol.records`: :func:`write_record`, :func:`read_record`) and reading
(:func:`read_cells`: the finished cells a report shows) both live here, so the layout is known in
one place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import sys
from datetime import datetime, UTC
from pathlib import Path

from filelock import FileLock

from aebench.atomic import atomic_files
from aebench.harness.protocol.records import CellRecord, Record, RecordError
from aebench.json_numbers import read_json

DONE = "done"


def cell_folder(runs_root: Path, cell) -> Path:
    """``<root>/<protocol>/<cell-id>``: the folder of a cell (a
    :class:`~aebench.harness.protocol.cells.Cell`) in the store at ``runs_root``."""
    return Path(runs_root) / cell.protocol / cell.cell_id


def base_folder(cfg) -> str:
    """``_base/<method>-<base-key>``: where the base model of a cell with config ``cfg`` is
    trained, relative to the store's root (shared by every cell with its key)."""
    from aebench.harness.protocol.cells import base_key

    return f"_base/{cfg.method}-{base_key(cfg)}"


def finetune_folder(cfg) -> str:
    """``_finetune/<method>-<key>``: where the fine-tuned model of a cell with config ``cfg`` is
    trained, relative to the store's root (shared by the cells that differ only after fine-tuning)."""
    from aebench.harness.protocol.cells import finetune_key

    return f"_finetune/{cfg.method}-{finetune_key(cfg)}"


def atomic_write(path: Path, text: str) -> None:
    """``text`` into ``path``, whole or not at all (:func:`atomic_files`)."""
    with atomic_files(Path(path)) as (tmp,):
        tmp.write_text(text)


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def write_record(folder: Path, record: Record) -> None:
    """``record`` into its file in ``folder`` (``cell.json``, ``base.json``, ``finetune.json``), atomically."""
    write_json(Path(folder) / record.FILE, record.to_json())


def read_record(folder: Path, kind: type[Record]):
    """The ``kind`` record in ``folder`` (any layout version this aebench reads); a ValueError naming
    the file when it is damaged or of a newer layout."""
    path = Path(folder) / kind.FILE
    try:
        return kind.from_json(read_json(path, kind.WHAT), str(path))
    except RecordError as exc:
        raise ValueError(str(exc)) from None


def is_done(cell_dir: Path) -> bool:
    return (cell_dir / DONE).exists()


def mark_done(cell_dir: Path) -> None:
    atomic_write(cell_dir / DONE, datetime.now(UTC).isoformat() + "\n")


def lock_path(cell_dir: Path) -> Path:
    """The lock file of a cell (or base model) folder: beside it, so it exists before the folder."""
    return cell_dir.parent / f".{cell_dir.name}.lock"


def cell_lock(cell_dir: Path, timeout: float = -1) -> FileLock:
    """An exclusive lock beside the cell directory (so a concurrent run waits, then skips it)."""
    cell_dir.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path(cell_dir)), timeout=timeout)


def lock_held(cell_dir: Path) -> bool | None:
    """Whether some process holds the cell's lock now; None where this system cannot tell (no
    flock, a filesystem without it, an unreadable lock file). Probed with a non-blocking
    *shared* flock on a read-only descriptor: it never creates the lock file, never conflicts
    with another probe, and keeps a runner waiting at most for the probe itself. flock (what
    :class:`FileLock` takes) is released by the kernel when its holder dies, so a held lock
    means a live runner; across hosts that holds where the filesystem shares locks (NFS with
    lockd, GPFS, Lustre mounted with ``flock``)."""
    import errno

    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(lock_path(cell_dir), os.O_RDONLY)
    except FileNotFoundError:
        return False  # never locked: a holder opens (creates) the file first
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return True if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


#: in a cell folder while a process runs it: who (:func:`runner_record`)
RUNNING = "running.json"
#: in a cell folder whose last run failed: the error and who ran it
FAILED = "failed.json"


def job_id(env: dict | None = None) -> str | None:
    """The batch job this process runs in, as its scheduler shows it: a SLURM array task as
    ``<array job>_<task>`` (squeue's form), else the SLURM job id, else Ray's job and task ids
    where this process is a Ray worker (Ray already imported: never imported for this)."""
    env = os.environ if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return str(env["SLURM_JOB_ID"])
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            ctx = ray.get_runtime_context()
            task = ctx.get_task_id()
            return f"ray {ctx.get_job_id()}" + (f" task {task}" if task else "")
    except Exception:  # noqa: BLE001 - who runs a cell is a courtesy; it never stops one
        return None
    return None


def runner_record() -> dict:
    """Who runs a cell: host name, pid, start time (UTC) and batch job (:func:`job_id`)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds"), "job": job_id()}


def mark_running(cell_dir: Path) -> None:
    """Record this process as the cell's runner (under the cell lock); a former failure is cleared."""
    write_json(cell_dir / RUNNING, runner_record())
    (cell_dir / FAILED).unlink(missing_ok=True)


def clear_running(cell_dir: Path) -> None:
    """The cell is no longer run by anyone (it finished or failed)."""
    (cell_dir / RUNNING).unlink(missing_ok=True)


def mark_failed(cell_dir: Path, error: str) -> None:
    """Record the cell's failure (its one-line error, when, who ran it) for `aebench status`;
    the traceback is in log.txt."""
    who = read_marker(cell_dir / RUNNING) or runner_record()
    write_json(
        cell_dir / FAILED,
        {
            "error": " ".join(str(error).split()),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": who.get("host"),
            "pid": who.get("pid"),
            "job": who.get("job"),
        },
    )
    clear_running(cell_dir)


def read_marker(path: Path) -> dict | None:
    """A small JSON record of the store (running.json, failed.json); None when absent or damaged
    (a record half-written by a killed process is no reason to stop a status report)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def log_line(cell_dir: Path, text: str) -> None:
    cell_dir.mkdir(parents=True, exist_ok=True)
    with open(cell_dir / "log.txt", "a") as fh:
        fh.write(f"[{datetime.now().strftime('%H:%M:%S')}] {text}\n")


def last_log_line(cell_dir: Path, tail: int = 8192) -> str | None:
    """The last non-blank line of the cell's log.txt (read from its end: a log grows with
    training), None when there is none."""
    try:
        with open(cell_dir / "log.txt", "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - tail))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    return next((li.strip() for li in reversed(lines) if li.strip()), None)


def finished_cells(protocol_dir: Path) -> list[Path]:
    if not protocol_dir.is_dir():
        return []
    return sorted(p for p in protocol_dir.iterdir() if p.is_dir() and is_done(p))


#: the folder of the run store that names, per protocol folder, the protocol file its cells came from
PROTOCOL_MARKS = "_protocols"


def _protocol_source(spec) -> dict:
    """Which protocol file ``spec`` is (a shipped one by name, wherever aebench is installed;
    another by its resolved path) and the sha256 of its text."""
    import hashlib

    from aebench.paths import protocols_dir

    path = Path(spec.path) if spec.path else None
    shipped = path is not None and path.resolve().parent == protocols_dir().resolve()
    source = f"aebench:{path.stem}" if shipped else (str(path.resolve()) if path else f"(unnamed) {spec.name}")
    return {"name": spec.name, "source": source, "sha256": hashlib.sha256((spec.text or "").encode()).hexdigest()}


def check_protocol_folder(runs_root: Path, spec, claim: bool = False) -> None:
    """Refuse (ValueError) a protocol whose store folder holds the cells of another protocol
    file of the same name and other content (a user protocol named ``smoke`` would otherwise
    pool with the shipped smoke's cells); ``claim`` records ``spec`` as the folder's protocol
    when none is recorded. The same file edited, or a copy with the same text, is the same."""
    mark = Path(runs_root) / PROTOCOL_MARKS / f"{spec.name}.json"
    mine = _protocol_source(spec)
    if not mark.is_file() and not claim:
        return
    mark.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(mark) + ".lock"):  # two runs of different files of one name: one claims, one is refused
        try:
            theirs = read_json(mark, "protocol record") if mark.is_file() else None
        except ValueError:
            theirs = None  # a damaged record is claimed again
        if isinstance(theirs, dict):
            if theirs.get("source") != mine["source"] and theirs.get("sha256") != mine["sha256"]:
                raise ValueError(
                    f"the run store folder {Path(runs_root) / spec.name} holds the cells of another "
                    f"protocol named {spec.name!r} ({theirs.get('source')}); {mine['source']} has other "
                    f"content: give it its own name (name: ... in the file) or its own store (--runs DIR)"
                )
            return
        if claim:
            write_json(mark, mine)


def _read_config(cell_dir: Path) -> dict | None:
    """A cell's resolved config (``config.yaml``), None when absent."""
    import yaml

    path = cell_dir / "config.yaml"
    if not path.exists():
        return None
    try:
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise ValueError(
            f"cell config {path} is not valid YAML ({' '.join(str(exc).split())}); a damaged cell: delete its folder and run again"
        ) from exc


def read_cells(runs_root: Path, protocol: str) -> list[dict]:
    """One dict per grid point of the finished cells: the cell record's fields (today's layout,
    whatever version wrote it) plus ``summary``,
    ``missing``, ``info``, ``dir`` and ``superseded`` (the ids of older finished cells of the
    same grid point). Two cells share a grid point when they ran with other settings (the
    protocol or an override changed since); only the most recently finished one is reported,
    so a table never pools different experiments as if they were repeats."""
    latest: dict[str, dict] = {}
    pdir = Path(runs_root) / protocol
    if not pdir.is_dir():
        return []
    for d in sorted(pdir.iterdir()):
        if not is_done(d) or not (d / "cell.json").exists():
            continue
        cell = read_cell(d)
        key = cell["key"]
        old = latest.get(key)
        if old is not None:
            new, gone = (cell, old) if cell["finished"] >= old["finished"] else (old, cell)
            new["superseded"] = old["superseded"] + cell["superseded"] + [gone["dir"].name]
            cell = new
        latest[key] = cell
    return list(latest.values())


def read_cell(cell_dir: Path) -> dict:
    """A finished cell as reports read it: its record's fields (today's layout, whatever version
    wrote it) plus ``key``, ``summary``, ``missing``, ``info``, ``dir``, ``finished``,
    ``superseded`` and ``config``."""
    from aebench.eval.api import read_metrics

    record = read_record(cell_dir, CellRecord)
    metrics = read_metrics(cell_dir)
    cell = {**{k: v for k, v in record.to_json().items() if k != "schema"}, "key": record.grid_key}
    cell.update(
        summary=metrics["summary"],
        missing=metrics.get("missing", {}),
        info=metrics.get("info", {}),
        dir=cell_dir,
        finished=(cell_dir / DONE).stat().st_mtime,
        superseded=[],
        config=_read_config(cell_dir),
    )
    return cell


def unfinished_rows(runs_root: Path, protocol: str) -> dict[str, int]:
    """Rows of ``protocol`` with started but unfinished cells (no ``done``): row -> how many."""
    import yaml

    out: dict[str, int] = {}
    pdir = Path(runs_root) / protocol
    if not pdir.is_dir():
        return out
    for d in sorted(pdir.iterdir()):
        if d.is_dir() and not is_done(d) and (d / "config.yaml").exists():
            try:
                row = str(yaml.safe_load((d / "config.yaml").read_text())["run"]["row"])
            except (yaml.YAMLError, KeyError, TypeError):
                row = f"(cell {d.name})"
            out[row] = out.get(row, 0) + 1
    return out


def training_curve(cell_dir: Path) -> list[dict]:
    """The ``step N k=v ...`` lines of a cell's (or a model folder's) ``log.txt`` as dicts, one per
    step: where a resumed attempt logs steps again (from its checkpoint on), its lines replace the
    earlier attempt's."""
    log = Path(cell_dir) / "log.txt"
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
        if rows and row["step"] <= rows[-1]["step"]:
            rows = [r for r in rows if r["step"] < row["step"]]
        rows.append(row)
    return rows


#: records whose paths a moved folder rewrites (checkpoints, configs, logs)
RECORDS = (".json", ".yaml", ".yml", ".txt", ".log")


def rebase(folder: Path, moves: dict[str, str]) -> None:
    """The paths under each folder ``moves`` maps (one machine's -> the other's) rewritten in the
    records under ``folder`` (JSON and YAML values, text logs): a base model's ``base.json`` names
    its checkpoint, which must be found where the folder now lies."""
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix in RECORDS:
            _rebase_file(path, moves)


def _rebase_file(path: Path, moves: dict[str, str]) -> None:
    """One record rewritten where a path in it moved: JSON and YAML value by value (parsed, so
    quoting and line folding do not hide a path), text in one pass (a moved path is not moved twice)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return
    if path.suffix in (".json", ".yaml", ".yml"):
        import yaml

        is_json = path.suffix == ".json"
        try:
            data = json.loads(text) if is_json else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError):
            return
        moved = _moved(data, moves)
        if json.dumps(moved, default=str) == json.dumps(data, default=str):  # (NaN != NaN: compare the text)
            return
        new = json.dumps(moved, indent=2, default=str) + "\n" if is_json else yaml.safe_dump(moved, sort_keys=False)
    else:
        olds = "|".join(map(re.escape, sorted(moves, key=len, reverse=True)))
        new = re.sub(f"(?:{olds})" + r"""(?=[/\s"',:;)\]}>]|$)""", lambda m: moves[m.group(0)], text, flags=re.MULTILINE)
    if new != text:
        path.write_text(new)


def _moved(value, moves: dict[str, str]):
    """``value`` (parsed JSON or YAML) with every string that is one of ``moves``' folders, or a
    path under one, moved to the other folder."""
    if isinstance(value, dict):
        return {k: _moved(v, moves) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, moves) for v in value]
    if isinstance(value, str):
        for old, to in sorted(moves.items(), key=lambda m: -len(m[0])):
            if value == old or value.startswith(old + "/"):
                return to + value[len(old) :]
    return value


def adopt_earlier(runs_root: Path, cells: list) -> list[str]:
    """Give today's names to the folders a store written before the settings tree keeps ``cells``'
    finished work under (:func:`aebench.harness.protocol.cells.legacy_folders`: the same settings,
    hashed as then), so that work is found, not redone: each finished legacy folder whose today's
    folder is absent is renamed, the paths in the moved folders' records follow, and a moved cell's
    record and config take today's id and form. Returns the folders moved (``old -> new``)."""
    from aebench.harness.protocol.cells import LEGACY_SCHEMES, legacy_folders

    root = Path(runs_root)
    moves: dict[str, str] = {}
    adopted_cells = []
    for cell in cells:
        new = {"cell": f"{cell.protocol}/{cell.cell_id}", "base": base_folder(cell.cfg), "finetune": finetune_folder(cell.cfg)}
        for scheme in LEGACY_SCHEMES:  # the newest first: a store holds one scheme's names
            old = legacy_folders(cell.cfg, scheme)
            for kind in ("base", "finetune", "cell"):
                src, dst = root / old[kind], root / new[kind]
                if str(src) in moves or src == dst or not is_done(src) or dst.exists():
                    continue
                with cell_lock(src):
                    if not is_done(src) or dst.exists():
                        continue
                    src.rename(dst)
                moves[str(src)] = str(dst)
                if kind == "cell":
                    adopted_cells.append((cell, dst))
    for dst in moves.values():
        rebase(Path(dst), moves)
    for cell, dst in adopted_cells:
        from aebench.config import to_yaml

        record = read_record(dst, CellRecord)
        write_record(dst, dataclasses.replace(record, cell_id=cell.cell_id))
        atomic_write(dst / "config.yaml", to_yaml(cell.cfg))
        log_line(dst, f"adopted from a store written by an earlier version (was {Path(record.cell_id).name})")
    return [f"{Path(a).relative_to(root)} -> {Path(b).relative_to(root)}" for a, b in moves.items()]
