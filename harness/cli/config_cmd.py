"""``aebench config show``: the fully resolved config for a set of overrides."""

from __future__ import annotations

import click

from aebench.config import ConfigError, config_hash, explain, load_config, to_yaml


@click.group()
def config() -> None:
    """Inspect settings."""


@config.command("show", context_settings={"ignore_unknown_options": True})
@click.option(
    "--explain",
    "key",
    metavar="KEY",
    help="Explain one setting (e.g. train.iters): its meaning, what it "
    "accepts, its default, its value for OVERRIDES and where that was set.",
)
@click.argument("overrides", nargs=-1)
def show(overrides: tuple[str, ...], key: str | None) -> None:
    """Print the resolved config for OVERRIDES (key=value ...) and its hash."""
    try:
        if key:
            click.echo(format_explanation(explain(key, overrides)))
            return
        cfg = load_config(overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(to_yaml(cfg), nl=False)
    click.echo(f"# hash: {config_hash(cfg)}")


def format_explanation(info: dict) -> str:
    """The lines ``config show --explain`` prints."""
    import textwrap

    lines = [
        info["key"],
        f"  declared  {info['declared']}",
        f"  accepts   {info['accepts']}",
        f"  default   {info['default']!r}",
        f"  value     {info['value']!r}  (set by {info['set_by']})",
    ]
    if info["doc"]:
        lines += [""] + [textwrap.fill(p, 96, initial_indent="  ", subsequent_indent="  ") for p in info["doc"].split("\n\n")]
    return "\n".join(lines)
