"""``aebench run | ablate | tables | plot | regress``: protocols end to end, and their reports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aebench.config import ConfigError, parse_overrides
from aebench.harness.cli.checks import Output, comma_list, inputs_untouched, reported, writable_file, writable_folder
from aebench.paths import runs_dir

#: keys of `aebench run` that are not config keys
RUN_KEYS = ("protocol", "data", "methods", "launcher", "workers")
#: how every command names the run store (one way: `--runs DIR`)
RUNS_OPTION = dict(type=click.Path(path_type=Path), default=None, help="run store root (default results/runs)")


def _split_args(args: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Run-level keys (protocol=, data=, methods=, launcher=) apart from config overrides."""
    run, rest = {}, []
    for arg in args:
        key = arg.split("=", 1)[0]
        if key == "runs":
            raise click.UsageError(f"name the run store with --runs DIR (the same option in every command), not {arg}")
        if key in ("protocol", "data", "launcher"):  # names and paths, taken as written (no YAML: a '#' or ': ' is kept)
            run[key] = arg.split("=", 1)[1]
        elif key in RUN_KEYS:
            run.update(parse_overrides([arg]))
        else:
            rest.append(arg)
    parse_overrides(rest)  # syntax errors now, key errors at expansion
    return run, rest


def runs_root_of(runs: Path | None) -> Path:
    """The run store root a command writes to (``--runs`` or the default), checked before any work."""
    return writable_folder(Path(runs or runs_dir()), "--runs")


