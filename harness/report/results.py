"""What reports read: a protocol's scored cells, from the run store or from a results file.

A results file (``aebench export PROTOCOL --out results.json``; ``aebench eval ... --export``)
is one versioned JSON document, its schema ``aebench/schemas/results-v2.schema.json`` (JSON
Schema 2020-12): the protocol as written (its table layout), and per cell its resolved config,
summary, missing metrics, per-frame metrics, evaluation record, cost and provenance; with
``--versus ROW`` also the table's paired comparisons (``comparisons``: over identities,
Holm-adjusted as one family). Version 1 files (no ``comparisons``) are still read. Tables,
plots and reports read it exactly as they read the run store (:class:`Results`), so results
can be shared and compared without the runs; what a file cannot hold (the renders) is what
the side-by-side videos need, and a report from a file says so instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, UTC
from importlib.resources import files
from pathlib import Path

from aebench.json_numbers import from_json, to_json

SCHEMA_NAME, SCHEMA_VERSION = "aebench-results", 2
#: the versions this aebench reads (each has its schema file)
READABLE_VERSIONS = (1, 2)


class ResultsError(ValueError):
    """A results file that cannot be read or breaks the schema (the message names the field)."""


@dataclass
class Results:
    """A protocol's finished cells as every report reads them (``cells``: the fields of
    ``cell.json`` plus ``summary``, ``missing``, ``info``, ``superseded``, and ``dir`` for cells
    in a run store, None for cells read from a file)."""

    spec: object  # aebench.harness.protocol.spec.Protocol
    cells: list[dict]
    unfinished: dict[str, int] = field(default_factory=dict)
    origin: str = ""  # where the cells came from (a run store folder or a file), for captions
    stale: list[str] = field(default_factory=list)  # cells left out: their identity's data changed since they ran

    @property
    def from_file(self) -> bool:
        return bool(self.cells) and self.cells[0].get("dir") is None


def from_store(protocol, runs_root: Path) -> Results:
    """The finished cells of ``protocol`` (a name, a YAML path or a Protocol) in the run store."""
    from aebench.harness.protocol.run_store import check_protocol_folder, read_cells, unfinished_rows
    from aebench.harness.protocol.spec import Protocol, load_protocol

    spec = protocol if isinstance(protocol, Protocol) else load_protocol(protocol, scale=None)
    check_protocol_folder(Path(runs_root), spec)
    cells, stale = [], []
    for c in read_cells(Path(runs_root), spec.name):
        (stale if _data_changed(c) else cells).append(c)
    check_repeats(spec, cells, f"the run store {Path(runs_root) / spec.name}")
    unfinished = unfinished_rows(Path(runs_root), spec.name)
    if not cells:
        started = f" ({sum(unfinished.values())} started but unfinished)" if unfinished else ""
        old = f" ({len(stale)} finished on data prepared again since)" if stale else ""
        raise FileNotFoundError(
            f"no finished runs of protocol '{spec.name}' under {runs_root}{started}{old}; run `aebench run protocol={spec.name}` first"
        )
    return Results(spec, cells, unfinished, f"{runs_root}/{spec.name}", [Path(c["dir"]).name for c in stale])


def of_cells(spec, runs_root: Path, cells: list) -> Results:
    """The finished ones of ``cells`` (:class:`~aebench.harness.protocol.cells.Cell`, e.g. what a
    regression check just ran) as :class:`Results`, read as every report reads the store."""
    from aebench.harness.protocol.run_store import cell_folder, is_done, read_cell

    folders = [cell_folder(runs_root, c) for c in cells]
    return Results(spec, [read_cell(d) for d in folders if is_done(d)], origin=f"{runs_root}/{spec.name}")


def _data_changed(cell: dict) -> bool:
    """Whether an identity a store cell ran on (its target or a base identity) has been prepared
    again (another content hash at the same place) since: its numbers are not results of the data
    there now. Cells run before cells recorded their data's hash, or whose data folder is gone,
    cannot tell: False."""
    from aebench.data.identity import IdentityError

    from aebench.harness.protocol.cells import identity_hash

    run = (cell.get("config") or {}).get("run") or {}
    root = ((cell.get("config") or {}).get("data") or {}).get("root")
    for name, recorded in (run.get("data_sha256") or {}).items():  # the target and its base identities
        folder = Path(root or "") / name
        if root and recorded and (folder / "meta.json").is_file():
            try:
                if identity_hash(folder) != recorded:
                    return True
            except IdentityError:
                continue
    return False


def _varied_axes(spec) -> set[str]:
    """The grid axes the protocol varies at any scale (its file's top-level grid or a scale's
    overlay: cross_driven names one voice at the top and three at small and paper scale), and
    the driving audio always (a table gives each voice its own column)."""
    from aebench.harness.protocol.spec import ProtocolError, parse_protocol

    grids = [spec.grid]
    for scale in ("smoke", "small", "paper") if spec.text else ():  # an eval file's layout has no text
        try:
            grids.append(parse_protocol(spec.text, spec.path or Path(f"{spec.name}.yaml"), scale=scale, check_methods=False).grid)
        except ProtocolError:
            continue
    return {"audio"} | {axis for g in grids for axis, values in g.items() if len(values or [None]) > 1}


def check_repeats(spec, cells: list[dict], origin: str) -> None:
    """Refuse cells of one row that differ in anything but the seed, the identity and the grid's
    axes: they are different experiments, and a table would pool them as repeats of one entry
    (e.g. a second run with ``train.iters=4`` beside one with 3). The message names the settings,
    how many cells hold each value, and how to keep one."""
    from aebench.harness.protocol.cells import GRID_KEYS, RUNTIME_KEYS, settings_apart

    varied = tuple(key for axis, keys in GRID_KEYS.items() if axis in _varied_axes(spec) for key in keys)
    by_row: dict[str, list[dict]] = {}
    for c in cells:
        if c.get("config") is not None:
            by_row.setdefault(c["row"], []).append(c)
    for row, group in by_row.items():
        apart = settings_apart([c["config"] for c in group], allowed=varied + RUNTIME_KEYS)
        if apart:
            what = "; ".join(f"{k}: " + ", ".join(f"{v} in {n} cell(s)" for v, n in vals.items()) for k, vals in list(apart.items())[:4])
            more = f" (and {len(apart) - 4} more settings)" if len(apart) > 4 else ""
            raise ResultsError(
                f"protocol {spec.name}, row {row!r}: {origin} holds cells that differ in {what}{more}. They are "
                f"different experiments, not repeats, and would be pooled as one entry; keep one: delete the "
                f"other cells' folders, or run each variant into its own store (--runs DIR) or as its own row"
            )


def load(protocol, runs_root: Path, results_file: Path | None = None) -> Results:
    """From ``results_file`` when given (``protocol``, if given too, must be the file's), else
    from the run store."""
    if results_file is None:
        if protocol is None:
            raise ValueError("name a protocol, or read a results file with --from FILE")
        return from_store(protocol, runs_root)
    res = read_results(results_file)
    if protocol is not None:
        name = getattr(protocol, "name", None) or Path(str(protocol)).stem  # a name or a YAML path
        if name != res.spec.name:
            raise ValueError(
                f"{results_file} holds protocol '{res.spec.name}', not '{name}'; drop the protocol argument to show the file's"
            )
    return res


# ----- writing ------------------------------------------------------------------------------


def _clean(obj):
    """JSON-safe: infinities as ``"inf"``, NaN as null, paths as strings."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return to_json(obj)


def _cell_record(cell: dict) -> dict:
    """One run-store cell as the file holds it: its resolved config, per-frame metrics and
    training curve read from its folder."""
    from aebench.eval.api import read_frames
    from aebench.harness.protocol.run_store import training_curve

    if cell.get("dir") is None:  # read from a results file (with_earlier): already a record
        return {k: v for k, v in cell.items() if k != "dir"}
    d = Path(cell["dir"])
    rec = {k: v for k, v in cell.items() if k not in ("dir", "finished", "base", "finetuned", "protocol")}
    rec["frames"] = read_frames(d)
    rec["training_curve"] = training_curve(d)
    return rec


def document(protocol_text: str | None, protocol_name: str | None, cells: list[dict], unfinished: dict[str, int] | None = None) -> dict:
    """A results document (schema version :data:`SCHEMA_VERSION`) of ready cell records."""
    from aebench.provenance import provenance

    doc = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "producer": provenance(),
        "protocol": None if protocol_name is None else {"name": protocol_name, "yaml": protocol_text or ""},
        "unfinished": dict(unfinished or {}),
        "cells": cells,
    }
    return _clean(doc)


