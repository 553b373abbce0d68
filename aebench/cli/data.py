"""``aebench data ...``: prepare identities from clips, synthesize a corpus, list, preview."""

from __future__ import annotations

import click

from aebench.cli.lazy import LazyGroup

SUBCOMMANDS = {
    "prepare": "aebench.data.prepare_cli:prepare",
    "list": "aebench.data.prepare_cli:list_cmd",
    "preview": "aebench.data.prepare_cli:preview",
    "synth": "aebench.data.synth_cli:synth",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def data() -> None:
    """Prepared identities: `prepare` a clip, `synth` an offline corpus, `list`, `preview`."""
