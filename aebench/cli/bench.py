"""``aebench bench ...``: speed benchmarks (never run by the tests)."""

from __future__ import annotations

import click

from aebench.cli.lazy import LazyGroup

SUBCOMMANDS = {
    "train": "aenerf.bench:train_cmd",
    "render": "aenerf.bench:render_cmd",
    "metrics": "eval.bench:metrics_cmd",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def bench() -> None:
    """Speed: training iterations/s, rendering frames/s, metric frames/s."""
