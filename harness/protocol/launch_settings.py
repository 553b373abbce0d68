"""The launchers' config sections: where a protocol's jobs run, not what a cell computes.

Both are kept out of every cell's config and id (:data:`aebench.config.LAUNCHER_SECTIONS`,
:func:`aebench.harness.protocol.cells.cell_key`), so a cell finished on one partition or node
is done on every other. Registered as config sections in ``pyproject.toml``
(``aebench.sections``); light, so composing the config imports neither submitit nor Ray.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aebench.settings import Settings, setting


@dataclasses.dataclass(frozen=True)
class SlurmSettings(Settings):
    """``cfg.slurm``: resources of each SLURM job of ``aebench run ... launcher=slurm``
    (:mod:`aebench.harness.protocol.slurm`): one job per base model, one per cell."""

    partition: str = setting("")
    """sbatch ``--partition``; "" = the cluster's default partition."""
    gpus_per_job: int = setting(1, low=0)
    """GPUs per job (``--gpus-per-node``); 0 = none asked (a CPU partition)."""
    cpus_per_job: int = setting(4, low=1)
    """CPU cores per job (``--cpus-per-task``); set the protocol's ``threads`` to match."""
    mem_gb: float = setting(16.0, low=0.0)
    """Memory per job in GiB (``--mem``); 0 = the partition's default."""
    time_min: int = setting(60, low=1)
    """Time limit per job in minutes (``--time``); a job killed at it resumes on the next run."""
    poll_s: float = setting(10.0, low=0.1)
    """Seconds between two looks at the queue (``squeue``) while ``aebench run`` follows the jobs."""
    extra: dict[str, Any] = setting({})
    """Any other sbatch option of this site, NAME=VALUE (``slurm.extra.account=abc``, ``slurm.extra.qos=high``,
    ``slurm.extra.constraint=a100``; true for a flag: ``slurm.extra.hold=true``)."""


@dataclasses.dataclass(frozen=True)
class RaySettings(Settings):
    """``cfg.ray``: how a run reaches the Ray nodes of ``launcher=ray``
    (:mod:`aebench.harness.protocol.ray_launcher`)."""

    ship: str = setting("auto", choices=("auto", "always", "never"))
    """``auto``: check (one task per node) that every node sees the run store and the prepared data at the
    driver's paths, and where one does not, send each task its identities and base models and bring its
    results back into the driver's store; ``always``: send and bring back, no check; ``never``: tasks use
    the store and data in place, refused, naming the nodes, when a node cannot see them."""