def export(protocol, runs_root: Path) -> dict:
    """The results document of ``protocol``'s finished cells in the run store (``protocol``: a
    name, a YAML path, or the :class:`Results` a caller already read from it)."""
    res = protocol if isinstance(protocol, Results) else from_store(protocol, runs_root)
    return document(res.spec.text, res.spec.name, [_cell_record(c) for c in res.cells], res.unfinished)


def grid_point(cell: dict) -> tuple:
    """What a cell measured: its row, identity and grid values."""
    return (cell["row"], cell["identity"], cell["clip_seconds"], cell["iters"], cell["audio"], cell["seed"])


def with_earlier(res: Results, earlier: Results) -> tuple[Results, int]:
    """``res`` (a run store's cells) and the cells of ``earlier`` (a results file of the same
    protocol) at the grid points ``res`` lacks, and how many were kept: the rows added since that
    file need not run its other rows again. Each kept cell carries its own provenance (code,
    machine). Refused when the file is another protocol, or its protocol differs from this one in
    what its cells compute or are scored on (targets, base, data, grid, settings, metrics, a row)
    beyond rows added since: that would compare different experiments."""
    import dataclasses

    a, b = res.spec, earlier.spec
    if a.name != b.name:
        raise ResultsError(f"{earlier.origin} holds protocol '{b.name}', not '{a.name}'")
    now = {r.label: r for r in a.rows}
    changed = [r.label for r in b.rows if now.get(r.label) != r]
    if changed:
        raise ResultsError(f"{earlier.origin}: row(s) {', '.join(changed)} differ from protocol '{a.name}' as it is now; run them again")
    # what a cell computes and is scored on must match; how the protocol is described, laid out and
    # where it was read from need not (an expected-missing note declares, it computes nothing)
    bare = {
        "rows": [],
        "text": "",
        "path": Path(f"{a.name}.yaml"),
        "description": "",
        "table": a.table,
        "noise": None,
        "expected_missing": {},
    }
    if dataclasses.replace(a, **bare) != dataclasses.replace(b, **bare):
        raise ResultsError(f"{earlier.origin}: protocol '{a.name}' changed since that file (more than rows added); run it again")
    have = {grid_point(c) for c in res.cells}
    kept = [c for c in earlier.cells if grid_point(c) not in have]
    return Results(a, res.cells + kept, res.unfinished, res.origin, res.stale), len(kept)


