"""``aebench weights status | add | fetch``: the verified weights store (:mod:`aebench.weights`)."""

from __future__ import annotations

import click


@click.group()
def weights() -> None:
    """The verified weights store: `status`, `add NAME FILE`, `fetch NAME`."""


@weights.command("status")
def status_cmd() -> None:
    """Every manifest entry: present, verified, path, and the command that fixes it."""
    from tabulate import tabulate

    from aebench import weights as w
    from aebench.data.features import FEATURE_WEIGHTS
    from aebench.eval.registry import METRICS, weights_of
    from aebench.paths import weights_dir

    def users(name: str) -> str:
        """Who reads an entry: the metrics' records and the feature extractors say so, not the manifest."""
        return ", ".join(
            [m for m in METRICS if name in weights_of(m)] + [f"features={f}" for f, entry in FEATURE_WEIGHTS.items() if entry == name]
        )

    rows = [
        [r["name"], users(r["name"]), "yes" if r["present"] else "NO", r["sha256"], r["verified"], r["path"], r["fix"]] for r in w.status()
    ]
    click.echo(f"weights store: {weights_dir()}")
    click.echo(tabulate(rows, headers=["name", "used by", "present", "official sha256", "verified", "path", "fix"], tablefmt="simple"))


@weights.command("add")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True))
def add_cmd(name, file) -> None:
    """Verify FILE (sha256) as the official NAME and copy it into the store."""
    from aebench import weights as w

    try:
        dst = w.add(name, file)
    except (KeyError, w.WeightsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name}: verified and stored at {dst}")


@weights.command("fetch")
@click.argument("name")
@click.option("--allow-unverified", is_flag=True, help="store a file whose full sha256 is unknown (its numbers are then marked unverified)")
def fetch_cmd(name, allow_unverified) -> None:
    """Download NAME from its https source URL (needs internet), verify, store."""
    from aebench import weights as w

    try:
        dst = w.fetch(name, allow_unverified=allow_unverified)
    except (KeyError, w.WeightsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name}: downloaded, verified and stored at {dst}")
