"""``aebench ls protocols|methods|metrics``: what exists, one line each."""

from __future__ import annotations

import click

WHAT = ("protocols", "methods", "metrics")


@click.command("ls")
@click.argument("what", type=click.Choice(WHAT))
def ls(what: str) -> None:
    """List the protocols (protocols/*.yaml), the registered methods, or the metrics."""
    if what == "protocols":
        from aebench.protocol.spec import available_protocols, raw_protocol

        for name in available_protocols():
            spec = raw_protocol(name)
            desc = " ".join(str(spec.get("description", "")).split())
            click.echo(f"{name:16s} {desc[:100]}")
    elif what == "methods":
        import importlib

        from aebench.methods import METHODS

        for name, target in METHODS.items():
            module = target.split(":")[0]
            doc = (importlib.import_module(module).__doc__ or "").strip().splitlines()
            click.echo(f"{name:10s} {doc[0] if doc else target}")
    else:
        from eval.registry import METRICS

        wn, wl = max(map(len, METRICS)), max(len(m.label) for m in METRICS.values())
        for name, m in METRICS.items():
            needs = ", ".join(n for n, flag in (("ground truth", m.needs_gt), ("audio", m.needs_audio)) if flag)
            weights = f"; weights: {', '.join(m.weights)}" if m.weights else ""
            click.echo(f"{name:{wn}s} {m.label:{wl}s} {m.better} needs {needs or 'prediction only'}{weights} ({m.recipe})")