def eval_document(result, label: str, pred: str, gt: str | None, audio: str | None) -> dict:
    """The results document of one ``aebench eval`` (an external method's video): one cell,
    row ``label``, no protocol."""
    from aebench.provenance import provenance

    cell = {
        "cell_id": label,
        "row": label,
        "method": "external",
        "identity": Path(str(gt or pred)).stem,
        "clip_seconds": None,
        "iters": None,
        "audio": "self" if gt else str(audio or "own track"),
        "seed": None,
        "scale": None,
        "size": (result.info.get("resolution") or [None, None])[1],
        "data_root": None,
        "inputs": {"pred": str(pred), "gt": gt, "audio": audio},
        "timings": {"eval_s": result.info.get("provenance", {}).get("eval_s")},
        "sha256": result.hashes(),
        "provenance": result.info.get("provenance") or provenance(),
        "config": None,
        "summary": result.to_json()["summary"],
        "missing": dict(result.missing),
        "info": result.info,
        "frames": result.frames,
    }
    return document(None, None, [cell])


def write_results(doc: dict, path: Path) -> Path:
    """Validate ``doc`` and write it atomically to ``path``."""
    from aebench.harness.protocol.run_store import atomic_write

    validate(doc)
    atomic_write(Path(path), json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return Path(path)


# ----- reading and checking -----------------------------------------------------------------


def schema(version: int = SCHEMA_VERSION) -> dict:
    """The JSON Schema of results files of ``version`` (package data)."""
    return json.loads((files("aebench") / "schemas" / f"results-v{version}.schema.json").read_text())


def validate(doc) -> None:
    """Raise :class:`ResultsError` naming the first offending field (its JSON path) when ``doc``
    breaks the schema."""
    import jsonschema

    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if type(version) is not int:  # noqa: E721  (not True, not 1.0: each version has its own file)
        version = None
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA_NAME and version not in READABLE_VERSIONS:
        raise ResultsError(f"schema_version {version!r}: this aebench reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    validator = jsonschema.Draft202012Validator(schema(version if version in READABLE_VERSIONS else SCHEMA_VERSION))
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if errors:
        e = errors[0]
        where = e.json_path if list(e.absolute_path) else "$ (the document)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ResultsError(f"field {where}: {e.message}{more}")
    _check_values(doc)


def _check_values(doc: dict) -> None:
    """What the schema cannot say: every metric is one this aebench knows, every value a finite
    number in its metric's range, and a null summary value has its reason in ``missing``."""
    from aebench.eval.registry import METRICS

    for i, cell in enumerate(doc["cells"]):
        for name, v in cell["summary"].items():
            where = f"field $.cells[{i}].summary.{name}"
            if name not in METRICS:
                raise ResultsError(
                    f"{where}: unknown metric {name!r} (known here: {', '.join(METRICS)}; a plugin's metric needs its package installed)"
                )
            if v is None:
                if not str((cell.get("missing") or {}).get(name) or "").strip():
                    raise ResultsError(f"{where}: null without a reason in $.cells[{i}].missing.{name}")
                continue
            problem = METRICS[name].check_value(from_json(v))
            if problem:
                raise ResultsError(f"{where}: {problem}; a wrong number is refused")
        for j, frame in enumerate(cell.get("frames") or []):
            for name, v in frame.items():
                if name == "frame" or v is None or name not in METRICS:
                    continue
                problem = METRICS[name].check_value(from_json(v))
                if problem:
                    raise ResultsError(f"field $.cells[{i}].frames[{j}].{name}: {problem}; a wrong number is refused")


def read_results(path: Path) -> Results:
    """A results file as :class:`Results` (validated first)."""
    from aebench.harness.protocol.spec import ProtocolError, parse_protocol

    from aebench.json_numbers import JSONFileError, read_json

    path = Path(path)
    try:
        doc = read_json(path, "results file")
    except JSONFileError as exc:
        raise ResultsError(str(exc)) from exc
    try:
        validate(doc)
    except RecursionError as exc:
        raise ResultsError(f"{path}: nested too deeply to be a results file") from exc
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from exc
    cells = []
    for c in doc["cells"]:
        cell = dict(c)
        cell["summary"] = {k: from_json(v) for k, v in c["summary"].items()}
        cell.setdefault("superseded", [])
        cell["dir"] = None
        cells.append(cell)
    if doc["protocol"] is None:
        spec = _external_protocol(cells)
    else:
        try:
            spec = parse_protocol(doc["protocol"]["yaml"], Path(f"{doc['protocol']['name']}.yaml"), scale=None, check_methods=False)
        except ProtocolError as exc:
            raise ResultsError(f"{path}: field $.protocol.yaml: {exc}") from exc
    check_repeats(spec, cells, str(path))
    return Results(spec, cells, dict(doc.get("unfinished") or {}), str(path))


def _external_protocol(cells: list[dict]):
    """The plain layout of an ``aebench eval`` file: one row per cell, its metrics as columns."""
    from aebench.harness.protocol.spec import Protocol, Row, TableLayout

    metrics = list(dict.fromkeys(m for c in cells for m in c["summary"]))
    rows = [Row(label=r, method="external") for r in dict.fromkeys(c["row"] for c in cells)]
    return Protocol(
        name="eval",
        scale=None,
        description="external videos scored by `aebench eval`",
        table=TableLayout(),
        metrics=metrics,
        rows=rows,
        targets=sorted({c["identity"] for c in cells}),
        base=[],
        data="",
        synth={},
        clips={},
        grid={"seed": [None]},
        settings={},
    )
