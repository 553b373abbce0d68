"""``aebench data ...``: prepare identities from clips, synthesize a corpus, list, preview."""

from __future__ import annotations

import click

from aebench.harness.cli.lazy import LazyGroup

SUBCOMMANDS = {
    "prepare": "aebench.harness.cli.data_prepare:prepare",
    "list": "aebench.harness.cli.data_prepare:list_cmd",
    "preview": "aebench.harness.cli.data_prepare:preview",
    "synth": "aebench.harness.cli.data_synth:synth",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def data() -> None:
    """Prepared identities: `prepare` a clip, `synth` an offline corpus, `list`, `preview`."""
