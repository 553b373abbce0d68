"""The ``aebench`` command line. Each command lives in the module that does its work and
is imported lazily (see :class:`aebench.cli.lazy.LazyGroup`)."""

from __future__ import annotations

import click

from aebench import __version__
from aebench.cli.lazy import LazyGroup

COMMANDS = {
    "data": "aebench.cli.data:data",
    "config": "aebench.cli.config_cmd:config",
    "eval": "eval.cli:eval_cmd",
    "weights": "eval.cli:weights",
    "bench": "aebench.cli.bench:bench",
    "run": "aebench.cli.protocol:run",
    "ablate": "aebench.cli.protocol:ablate",
    "tables": "aebench.cli.protocol:tables",
    "plot": "aebench.cli.protocol:plot",
    "regress": "aebench.cli.protocol:regress",
    "rescore": "aebench.cli.protocol:rescore",
    "ls": "aebench.cli.ls:ls",
    "compare": "aebench.cli.protocol:compare",
    "report": "aebench.cli.protocol:report",
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