def execute(
    protocol_name: str,
    overrides: list[str],
    data=None,
    methods=None,
    launcher="local",
    runs_root: Path | None = None,
    rows=None,
    workers: int | str = "auto",
    detach: bool = False,
):
    """Expand and launch a protocol, printing what it does and what failed; ``detach``
    (launcher=slurm): submit the jobs, print them and return (nothing failed yet)."""
    from aebench.harness.protocol.launchers import launch
    from aebench.harness.protocol.plan import expand
    from aebench.harness.protocol.pool import resolve_workers
    from aebench.harness.protocol.run_store import check_protocol_folder
    from aebench.harness.protocol.slurm import require_slurm, slurm_settings

    runs_root = runs_root_of(runs_root)
    try:
        if launcher == "slurm":  # no SLURM here: refused before the data is prepared
            require_slurm()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    protocol, cells = expand(protocol_name, overrides, data, methods, rows)
    check_protocol_folder(runs_root, protocol, claim=True)
    workers = resolve_workers(workers, cells, launcher)
    click.echo(
        f"protocol {protocol.name} (scale {protocol.scale}): {len(cells)} cells -> {runs_root / protocol.name}"
        + (f" ({workers} workers)" if workers > 1 else "")
    )
    slurm = slurm_settings(protocol, overrides) if launcher == "slurm" else None
    try:
        if detach:
            submit_detached(cells, runs_root, slurm, [protocol_name, *status_args(overrides, data, methods)])
            return protocol, cells, []
        outcomes = launch(cells, runs_root, launcher, workers=workers, slurm=slurm)
    except RuntimeError as exc:  # a launcher that cannot go on (a worker died, Ray missing): no traceback
        raise click.ClickException(str(exc)) from exc
    done = sum(o.status == "done" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    click.echo(f"{done} cells run, {skipped} already done, {len(failed)} failed")
    from aebench.harness.protocol.run_store import cell_folder

    for o in failed:
        log = cell_folder(runs_root, o.cell) / "log.txt"
        click.echo(f"  FAILED {o.cell.label} ({o.cell.cell_id}): {o.error}  [log: {log}]", err=True)
    return protocol, cells, failed


def status_args(overrides: list[str], data=None, methods=None) -> list[str]:
    """The words of `aebench run` that `aebench status` needs to list the same cells: data=,
    methods= and the config overrides, less the slurm.* ones (no part of a cell)."""
    from aebench.config import LAUNCHER_SECTIONS

    words = [f"data={data}"] if data else []
    words += [f"methods=[{','.join(methods)}]"] if methods else []
    return words + [o for o in overrides if o.split("=", 1)[0].split(".")[0] not in LAUNCHER_SECTIONS]


def submit_detached(cells, runs_root: Path, slurm: dict, status_words: list[str]) -> None:
    """launcher=slurm --detach: submit the unfinished cells' jobs, print their ids and how to
    follow them (``status_words``: the protocol and the settings `aebench status` needs)."""
    import shlex

    from aebench.harness.protocol.slurm import job_lines, submit

    submitted = submit(cells, runs_root, slurm)
    if not submitted.cells:
        click.echo(f"every cell is done already ({len(submitted.done)}): nothing submitted")
        return
    click.echo(
        f"submitted {len(submitted.cells)} cells ({len(submitted.done)} already done) and "
        f"{len(submitted.bases)} base model(s) as SLURM jobs (logs: {runs_root / '_slurm'}):"
    )
    for line in job_lines(submitted):
        click.echo(line)
    click.echo(
        f"follow with: aebench status {shlex.quote(status_words[0])} --runs {shlex.quote(str(runs_root))}"
        + "".join(f" {shlex.quote(w)}" for w in status_words[1:])
    )


def _usage(fn):
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except (ConfigError, ValueError, KeyError, FileNotFoundError) as exc:  # ProtocolError is a ValueError
            raise click.UsageError(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)) from exc

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--runs", **RUNS_OPTION)
@click.option("--detach", is_flag=True, help="launcher=slurm: submit the jobs and return; follow them with `aebench status PROTOCOL`")
@click.argument("args", nargs=-1)
@_usage
def run(runs: Path | None, detach: bool, args: tuple[str, ...]) -> None:
    """Run a protocol: protocol=NAME|FILE.yaml [scale=smoke|small|paper] [data=synth|DIR] [methods=[a,b]]
    [launcher=local|ray|slurm] [workers=N|auto] [key=value ...] [--runs DIR] [--detach].

    Trains each base model once, fine-tunes, renders, evaluates every cell into the run store
    (results/runs/<protocol>/<cell-id>/). Finished cells are skipped; an interrupted run resumes.
    workers=N (launcher=local) runs N cells side by side in their own processes, each with the
    protocol's `threads`; workers=auto (the default) runs as many as the cores hold (one per GPU).
    launcher=slurm submits each base model and each cell as a SLURM job
    (resources: slurm.* settings; the nodes must share the run store's filesystem) and follows
    them to their end, or with --detach returns once they are submitted.
    """
    run_keys, overrides = _split_args(args)
    if detach and str(run_keys.get("launcher", "local")) != "slurm":
        raise click.UsageError("--detach is for launcher=slurm (the jobs go on without this command)")
    if "protocol" not in run_keys:
        from aebench.harness.protocol.spec import available_protocols

        raise click.UsageError(f"name a protocol: protocol=NAME; available: {', '.join(available_protocols())}")
    methods = run_keys.get("methods")
    methods = [methods] if isinstance(methods, str) else methods
    workers = run_keys.get("workers", "auto")
    if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise click.UsageError(f"workers=N takes a whole number of processes, at least 1, or auto; got {workers!r}")
    _, _, failed = execute(
        str(run_keys["protocol"]),
        overrides,
        run_keys.get("data"),
        methods,
        str(run_keys.get("launcher", "local")),
        runs,
        workers=workers,
        detach=detach,
    )
    if failed:
        sys.exit(1)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--drop",
    "drops",
    multiple=True,
    required=True,
    help="ablation to run beside the full model, as the ablation protocol names them (its rows' drop: AAA, AAFG, Warper, RRS; repeatable)",
)
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex"]), default="md")
@click.option("--runs", **RUNS_OPTION)
@click.argument("overrides", nargs=-1)
@_usage
def ablate(drops: tuple[str, ...], fmt: str, runs: Path | None, overrides: tuple[str, ...]) -> None:
    """Run the full AE-NeRF and the named ablations on the ablation protocol's grid; print Table 4."""
    from aebench.harness.protocol.plan import ablation_rows

    rows = ablation_rows("ablation", drops)
    run_keys, rest = _split_args(overrides)
    protocol, _, failed = execute("ablation", rest, run_keys.get("data"), None, str(run_keys.get("launcher", "local")), runs, rows=rows)
    from aebench.harness.report.tables import render_table

    click.echo(render_table("ablation", Path(runs or runs_dir()), fmt))
    if failed:
        sys.exit(1)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--runs", **RUNS_OPTION)
