"""``aebench config show``: the fully resolved config for a set of overrides."""

from __future__ import annotations

import click

from aebench.config import ConfigError, config_hash, load_config, to_yaml


@click.group()
def config() -> None:
    """Inspect settings."""


@config.command("show", context_settings={"ignore_unknown_options": True})
@click.argument("overrides", nargs=-1)
def show(overrides: tuple[str, ...]) -> None:
    """Print the resolved config for OVERRIDES (key=value ...) and its hash."""
    try:
        cfg = load_config(overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(to_yaml(cfg), nl=False)
    click.echo(f"# hash: {config_hash(cfg)}")
