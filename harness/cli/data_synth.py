"""``aebench data synth``: write an offline synthetic corpus (see :mod:`aebench.data.synth`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder that receives synth_00, synth_01, ..."
)
@click.option("--identities", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--seconds", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True, help="Length of each identity (25 fps)."
)
@click.option("--size", type=click.IntRange(min=8), default=64, show_default=True, help="Frame size in pixels (square).")
@click.option("--seed", type=int, default=0, show_default=True)
def synth(out: Path, identities: int, seconds: float, size: int, seed: int) -> None:
    """Render a synthetic talking-head corpus (ray-cast heads, phoneme-driven mouths, exact poses).

    Identities that already exist with the same settings are kept."""
    import json

    from aebench.data.staging import WriteError
    from aebench.data.synth import make_corpus

    try:
        paths = make_corpus(out, identities=identities, seconds=seconds, size=size, seed=seed, progress=True)
    except (WriteError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for p in paths:
        meta = json.loads((p / "meta.json").read_text())
        click.echo(f"{p}  {meta['n_frames']} frames  {meta['size'][0]}x{meta['size'][1]}  f0 {meta['voice']['f0']:.0f} Hz")