@click.argument("args", nargs=-1)
@_usage
def rescore(runs: Path | None, args: tuple[str, ...]) -> None:
    """Score a protocol's finished cells again with its metrics as they are now (a metric added
    or fixed since), from the stored renders: no training, no rendering.
    Same arguments as `aebench run` (protocol=NAME|FILE.yaml [scale=...] [key=value ...])."""
    from tqdm import tqdm

    from aebench.harness.protocol.plan import expand
    from aebench.harness.protocol.runner import rescore_cell

    run_args, overrides = _split_args(args)
    if "protocol" not in run_args:
        raise click.UsageError("name a protocol: protocol=NAME (or protocol=FILE.yaml)")
    runs_root = runs_root_of(runs)
    spec, cells = expand(str(run_args["protocol"]), overrides, run_args.get("data"), run_args.get("methods"))
    from aebench.harness.protocol.run_store import check_protocol_folder

    check_protocol_folder(runs_root, spec)
    outcomes = [rescore_cell(c, runs_root) for c in tqdm(cells, desc="rescore", unit="cell")]
    done = sum(o.status == "done" for o in outcomes)
    click.echo(f"{done} of {len(cells)} cells scored again; {sum(o.status == 'skipped' for o in outcomes)} not finished")
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        click.echo(f"  FAILED {o.cell.label}: {o.error}", err=True)
    if failed:
        sys.exit(1)


#: how every report command reads a results file instead of the run store
FROM_OPTION = dict(
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="read the cells from a results file (aebench export / eval --export) instead of the run store",
)


def store_inputs(protocol: str | None, root: Path, results: Path | None = None) -> dict[str, list[Path]]:
    """What a report command reads, by what names it (for :func:`inputs_untouched`): the protocol's
    YAML file, and the results file, or else the run store's finished cells of the protocol and
    the data they were made from (a report written into one would change what it shows, or what
    the next run finds)."""
    from aebench.harness.protocol.records import CellRecord
    from aebench.harness.protocol.run_store import finished_cells, read_record
    from aebench.harness.protocol.spec import load_protocol, protocol_file

    found: dict[str, list[Path]] = {"PROTOCOL": [protocol_file(protocol)] if protocol is not None else []}
    if results is not None:
        return {**found, "--from": [results]}
    cells = finished_cells(root / load_protocol(protocol, scale=None).name)
    data = set()
    for cell in cells:
        try:
            data.add(Path(read_record(cell, CellRecord).data_root))
        except (OSError, ValueError):
            continue  # a damaged record: the command's own reading names it
    return {**found, "run store": cells, "data": sorted(data)}


def _protocol_or_default(protocol: str | None, results: Path | None) -> str | None:
    """The protocol a report command shows: the one named, else the results file's, else smoke."""
    return protocol if protocol is not None or results is not None else "smoke"


#: the --rows option of tables and export: the rows shown are the --versus family
ROWS_HELP = (
    "comma-separated row labels: show only these rows; the --versus comparisons are those rows' "
    "(one family: choose it before the run, as the comparison a claim rests on)"
)


