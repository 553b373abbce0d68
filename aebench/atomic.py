"""Writing files whole or not at all: a command's outputs appear complete, together, or not at
all (a full disk or a read-only folder leaves nothing half-written behind). The foundation of
every writer, metrics and run store alike."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; those created, deepest first (so a write that
    fails can take them away again)."""
    made, probe = [], folder
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        made.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


@contextmanager
def atomic_files(*paths: Path) -> Iterator[tuple[Path, ...]]:
    """Temporary paths for ``paths`` (same names, each in a hidden ``.<name>.*.partial`` folder
    beside its destination), renamed onto them, in order, when the block ends without an error.
    When it raises (a full disk, a read-only folder), the temporary folders and any folder created
    for the destinations are removed: a reader never sees a half-written file, and a failed write
    leaves none of a command's outputs. The renames follow one another, so only a crash of the
    process between two of them could leave some outputs new and others old. Same names, so writers that go by the suffix (images,
    videos) work unchanged; folders, so whatever a writer leaves beside its own temporary goes too."""
    paths = tuple(Path(p) for p in paths)
    made: list[Path] = []
    stages: list[Path] = []
    written = False
    try:
        for path in paths:
            made += _make_folder(path.parent)
            stages.append(Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)))
        yield tuple(stage / path.name for stage, path in zip(stages, paths))
        for stage, path in zip(stages, paths):
            os.replace(stage / path.name, path)
        written = True
    finally:
        for stage in stages:
            shutil.rmtree(stage, ignore_errors=True)
        for folder in [] if written else sorted(made, key=lambda p: len(p.parts), reverse=True):
            with suppress(OSError):  # only while empty: another writer may use it by now
                folder.rmdir()
