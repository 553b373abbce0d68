"""``aebench status PROTOCOL``: which cells of a protocol are done, running, waiting or failed,
read from the run store alone (:mod:`aebench.harness.protocol.status`), for any launcher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aebench.harness.cli.protocol import RUNS_OPTION, _split_args, _usage
from aebench.paths import runs_dir

if TYPE_CHECKING:
    from aebench.harness.protocol.status import StoreStatus

#: per state, the columns of its table: (header, CellStatus field)
COLUMNS = {
    "done": [("finished", "since")],
    "running": [("host", "host"), ("job", "job"), ("pid", "pid"), ("started", "since"), ("note", "detail"), ("last log line", "last_log")],
    "waiting": [("state", "detail"), ("host", "host"), ("job", "job"), ("pid", "pid"), ("started", "since"), ("last log line", "last_log")],
    "failed": [("error", "error"), ("failed at", "since"), ("host", "host"), ("job", "job")],
}
#: the longest last log line a table shows (--json has it whole)
LOG_WIDTH = 80


def summary_line(st: StoreStatus) -> str:
    """One line: the protocol, its store folder and how many cells are in each state."""
    counts = st.counts()
    waiting = [c.detail for c in st.cells if c.state == "waiting"]
    kinds = ", ".join(f"{waiting.count(k)} {k}" for k in dict.fromkeys(waiting))
    parts = [
        f"{counts['done']} done",
        f"{counts['running']} running",
        f"{counts['waiting']} waiting" + (f" ({kinds})" if kinds else ""),
        f"{counts['failed']} failed",
    ]
    return f"protocol {st.protocol} (scale {st.scale}) in {st.store}: {', '.join(parts)}"


def _cell(value: object, header: str) -> str:
    """A table cell: blank for nothing, a last log line cut to :data:`LOG_WIDTH`."""
    text = "" if value is None else str(value)
    return text[: LOG_WIDTH - 3] + "..." if header == "last log line" and len(text) > LOG_WIDTH else text


def state_table(st: StoreStatus, state: str) -> str | None:
    """The table of the cells in ``state`` (columns nobody has a value in left out); None when none is."""
    from tabulate import tabulate

    cells = [c for c in st.cells if c.state == state]
    if not cells:
        return None
    cols = [(h, f) for h, f in COLUMNS[state] if any(getattr(c, f) not in (None, "") for c in cells)]
    rows = [[c.cell_id + ("*" if c.planned is False else ""), c.label, *(_cell(getattr(c, f), h) for h, f in cols)] for c in cells]
    return f"{state} ({len(cells)})\n" + tabulate(
        rows, headers=["id", "cell", *(h for h, _ in cols)], tablefmt="simple", disable_numparse=True
    )


def render(st: StoreStatus) -> str:
    """The summary line, the note, a table per state and what marks and paths mean."""
    parts = [summary_line(st)]
    if st.note:
        parts.append(f"note: {st.note}")
    parts += [t for t in (state_table(st, s) for s in ("done", "running", "waiting", "failed")) if t]
    if any(c.planned is False for c in st.cells):
        parts.append(
            "* not one of the cells the protocol expands to with these settings (another scale, other "
            "overrides, an earlier protocol file or aebench version); pass the settings the run had "
            "(scale=..., key=value)"
        )
    if any(c.state == "failed" for c in st.cells):
        parts.append(f"tracebacks: {st.store}/<id>/log.txt")
    return "\n\n".join(parts)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("protocol")
@click.option("--runs", **RUNS_OPTION)
@click.option("--json", "as_json", is_flag=True, help="print the same as JSON (for scripts)")
@click.argument("args", nargs=-1)
@_usage
def status(protocol: str, runs: Path | None, as_json: bool, args: tuple[str, ...]) -> None:
    """Which cells of PROTOCOL (a name or YAML file) are done, running (host, batch job, pid,
    start, last log line), waiting (not started, or interrupted) and failed (the error), read
    from the run store alone, whichever launcher runs them. Give the settings the run had
    ([scale=...] [data=...] [methods=[a,b]] [key=value ...]) to list its waiting cells."""
    from aebench.harness.protocol.status import protocol_status

    run_keys, overrides = _split_args(args)
    if "protocol" in run_keys:
        raise click.UsageError(f"name the protocol once, as PROTOCOL (here {protocol!r}), not protocol=")
    methods = run_keys.get("methods")
    methods = [methods] if isinstance(methods, str) else methods
    st = protocol_status(Path(runs or runs_dir()), protocol, overrides, run_keys.get("data"), methods)
    click.echo(json.dumps(st.to_json(), indent=2, default=str) if as_json else render(st))