@click.command()
@click.argument("protocol", required=False, default=None)
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex"]), default="md")
@click.option("--runs", **RUNS_OPTION)
@click.option("--from", "results", **FROM_OPTION)
@click.option(
    "--metrics",
    default=None,
    help="comma-separated: show only these of the protocol's metrics, and/or cost columns (train_s, render_fps, peak_mem, train_hours)",
)
@click.option(
    "--versus",
    default=None,
    metavar="ROW",
    help="add each row's paired difference from ROW (a row label) with its 95%% interval and p-value",
)
@click.option("--rows", default=None, help=ROWS_HELP)
@_usage
def tables(
    protocol: str | None, fmt: str, runs: Path | None, results: Path | None, metrics: str | None, versus: str | None, rows: str | None
) -> None:
    """Our numbers in the layout of the paper's table, with the paper's numbers beside
    (PROTOCOL: a name in protocols/ or a YAML file; default smoke, or the --from file's)."""
    from aebench.harness.report.tables import render_table

    only = comma_list(metrics)
    click.echo(
        render_table(
            _protocol_or_default(protocol, results),
            Path(runs or runs_dir()),
            fmt,
            only,
            versus=versus,
            results_file=results,
            rows=comma_list(rows),
        )
    )  # unknown metrics or rows: a usage error


@click.command()
@click.argument("protocol", required=False, default=None)
@click.option("--runs", **RUNS_OPTION)
@click.option("--from", "results", **FROM_OPTION)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="folder for the PNGs (default <runs>/<protocol>/plots; with --from: plots/ beside the file)",
)
@_usage
def plot(protocol: str | None, runs: Path | None, results: Path | None, out: Path | None) -> None:
    """Metric vs clip length / iterations, ablation bars (means with 95% intervals) and training
    curves (PNG) (PROTOCOL: a name in protocols/ or a YAML file)."""
    from aebench.harness.report.plots import plot as make_plots
    from aebench.harness.report.results import load

    root = Path(runs or runs_dir())
    name = _protocol_or_default(protocol, results)
    res = load(name, root, results)
    folder = Path(out or ((results.parent / "plots") if results else root / res.spec.name / "plots"))
    writable_folder(folder, "--out")
    inputs_untouched([Output("--out", folder, "folder")], store_inputs(name, root, results))
    with reported("--out", folder):
        written = make_plots(res, root, folder)
    for path in written:
        click.echo(path)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--reference", type=click.Path(path_type=Path), default=Path("results/reference/smoke.json"), show_default=True)
