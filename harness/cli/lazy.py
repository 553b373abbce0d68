"""A click group whose subcommands are imported only when used, so ``aebench --help`` and
light commands do not pay for importing torch."""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                return _unavailable(name, f"{type(exc).__name__}: {exc}")
        return super().get_command(ctx, name)


def _unavailable(name: str, why: str) -> click.Command:
    """A command whose module cannot be imported: listed, and failing clearly when used."""

    def fail(**_):
        raise click.ClickException(f"command '{name}' is unavailable: {why}")

    return click.Command(
        name, callback=fail, help=f"(unavailable: {why})", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )
