"""``aebench data prepare | list | preview`` (see :mod:`aebench.data.prepare`)."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_ROOT = Path("data/identities")


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("overrides", nargs=-1)
@click.option("--name", required=True, help="Identity name (folder name under --out).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True)
@click.option("--size", type=click.IntRange(min=16), default=512, show_default=True, help="Square frame size (px).")
@click.option("--fps", type=click.FloatRange(min=1), default=25.0, show_default=True)
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Prepare only the first S seconds.")
@click.option("--features", default="mfcc", show_default=True, help="Comma-separated audio features to compute.")
def prepare(clip: Path, overrides: tuple[str, ...], name: str, out: Path, size: int, fps: float,
            max_seconds: float | None, features: str) -> None:
    """Prepare CLIP.mp4 into an identity: frames, landmarks, poses, masks, background, audio.

    Extra prepare.KEY=VALUE arguments override the preparation settings
    (`aebench config show` lists them)."""
    from aebench.config import ConfigError
    from aebench.data.prepare import PrepareError
    from aebench.data.prepare import prepare as run

    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    try:
        path = run(clip, name, out, size=size, fps=fps, max_seconds=max_seconds, overrides=overrides,
                   features=feats, progress=True, log=click.echo)
    except (PrepareError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"prepared {path}")


@click.command("list")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True)
def list_cmd(root: Path) -> None:
    """Table of the prepared identities under --root."""
    import json

    from aebench.data.identity import list_identities

    paths = list_identities(root)
    if not paths:
        click.echo(f"no prepared identities under {root}")
        return
    rows = [("name", "frames", "seconds", "size", "source", "features")]
    for p in paths:
        m = json.loads((p / "meta.json").read_text())
        feats = ",".join(sorted(f.stem for f in (p / "features").glob("*.npy"))) or "-"
        rows.append((m.get("name", p.name), str(m["n_frames"]), f"{m['n_frames'] / m['fps']:.1f}",
                     "x".join(map(str, m["size"])), Path(str(m.get("source"))).name, feats))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@click.command()
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="FILE.png (contact sheet, default NAME_preview.png) or FILE.mp4 (every frame).")
def preview(name: str, root: Path, out: Path | None) -> None:
    """Landmarks, region masks and pose axes drawn over a prepared identity."""
    from aebench.data.identity import Identity, IdentityError
    from aebench.data.preview import write_preview

    try:
        ident = Identity.open(root / name)
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {write_preview(ident, out or Path(f'{name}_preview.png'))}")
