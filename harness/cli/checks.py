"""Checks of the command line's own arguments, made before any work starts (an output never
lands on an input, a destination can be written), and the one line a write that fails anyway
(a full disk) ends in."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click


def _link_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a symbolic link (a loop, or a link to nothing); None when it
    is no link or a working one. Written through, either fails late or replaces the link."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as exc:
        return "a symbolic link loop" if exc.errno == errno.ELOOP else "a symbolic link to nothing (dangling)"
    return None


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written in (a broken link on the way, a file in the way,
    no write permission); None when it can."""
    for probe in (folder, *folder.parents):
        problem = _link_problem(probe)
        if problem:
            return f"{probe} is {problem}"
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def writable_folder(path: Path, option: str) -> Path:
    """``path`` when it is, or can be created as, a writable folder; a one-line usage error naming
    ``option`` otherwise (a file, a read-only place, a broken symbolic link)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{option} {path} is a file; name a folder")
    problem = _folder_problem(path)
    if problem:
        raise click.UsageError(f"{option} {path}: {problem}; name a folder you can write to")
    return path


def writable_file(path: Path, option: str) -> Path:
    """``path`` when a file can be written there (checked before the work whose result it holds);
    a one-line usage error naming ``option`` otherwise (a folder, a broken symbolic link, a
    folder that cannot be written in)."""
    path = Path(path)
    if path.is_dir():
        raise click.UsageError(f"{option} {path} is a folder; name a file")
    problem = _link_problem(path)
    problem = f"{path} is {problem}" if problem else _folder_problem(path.parent)
    if problem:
        raise click.UsageError(f"{option} {path}: {problem}; name a file you can write")
    return path


def _about(filename, path: Path) -> bool:
    """Whether an error's ``filename`` is the destination ``path``, inside it, beside it (a file
    written with it) or in a temporary folder beside it."""
    f, p = Path(os.path.abspath(filename)), Path(os.path.abspath(path))
    return f == p or p in f.parents or f.parent == p.parent or f.parent.parent == p.parent


@contextmanager
def reported(option: str, path) -> Iterator[None]:
    """An operating-system error while writing ``path`` (a full disk, a folder made read-only
    meanwhile) as one line naming it, not a traceback; one about another file (an input that
    cannot be read) as one line naming that file. An OSError without an errno is a message of
    aebench's own (e.g. "no finished cells"), passed on as it is."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None:
            raise
        if exc.filename and not _about(exc.filename, Path(path)):
            raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from exc
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise click.ClickException(f"cannot write {option} {path}: {exc.strerror or exc}{where}") from exc


@dataclass(frozen=True)
class Output:
    """What a command writes: ``option`` names ``path`` (a ``kind``, "file" or "folder"); ``files``
    are what it writes there (default ``path`` itself; e.g. metrics.json in a folder, a PNG beside
    a video); ``whole``: the folder is replaced as a whole, so nothing in it may be an input."""

    option: str
    path: Path
    kind: str = "file"
    files: tuple[Path, ...] = ()
    whole: bool = False

    def written(self) -> tuple[Path, ...]:
        return self.files or (Path(self.path),)


def _paths(value) -> list[Path]:
    """``value`` (a path, None, or an iterable of them) as a flat list of paths."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [p for v in value for p in _paths(v)]


def _same(a: Path, b: Path) -> bool:
    """One file: the same path once links are followed, or the same inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _inside(inner: Path, outer: Path) -> bool:
    """``inner`` lies strictly within the folder ``outer`` (links followed)."""
    return Path(os.path.realpath(outer)) in Path(os.path.realpath(inner)).parents


def _clash(out: Output, label: str, given: Path) -> str | None:
    """Why writing ``out`` would overwrite the input ``given`` (named by ``label``), or None."""
    advice = f"choose another {out.kind}"
    for file in (Path(out.path), *out.written()):
        if _same(file, given):
            what = "is" if file == Path(out.path) else f"would overwrite {file}, which is"
            return f"{out.option} {out.path} {what} the {label} input; {advice}"
        if given.is_dir() and _inside(file, given):
            return f"{out.option} {out.path} is inside the {label} input {given}; {advice}"
    if out.whole and _inside(given, Path(out.path)):
        return f"{out.option} {out.path} holds the {label} input {given}, and would be replaced; {advice}"
    return None


def inputs_untouched(outputs: Iterable[Output | None], inputs: Mapping[str, object]) -> None:
    """Refuse (a usage error, before any work) an output that would overwrite an input: the same
    path, the same file by another name (a symbolic or hard link), a path inside an input folder,
    or a replaced folder holding an input; and two outputs that are one file (the second would
    overwrite the first). ``inputs``: the option naming each, to a path, None or several paths."""
    outputs = [o for o in outputs if o is not None]
    named = [(label, path) for label, value in inputs.items() for path in _paths(value)]
    for out in outputs:
        for label, given in named:
            problem = _clash(out, label, given)
            if problem:
                raise click.UsageError(problem)
    seen: list[tuple[Output, Path]] = []
    for out in outputs:
        for file in out.written():
            for other, earlier in seen:
                if _same(file, earlier):
                    both = (
                        f"names {file} twice (what it writes beside it too)"
                        if other is out
                        else f"and {other.option} {other.path} would both write {file}"
                    )
                    raise click.UsageError(f"{out.option} {out.path} {both}; choose another {out.kind}")
            seen.append((out, file))


def comma_list(text: str | None) -> list[str] | None:
    """``--metrics a, b`` as ``["a", "b"]`` (blank items dropped); None when the option is not given."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None
