"""Where a number came from: code version, packages, machine, peak memory and content hashes.

Every cell (``cell.json: provenance``) and every ``aebench eval`` output records these, as the
field's trusted suites do (lm-evaluation-harness stores config, git hash, versions and date
with each result; NerfBaselines checksums predictions, ground truth and checkpoints). The
metric code's own package versions and the sha256 of each weights file are recorded by
:func:`aebench.eval.evaluate` (``info.versions``, ``info.weights``); this module holds what
they share and what a run adds.

Peak memory is the resident set's high-water mark of this process (Linux ``VmHWM``), reset at
the start of each measured span where the kernel allows it (``/proc/self/clear_refs``), so a
cell's figure is its own and not the peak of an earlier cell of the same run; CUDA's peak is
torch's allocator high-water mark, reset likewise.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, UTC
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

#: packages whose code shapes every number (methods and harness); the metric packages are
#: added by the evaluation that used them
CORE_PACKAGES = ("torch", "numpy", "scipy", "omegaconf", "av", "opencv-python", "dlib-bin")


def package_versions(names) -> dict[str, str]:
    """Installed distribution versions (``"absent"`` for one not installed)."""
    out = {}
    for pkg in names:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def code_version() -> dict:
    """aebench's version and, when it runs from a git checkout, the commit and whether the
    tree differs from it (``dirty``: modified tracked files or untracked files git does not
    ignore). Outside a checkout (an installed wheel): ``source: "installed"``, no commit.

    Read once per process, when this module is first imported (the harness imports it before
    any work starts): the code a process runs is the code it imported, so a tree edited while
    a long run goes on does not relabel that run's later cells."""
    return dict(_STARTED_WITH)


def _read_code_version(here: Path | None = None) -> dict:
    """The code version of the checkout holding ``here`` (default: aebench's own folder)."""
    import aebench

    here = Path(here) if here is not None else Path(aebench.__file__).resolve().parent
    out: dict = {"aebench": package_versions(["aebench"])["aebench"]}
    commit = _git(["rev-parse", "HEAD"], here)
    top = _git(["rev-parse", "--show-toplevel"], here)
    if commit and top and (Path(top.strip()) / "pyproject.toml").is_file():
        status = _git(["status", "--porcelain"], Path(top.strip())) or ""
        out.update(
            source="git",
            commit=commit.strip(),
            dirty=bool(status.strip()),
            changed=len(status.strip().splitlines()) if status.strip() else 0,
        )
    else:
        out.update(source="installed", commit=None, dirty=None)
    return out


_STARTED_WITH = _read_code_version()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str | None = None) -> dict:
    """The machine a number was computed on: CPU model and cores, torch's threads, and the GPU
    with its CUDA version when torch sees one (``device``: the torch device the work ran on)."""
    import torch

    out = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "device": device or "cpu",
    }
    if torch.cuda.is_available():
        out.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda)
    else:
        out.update(gpu=None, cuda=None)
    return out


def environment(packages=()) -> dict:
    """Python, aebench's code version and the versions of ``CORE_PACKAGES`` plus ``packages``."""
    return {
        "python": sys.version.split()[0],
        "code": code_version(),
        "packages": package_versions(dict.fromkeys([*CORE_PACKAGES, *packages])),
    }


def provenance(device: str | None = None, packages=()) -> dict:
    """Everything above in one record, with the UTC time it was taken."""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), **environment(packages), "machine": machine(device)}


# ----- peak memory ----------------------------------------------------------------------------


def _vm_hwm() -> int | None:
    """This process's resident high-water mark in bytes (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory of a span of work: ``rss`` (bytes), ``cuda`` (bytes or None) and ``scope``
    ("span" when the high-water mark could be reset at its start, "process" when the figure is
    the process's peak since it started)."""

    def __init__(self):
        self.rss: int | None = None
        self.cuda: int | None = None
        self.scope = "process"

    def to_json(self) -> dict:
        return {"rss_bytes": self.rss, "cuda_bytes": self.cuda, "scope": self.scope}


@contextmanager
def peak_memory():
    """``with peak_memory() as mem: ...``; afterwards ``mem.rss`` / ``mem.cuda`` hold the peaks."""
    import torch

    mem = PeakMemory()
    mem.scope = "span" if _reset_hwm() else "process"
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        yield mem
    finally:
        hwm = _vm_hwm()
        mem.rss = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            mem.cuda = int(torch.cuda.max_memory_allocated())


# ----- content hashes -------------------------------------------------------------------------


def sha256_frames(frames) -> str:
    """sha256 of decoded frames: each frame's shape and uint8 RGB bytes, in order. Equal for the
    same pixels whatever the container (a PNG folder and the array it came from agree)."""
    h = hashlib.sha256()
    for img in frames:
        a = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()
