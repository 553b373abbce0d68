"""The ``aebench`` command line. Each command lives in the module that does its work and
is imported lazily (see :class:`aebench.harness.cli.lazy.LazyGroup`)."""

from __future__ import annotations

import click

from aebench import __version__
from aebench.harness.cli.lazy import LazyGroup

COMMANDS = {
    "data": "aebench.harness.cli.data:data",
    "config": "aebench.harness.cli.config_cmd:config",
    "eval": "aebench.harness.cli.eval_cmd:eval_cmd",
    "weights": "aebench.harness.cli.weights_cmd:weights",
    "bench": "aebench.harness.cli.bench:bench",
    "run": "aebench.harness.cli.protocol:run",
    "ablate": "aebench.harness.cli.protocol:ablate",
    "tables": "aebench.harness.cli.protocol:tables",
    "plot": "aebench.harness.cli.protocol:plot",
    "regress": "aebench.harness.cli.protocol:regress",
    "rescore": "aebench.harness.cli.protocol:rescore",
    "ls": "aebench.harness.cli.ls:ls",
    "compare": "aebench.harness.cli.protocol:compare",
    "report": "aebench.harness.cli.protocol:report",
    "export": "aebench.harness.cli.results_cmd:export",
    "validate": "aebench.harness.cli.results_cmd:validate",
    "status": "aebench.harness.cli.status_cmd:status",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aebench")
def main() -> None:
    """aebench: few-shot audio-driven NeRF talking heads, reproduced and measured.

    \b
    Typical use:
      aebench data synth --out data/synth       # offline synthetic corpus
      aebench run protocol=smoke                # train, render, evaluate a protocol grid
      aebench tables smoke                      # our numbers beside the paper's
    Settings are dotted key=value overrides (lists as [a,b]); `aebench config show` lists them.
    """
