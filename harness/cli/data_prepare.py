"""``aebench data prepare | list | preview`` (see :mod:`aebench.data.prepare`)."""

from __future__ import annotations

from pathlib import Path

import click

from aebench.data.prepare import identity_name
from aebench.harness.cli.checks import Output, inputs_untouched, reported, writable_file
from aebench.media import FPS, VIDEO_EXTS, videos_in

DEFAULT_ROOT = Path("data/identities")


def _clips_and_overrides(args: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """CLIP files and folders of clips (expanded, sorted) apart from prepare.KEY=VALUE overrides."""
    clips, overrides = [], []
    for arg in args:
        path = Path(arg)
        if "=" in arg and not path.exists():
            overrides.append(arg)
        elif path.is_dir():
            found = videos_in(path)
            if not found:
                raise click.UsageError(f"{path}: no video files ({', '.join(VIDEO_EXTS)})")
            clips += found
        elif path.is_file():
            clips.append(path)
        else:
            raise click.UsageError(f"{arg}: no such clip or folder (overrides are prepare.KEY=VALUE)")
    if not clips:
        raise click.UsageError("name at least one clip or folder of clips")
    return clips, overrides


def _identity_folders(out: Path, names: list[str]) -> list[Output]:
    """The identity folders preparing ``names`` replaces as a whole (a clip inside one would be
    deleted with it); names that are no plain folder name are left to prepare's own refusal."""
    from aebench.data.staging import check_name

    folders = []
    for name in names:
        try:
            folders.append(Output("--out", out / check_name(name), "folder", whole=True))
        except ValueError:
            continue
    return folders


@click.command()
@click.argument("args", nargs=-1)
@click.option("--name", default=None, help="Identity name (one clip only; default: from the file name).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True)
@click.option("--size", type=click.IntRange(min=16), default=512, show_default=True, help="Square frame size (px).")
@click.option("--fps", type=click.FloatRange(min=1), default=float(FPS), show_default=True)
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None, help="Prepare only the first S seconds.")
@click.option("--features", default="mfcc", show_default=True, help="Comma-separated audio features to compute.")
@click.option("--replace", is_flag=True, help="Replace an identity of the same name prepared from another clip (refused otherwise).")
def prepare(
    args: tuple[str, ...], name: str | None, out: Path, size: int, fps: float, max_seconds: float | None, features: str, replace: bool
) -> None:
    """Prepare clips into identities: frames, landmarks, poses, masks, background, audio.

    ARGS: clip files and/or folders of clips (every video in them), then optional
    prepare.KEY=VALUE overrides (`aebench config show` lists them). Each identity is named
    after its file (see `--name` for one clip); identities already prepared from the same
    source and settings are skipped, and one prepared from another clip is kept unless --replace."""
    from aebench.config import ConfigError
    from aebench.data.prepare import PrepareError
    from aebench.data.prepare import prepare as run

    clips, overrides = _clips_and_overrides(args)
    if name and len(clips) > 1:
        raise click.UsageError(f"--name names one identity, but {len(clips)} clips were given")
    names = [name] if name else [identity_name(c) for c in clips]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise click.UsageError(f"two clips would become the same identity {dupes}; prepare them one by one with --name")
    inputs_untouched(_identity_folders(out, names), {"CLIP": clips})
    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    for clip, ident in zip(clips, names):
        try:
            path = run(
                clip,
                ident,
                out,
                size=size,
                fps=fps,
                max_seconds=max_seconds,
                overrides=tuple(overrides),
                features=feats,
                progress=True,
                log=click.echo,
                replace=replace,
            )
        except (PrepareError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"prepared {path}")


@click.command("list")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True)
def list_cmd(root: Path) -> None:
    """Table of the prepared identities under --root."""
    import json

    from aebench.data.identity import list_identities

    if not root.is_dir():
        raise click.UsageError(f"--root {root}: no such folder (prepare identities into it with `aebench data prepare`)")
    paths = list_identities(root)
    if not paths:
        click.echo(f"no prepared identities under {root}")
        return
    rows = [("name", "frames", "seconds", "size", "source", "features")]
    for p in paths:
        m = json.loads((p / "meta.json").read_text())
        feats = ",".join(sorted(f.stem for f in (p / "features").glob("*.npy"))) or "-"
        rows.append(
            (
                m.get("name", p.name),
                str(m["n_frames"]),
                f"{m['n_frames'] / m['fps']:.1f}",
                "x".join(map(str, m["size"])),
                Path(str(m.get("source"))).name,
                feats,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@click.command()
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="FILE.png (contact sheet, default NAME_preview.png) or FILE.mp4 (every frame).",
)
def preview(name: str, root: Path, out: Path | None) -> None:
    """Landmarks, region masks and pose axes drawn over a prepared identity."""
    from aebench.data.identity import Identity, IdentityError
    from aebench.data.preview import write_preview

    out = writable_file(out or Path(f"{name}_preview.png"), "--out")
    inputs_untouched([Output("--out", out)], {"identity": root / name})
    try:
        ident = Identity.open(root / name)
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    with reported("--out", out):
        click.echo(f"wrote {write_preview(ident, out)}")
