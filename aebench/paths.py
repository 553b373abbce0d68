"""Well-known locations.

Two kinds: what the package ships (protocol files, the paper's tables: package data, found
through :mod:`importlib.resources`, so an installed wheel runs from any directory), and the
user's folders, which default to the working directory or the documented cache and are never
inside the installed package: the shared data folder, prepared data, the run store and the
weights store, each with its environment variable.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def shared_dir() -> Path:
    """The shared folder with real clips (``$AEBENCH_SHARED``, default ``../shared`` from the working directory)."""
    return Path(os.environ.get("AEBENCH_SHARED", Path("..") / "shared")).resolve()


def shared_data_dir() -> Path:
    return shared_dir() / "data"


#: prefix of a path under the shared data folder in protocols (``shared:audio/zozo.wav``)
SHARED_PREFIX = "shared:"


def shared_path(spec: str) -> Path:
    """A protocol's path: ``shared:REL`` is REL under the shared data folder, anything else a path."""
    spec = str(spec)
    return shared_data_dir() / spec[len(SHARED_PREFIX) :] if spec.startswith(SHARED_PREFIX) else Path(spec).expanduser()


def weights_dir() -> Path:
    """The local weights store (``$AEBENCH_WEIGHTS``, default ``~/.cache/aebench/weights``)."""
    return Path(os.environ.get("AEBENCH_WEIGHTS", Path.home() / ".cache" / "aebench" / "weights"))


def runs_dir() -> Path:
    """Default root of the run store (``$AEBENCH_RUNS``, default ``results/runs`` in the working directory)."""
    return Path(os.environ.get("AEBENCH_RUNS", Path("results") / "runs"))


class PathsError(ValueError):
    """An environment variable names a location that cannot be what it is for (a file for a folder)."""


def data_dir() -> Path:
    """Where protocols build their data: the synthetic corpus (``synth/``) and prepared clips
    (``prepared/``) (``$AEBENCH_DATA``, default ``data`` in the working directory). A PathsError
    when it names an existing file: refused before any data is built under it."""
    path = Path(os.environ.get("AEBENCH_DATA", "data"))
    if path.exists() and not path.is_dir():
        raise PathsError(f"AEBENCH_DATA={path} is a file, not a folder; point it at a folder for the prepared data")
    return path


def protocols_dir() -> Path:
    """The protocol files shipped with aebench (package data ``aebench.protocols``)."""
    return Path(str(files("aebench.protocols")))


def paper_results_dir() -> Path:
    """The paper's Tables 1-5 as CSV (package data ``aebench.paper``)."""
    return Path(str(files("aebench.paper")))


def reference_dir() -> Path:
    """The committed regression references (``$AEBENCH_REFERENCES``, default ``results/reference``
    of the checkout aebench runs from, else of the working directory)."""
    if os.environ.get("AEBENCH_REFERENCES"):
        return Path(os.environ["AEBENCH_REFERENCES"])
    checkout = Path(__file__).resolve().parent.parent / "results" / "reference"
    return checkout if checkout.is_dir() else Path("results") / "reference"
