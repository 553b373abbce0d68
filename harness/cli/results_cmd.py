"""``aebench export | validate``: one results file per protocol, and its check against the schema."""

from __future__ import annotations

from pathlib import Path

import click

from aebench.harness.cli.checks import Output, comma_list, inputs_untouched, reported, writable_file
from aebench.harness.cli.protocol import ROWS_HELP, RUNS_OPTION, _usage, store_inputs
from aebench.paths import runs_dir


@click.command()
@click.argument("protocol")
@click.option("--runs", **RUNS_OPTION)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the results file to write (JSON, schema aebench/schemas/results-v2.schema.json)",
)
@click.option(
    "--versus",
    default=None,
    metavar="ROW",
    help="also write the table's paired comparisons with ROW (over identities, Holm-adjusted as one family)",
)
@click.option("--metrics", default=None, help="with --versus: the columns compared (comma-separated; default all)")
@click.option(
    "--keep-from",
    "earlier",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="an earlier results file of PROTOCOL: its cells at grid points the run store lacks are kept "
    "(rows added since need not run the others again); refused if its protocol differs in more than added rows",
)
@click.option("--rows", default=None, help="with --versus: " + ROWS_HELP)
@_usage
def export(
    protocol: str, runs: Path | None, out: Path, versus: str | None, metrics: str | None, earlier: Path | None, rows: str | None
) -> None:
    """Write PROTOCOL's finished cells as one results file: the protocol as written, and per cell
    its resolved config, summary and per-frame metrics, cost and provenance; with --versus the
    paired comparisons `aebench tables --versus` prints. `aebench tables|plot|report --from FILE`
    read it as they read the run store."""
    from aebench.harness.report.results import export as make, from_store, read_results, with_earlier, write_results
    from aebench.harness.report.tables import comparisons

    if metrics and not versus:
        raise click.UsageError("--metrics picks the columns of --versus's comparisons; give --versus ROW too")
    if rows and not versus:
        raise click.UsageError("--rows picks the rows of --versus's comparisons (the file keeps every cell); give --versus ROW too")
    root = Path(runs or runs_dir())
    writable_file(out, "--out")
    inputs_untouched([Output("--out", out)], store_inputs(protocol, root))  # --keep-from may be --out: it is read first
    res = from_store(protocol, root)  # read once, for the cells and the comparisons
    kept = 0
    if earlier is not None:
        res, kept = with_earlier(res, read_results(earlier))
    doc = make(res, root)
    if versus:
        only = comma_list(metrics)
        if kept:  # the comparisons read the cells as a results file holds them
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                draft = write_results(doc, Path(tmp) / out.name)
                doc["comparisons"] = {
                    **comparisons(None, root, versus, only, draft, comma_list(rows)),
                    "metrics": only,
                    "rows": comma_list(rows),
                }
        else:
            doc["comparisons"] = {**comparisons(res, root, versus, only, rows=comma_list(rows)), "metrics": only, "rows": comma_list(rows)}
    with reported("--out", out):
        write_results(doc, out)
    tests = f", {doc['comparisons']['family_size']} paired tests vs {versus}" if versus else ""
    click.echo(
        f"wrote {out}: protocol {doc['protocol']['name']}, {len(doc['cells'])} cells{tests}"
        + (f", {kept} kept from {earlier}" if earlier else "")
        + (f" ({sum(doc['unfinished'].values())} unfinished not included)" if doc["unfinished"] else "")
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_usage
def validate(file: Path) -> None:
    """Check FILE against the results schema; names the first field that breaks it."""
    from aebench.harness.report.results import read_results

    res = read_results(file)  # a ResultsError (a ValueError) names the field: a usage error, exit 2
    click.echo(f"{file}: valid aebench results file (protocol {res.spec.name}, {len(res.cells)} cells)")