@click.option("--read", "read_only", is_flag=True, help="only read the run store, do not run missing cells")
@click.option("--write", "write", is_flag=True, help="write (update) the reference from this run instead of comparing")
@click.option("--runs", **RUNS_OPTION)
@click.option(
    "--protocol", default=None, help="with --write: the protocol (name or YAML path) to run (default: the existing reference's, else smoke)"
)
@click.option(
    "--noise-from",
    "noise_from",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="with --write: derive the tolerances from the seed spread measured in this (multi-seed) reference",
)
@click.argument("overrides", nargs=-1)
@_usage
def regress(
    reference: Path,
    read_only: bool,
    write: bool,
    runs: Path | None,
    protocol: str | None,
    noise_from: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """Re-run (or read) the reference's protocol and fail when a metric moved from the reference
    by more than its tolerance, either way (an unexplained improvement is a change too; --write
    after a deliberate one), naming the metric and the cells; prints each metric's largest
    deviation against its tolerance."""
    from aebench.harness.protocol.launchers import launch
    from aebench.harness.protocol.plan import expand
    from aebench.harness.report.regress import (
        check_reference,
        checked_tolerances,
        compare,
        compared_cells,
        deviation_summary,
        read_reference,
        tolerances_from,
        write_reference,
    )
    from aebench.harness.report.results import of_cells

    runs_root = runs_root_of(runs)
    if protocol and not write:
        raise click.UsageError("--protocol picks what --write runs; a comparison runs the reference's own protocol")
    if noise_from and not write:
        raise click.UsageError("--noise-from sets the tolerances a reference is written with; use it with --write")
    derived = tolerances_from(noise_from) if noise_from else (None, None)
    ref = None if write else read_reference(reference)
    if ref is not None:  # a reference that would compare nothing is refused before anything runs
        check_reference(ref)
        checked_tolerances(ref)
    if ref:
        protocol_name = ref["protocol"]
    else:
        protocol_name = protocol or (read_reference(reference)["protocol"] if Path(reference).exists() else "smoke")
    overrides = list(ref.get("overrides", [])) if ref else list(overrides)
    if write:  # where the reference goes, checked before anything is built or run
        writable_file(reference, "--reference")
        inputs_untouched([Output("--reference", reference)], {"--noise-from": noise_from, **store_inputs(protocol_name, runs_root)})
    protocol, cells = expand(protocol_name, overrides)
    from aebench.harness.protocol.run_store import check_protocol_folder

    check_protocol_folder(runs_root, protocol, claim=not read_only)
    if not read_only:
        failed = [o for o in launch(cells, runs_root, workers="auto") if o.status == "failed"]
        for o in failed:
            click.echo(f"FAILED cell {o.cell.label}: {o.error}", err=True)
    current = {c["key"]: c["summary"] for c in of_cells(protocol, runs_root, cells).cells}  # what the tables read
    if write:
        if len(current) != len(cells):
            raise click.ClickException(f"only {len(current)} of {len(cells)} cells finished; not writing a reference")
        old = read_reference(reference) if Path(reference).exists() and not noise_from else {}
        with reported("--reference", reference):
            write_reference(
                reference,
                protocol.name,
                protocol.scale,
                overrides,
                current,  # tolerances kept unless re-derived
                derived[0] or old.get("tolerances"),
                derived[1] or old.get("tolerances_how"),
            )
        click.echo(f"wrote {reference} ({len(current)} cells)")
        return
    findings = compare(ref, current)
    for line in deviation_summary(findings):
        click.echo(f"deviation {line}")
    for f in findings:
        if f.kind in ("new", "not-comparable"):
            click.echo(f"note: {f}")
    fails = [f for f in findings if f.fails]
    if fails:
        for f in fails:
            click.echo(f"REGRESSION {f}", err=True)
        raise click.ClickException(f"{len(fails)} change(s) beyond tolerance against {reference}")
    n = compared_cells(findings)
    if n == 0:
        raise click.ClickException(
            f"no cell of {reference} had a metric with a value in both the reference and the run: the check compared nothing"
        )
    click.echo(f"regression check passed: {n} cells compared, every metric within tolerance of {reference}")


@click.command()
@click.argument("protocol", required=False, default="smoke")
@click.option("--runs", **RUNS_OPTION)
@click.option("--target", default=None, help="identity to show (default: the first with finished cells)")
@click.option("--audio", default="self", show_default=True, help="driving audio of the cells to show (as in the grid)")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the mp4 (default <runs>/<protocol>/compare_<target>.mp4); a PNG strip is written beside it",
)
@_usage
def compare(protocol: str, runs: Path | None, target: str | None, audio: str, out: Path | None) -> None:
    """Side-by-side video: ground truth | each row of PROTOCOL (labelled, with the driving audio)."""
    from aebench.harness.protocol.spec import load_protocol
    from aebench.harness.report.compare import compare as make

    root = Path(runs or runs_dir())
    name = load_protocol(protocol, scale=None).name
    video = Path(out or root / name / f"compare_{target or 'first'}.mp4")
    writable_file(video, "--out")
    inputs_untouched([Output("--out", video, files=(video, video.with_suffix(".png")))], store_inputs(protocol, root))
    with reported("--out", video):
        video, png = make(protocol, root, video, target, audio)
    click.echo(f"wrote {video} and {png}")


@click.command()
@click.argument("protocol", required=False, default=None)
@click.option("--runs", **RUNS_OPTION)
@click.option("--from", "results", **FROM_OPTION)
@click.option("--versus", default=None, metavar="ROW", help="show each row's paired difference from ROW")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="folder of the page")
@_usage
def report(protocol: str | None, runs: Path | None, results: Path | None, versus: str | None, out: Path) -> None:
    """One static HTML page of PROTOCOL: table (with paired differences against --versus),
    plots, side-by-side videos and frame strips (not from a results file: it holds no renders)."""
    from aebench.harness.report.html import write_report

    root, name = Path(runs or runs_dir()), _protocol_or_default(protocol, results)
    writable_folder(out, "--out")
    inputs_untouched([Output("--out", out, "folder")], store_inputs(name, root, results))
    with reported("--out", out):
        page = write_report(name, root, out, versus=versus, results_file=results)
    click.echo(f"wrote {page}")
