"""Well-known locations: the shared data folder, the weights store, the run store."""

from __future__ import annotations

import os
from pathlib import Path

from aebench import REPO_ROOT


def shared_dir() -> Path:
    """The shared folder with real clips (``$AEBENCH_SHARED``, default ``../shared``)."""
    return Path(os.environ.get("AEBENCH_SHARED", REPO_ROOT.parent / "shared")).resolve()


def shared_data_dir() -> Path:
    return shared_dir() / "data"


#: prefix of a path under the shared data folder in protocols (``shared:audio/zozo.wav``)
SHARED_PREFIX = "shared:"


def shared_path(spec: str) -> Path:
    """A protocol's path: ``shared:REL`` is REL under the shared data folder, anything else a path."""
    spec = str(spec)
    return shared_data_dir() / spec[len(SHARED_PREFIX):] if spec.startswith(SHARED_PREFIX) else Path(spec).expanduser()


def weights_dir() -> Path:
    """The local weights store (``$AEBENCH_WEIGHTS``, default ``~/.cache/aebench/weights``)."""
    return Path(os.environ.get("AEBENCH_WEIGHTS", Path.home() / ".cache" / "aebench" / "weights"))


def runs_dir() -> Path:
    """Default root of the run store (``$AEBENCH_RUNS``, default ``results/runs``)."""
    return Path(os.environ.get("AEBENCH_RUNS", REPO_ROOT / "results" / "runs"))


def protocols_dir() -> Path:
    return REPO_ROOT / "protocols"


def paper_results_dir() -> Path:
    return REPO_ROOT / "results" / "paper"
