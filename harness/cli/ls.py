"""``aebench ls protocols|methods|metrics``: what exists, one line each."""

from __future__ import annotations

import sys

import click

WHAT = ("protocols", "methods", "metrics")


@click.command("ls")
@click.argument("what", type=click.Choice(WHAT))
def ls(what: str) -> None:
    """List the protocols (shipped and their descriptions), the registered methods, or the metrics
    (built-in and those of installed plugins)."""
    if what == "protocols":
        from aebench.harness.protocol.spec import ProtocolError, available_protocols, load_protocol

        for name in available_protocols():
            try:
                desc = " ".join(load_protocol(name, scale=None).description.split())
            except ProtocolError as exc:  # listed with what is wrong with it
                desc = f"(invalid: {exc})"
            click.echo(f"{name:16s} {desc[:100]}")
    elif what == "methods":
        from aebench.registry import method_class, methods

        for name, target in methods().items():
            try:
                doc = sys.modules[method_class(name).__module__].__doc__ or ""
            except KeyError as exc:  # a plugin that cannot be imported is listed with the reason
                doc = f"(unavailable: {exc.args[0]})"
            first = doc.strip().splitlines()
            origin = "" if target.startswith("aebench.") else f" [plugin {target}]"
            click.echo(f"{name:10s} {first[0] if first else target}{origin}")
    else:
        from aebench.eval.registry import METRICS

        wn, wl = max(map(len, METRICS)), max(len(m.label) for m in METRICS.values())
        for name, m in METRICS.items():
            needs = ", ".join(n for n, flag in (("ground truth", m.needs_gt), ("audio", m.needs_audio)) if flag)
            weights = f"; weights: {', '.join(m.weights)}" if m.weights else ""
            click.echo(f"{name:{wn}s} {m.label:{wl}s} {m.better} needs {needs or 'prediction only'}{weights} ({m.recipe})")
