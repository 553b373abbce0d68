"""Building a prepared identity (a real clip's or a synthetic one) so that concurrent runs
cannot corrupt it: one process at a time builds a given identity (a lock beside it; the other
waits, then finds it done), into a staging folder unique to that process and hidden from
:func:`aebench.data.identity.list_identities`, renamed into place only when complete."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from filelock import FileLock

#: an identity's name: a plain folder name (no path separators, no leading dot, no "..")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class WriteError(RuntimeError):
    """An identity could not be written (a full disk, a read-only folder); the message names the
    folder, and nothing half-written is left behind."""


def write_failure(exc: OSError, where: Path) -> str:
    """One line for a failed write under ``where`` (a full disk, a read-only folder, no
    permission): the folder, the file when the error names one, and the system's reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    at = f", at {exc.filename}" if exc.filename and str(exc.filename) != str(where) else ""
    return f"{where}: cannot be written ({reason}{at}); nothing was kept"


def check_name(name: str, what: str = "identity name") -> str:
    """``name`` when it is a plain folder name that stays inside its parent; a ValueError otherwise."""
    if not NAME.match(str(name)) or ".." in str(name) or str(name).endswith(".partial"):
        raise ValueError(
            f"{what} {name!r} must be a plain folder name (letters, digits, _ . + -; no '/', "
            f"no leading dot, no '..', not ending in .partial)"
        )
    return str(name)


def identity_lock(out: Path, name: str) -> FileLock:
    """The lock held while identity ``name`` is built under ``out`` (in its hidden ``.locks/``)."""
    locks = Path(out) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / f"{name}.lock"))


def staging_dir(out: Path, name: str) -> Path:
    """A fresh staging folder for ``name`` under ``out``, unique to this process."""
    tmp = Path(out) / f".{name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def is_staging(path: Path) -> bool:
    """A folder that is being (or was, by a process that died) built, never data."""
    return path.name.startswith(".") or path.name.endswith(".partial")


def publish(tmp: Path, final: Path) -> Path:
    """Move the complete staging folder ``tmp`` to ``final`` (replacing an outdated one)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
