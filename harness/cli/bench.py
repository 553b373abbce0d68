"""``aebench bench ...``: speed benchmarks (never run by the tests)."""

from __future__ import annotations

import click

from aebench.harness.cli.lazy import LazyGroup

SUBCOMMANDS = {
    "train": "aebench.harness.cli.bench_methods:train_cmd",
    "render": "aebench.harness.cli.bench_methods:render_cmd",
    "metrics": "aebench.harness.cli.bench_metrics:metrics_cmd",
    "converge": "aebench.harness.cli.bench_converge:converge_cmd",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def bench() -> None:
    """Speed: training iterations/s, rendering frames/s, metric frames/s, time to quality."""
