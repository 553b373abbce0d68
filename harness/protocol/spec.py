"""Protocol files (``protocols/<name>.yaml``): what a paper experiment runs, validated strictly.

Fields (an unknown field is an error naming the valid ones)::

    name: ablation
    description: Table 4 ...
    noise: real_repeats          # optional: the protocol whose reference measured this setup's
                                 # run-to-run spread (results/reference/<name>.json: spread);
                                 # tables quote it in a footnote
    table:                       # how `aebench tables`, `plot` and `report` lay it out (omit: ours only)
      paper: table4_ablation.csv # the paper table it reproduces (results/paper/; first column: row labels)
      columns: {PSNR: psnr, SSIM: ssim, LPIPS: lpips, LMD: lmd, Sync: sync_conf}  # paper column: ours
                                 # (a metric, or train_hours), shown in this order beside the paper's
      axis: {grid: iters, paper: iterations, label: iterations}   # a grid axis shown as a column
                                 # (its paper column; the x label of plots)
      by_audio: false            # one column per driving audio (the paper's cross-driven test sets)
      plot: bars                 # bars (each row, the paper's beside) | lines (metric vs axis) | none
    metrics: [paper, theval]     # metric names and families (aebench.eval.registry: paper, theval)
    expected_missing:            # optional: listed metrics this protocol's renders cannot yield, and why
      sync_conf: "40 frames at 64 px: syncnet-python keeps only tracks of more than 50 frames of faces over 100 px"
    rows:                        # one table row each: a method and its config switches
      - {label: AE-NeRF, method: aenerf}
      - {label: w/o AAA, method: aenerf, set: {aenerf.aaa: false}, drop: AAA}   # drop: the
                                 # `aebench ablate --drop` name of an ablation row
    targets: all                 # identities fine-tuned and rendered: all | [names]
    base: leave_one_out          # base-model identities: leave_one_out (all but the target) | [names] ([] none)
    data: synth                  # data root: synth (auto-built synthetic corpus) | clips (the clips
                                 # below, prepared on first use) | a folder of prepared identities
    synth: {identities: 3, seconds: 6.0, size: 64, seed: 0}
    clips: {from: "shared:clips", size: 128, max_seconds: 12}   # for data: clips (from: a folder or
                                 # a list of folders, e.g. ["shared:clips", "shared:clips_extra"])
    grid:                        # cell axes (cross product with rows and targets)
      clip_seconds: [0]          # 0 = the whole training half
      iters: [null]              # null = train.iters of the scale
      audio: [self]              # self | identity name | path (shared:audio/zozo.wav)
      seed: [0]
    settings: {}                 # config overrides for every cell (dotted keys)
    scales:                      # per-scale replacements of any field above
      smoke: {...}
      small: {...}
      paper: {...}
    include: [paper_table]       # shared blocks merged under this file's own fields: a name is
                                 # protocols/shared/<name>.yaml, a path is relative to this file;
                                 # mappings merge key by key (scales too), anything else is replaced
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aebench.config import strict_yaml
from aebench.media import FPS
from aebench.paths import paper_results_dir, protocols_dir
from aebench.settings import RootSettings, TrainSettings, declaration

FIELDS = {
    "name",
    "description",
    "noise",
    "table",
    "metrics",
    "expected_missing",
    "rows",
    "targets",
    "base",
    "data",
    "synth",
    "clips",
    "grid",
    "settings",
    "scales",
    "include",
}
#: the folder of the shared blocks a protocol names in ``include:`` (protocols/shared/<name>.yaml)
SHARED_BLOCKS = "shared"
ROW_FIELDS = {"label", "method", "set", "drop"}
TABLE_FIELDS = {"paper", "columns", "axis", "by_audio", "plot"}
AXIS_FIELDS = {"grid", "paper", "label"}
PLOTS = ("none", "lines", "bars")
#: what a table column may show besides a metric: the cell's cost (cell.json; the paper's Table 5
#: reports training hours): name -> (label, better direction). ``train_hours`` is a top-level field
#: of cell.json, the others its ``cost`` (:func:`aebench.harness.protocol.runner.cell_cost`).
CELL_VALUES = {
    "train_hours": ("training hours", "lower"),
    "train_s": ("training s", "lower"),
    "render_fps": ("render fps", "higher"),
    "peak_mem": ("peak memory GiB", "lower"),
}
GRID_FIELDS = {"clip_seconds", "iters", "audio", "seed"}
SYNTH_FIELDS = {"identities", "seconds", "size", "seed"}
#: ``clips``: a folder of videos (``shared:`` = under the shared data folder) prepared at
#: ``size`` px, the first ``max_seconds`` of each (null = whole clip), at ``fps``
CLIPS_FIELDS = {"from", "size", "max_seconds", "fps"}
#: config sections and keys every row of a protocol shares (equal footing); a row may set only
#: its method's own switches
SHARED_SECTIONS = ("train", "field", "data", "features", "seed", "scale", "device", "threads")


class ProtocolError(ValueError):
    """An unknown protocol or an invalid protocol file."""


@dataclass
class Row:
    label: str
    method: str
    set: dict = field(default_factory=dict)
    drop: str | None = None  # the ablation this row is, for `aebench ablate --drop NAME`


@dataclass
class Axis:
    """A grid axis shown as a table column and as the x of the ``lines`` plot."""

    grid: str  # the grid field (clip_seconds | iters), also the field of cell.json
    paper: str | None  # its column in the paper's table (None without one)
    label: str  # the axis label of plots

    @property
    def header(self) -> str:
        return self.paper or self.grid


@dataclass
class TableLayout:
    """How reports lay out a protocol (its ``table:`` field); report code holds no protocol names."""

    paper: str | None = None  # the paper's table, a CSV in results/paper/ (package data aebench.paper)
    columns: dict[str, str] = field(default_factory=dict)  # paper column -> our metric or cell value
    axis: Axis | None = None
    by_audio: bool = False  # one column per driving audio
    plot: str = "none"  # none | lines | bars


@dataclass
class Protocol:
    name: str
    scale: str | None  # None: read without a scale's overlay (the layout reports use)
    description: str
    table: TableLayout
    metrics: list[str]
    rows: list[Row]
    targets: list[str] | str
    base: list[str] | str
    data: str
    synth: dict
    clips: dict
    grid: dict
    settings: dict
    path: Path | None = None
    noise: str | None = None  # the protocol whose reference measured this setup's run-to-run spread
    text: str = ""  # the YAML as written, include: blocks merged in (a results file carries it)
    expected_missing: dict[str, str] = field(default_factory=dict)  # metric -> why its renders cannot yield it

    def row_rank(self, label: str) -> int:
        """Where a row label sorts in tables and plots: the YAML's order, unknown labels last."""
        order = [r.label for r in self.rows]
        return order.index(label) if label in order else len(order)


def available_protocols() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.yaml"))


def _check_fields(where: str, data: dict, valid: set[str]) -> None:
    if not isinstance(data, dict):
        raise ProtocolError(f"{where}: a mapping of fields ({', '.join(sorted(valid))}), got {data!r}")
    unknown = set(data) - valid
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {sorted(unknown)}; valid: {', '.join(sorted(valid))}")


def protocol_file(name_or_path: str | Path) -> Path:
    """The YAML file of a protocol given by name (``protocols/<name>.yaml``) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = protocols_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise ProtocolError(
            f"unknown protocol '{name_or_path}'; available: {', '.join(available_protocols())} (or the path of a protocol YAML file)"
        )
    return path


def paper_table(table: str) -> tuple[list[str], list[dict]]:
    """The header (its first column: the row labels) and the rows of the paper's table ``table``
    (a CSV in :func:`aebench.paths.paper_results_dir`), read by the validation and every report."""
    import csv

    path = paper_results_dir() / str(table)
    if not path.is_file():
        have = sorted(p.name for p in paper_results_dir().glob("*.csv"))
        raise ProtocolError(f"paper table {table!r} not found; the paper's tables: {', '.join(have)}")
    with open(path) as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    return list(reader.fieldnames or []), rows


def _layout(where: str, raw: Any, grid: dict, metric_names: set[str]) -> TableLayout:
    """The validated ``table:`` field (see the module docstring)."""
    if raw is None:
        return TableLayout()
    if not isinstance(raw, dict):
        raise ProtocolError(
            f"{where}: table is a mapping, e.g. table: {{paper: {raw}, columns: {{PSNR: psnr}}}} "
            f"(paper, columns, axis, by_audio, plot), got {raw!r}"
        )
    _check_fields(where, raw, TABLE_FIELDS)
    paper = raw.get("paper")
    header = paper_table(paper)[0] if paper else []
    columns = dict(raw.get("columns") or {})
    if columns and not paper:
        raise ProtocolError(f"{where}: columns map the paper's columns to ours; name the paper's table (paper: FILE.csv)")
    for col, ours in columns.items():
        if col not in header:
            raise ProtocolError(f"{where}: the paper's {paper} has no column {col!r}; its columns: {', '.join(header[1:])}")
        if ours not in metric_names and ours not in CELL_VALUES:
            raise ProtocolError(
                f"{where}: column {col} maps to {ours!r}, which is neither a metric "
                f"({', '.join(sorted(metric_names))}) nor a cell value ({', '.join(CELL_VALUES)})"
            )
    axis = None
    if raw.get("axis") is not None:
        a = raw["axis"]
        if not isinstance(a, dict) or "grid" not in a:
            raise ProtocolError(f"{where}: axis is a mapping {{grid: clip_seconds|iters, paper: COLUMN, label: TEXT}}, got {a!r}")
        _check_fields(f"{where} axis", a, AXIS_FIELDS)
        if a["grid"] not in ("clip_seconds", "iters"):
            raise ProtocolError(f"{where}: axis.grid must be clip_seconds or iters, got {a['grid']!r}")
        if a.get("paper") and paper and a["paper"] not in header:
            raise ProtocolError(
                f"{where}: the paper's {paper} has no column {a['paper']!r} for the axis; its columns: {', '.join(header[1:])}"
            )
        axis = Axis(grid=str(a["grid"]), paper=a.get("paper"), label=str(a.get("label") or a["grid"]))
    plot = str(raw.get("plot", "lines" if axis else "none"))
    if plot not in PLOTS:
        raise ProtocolError(f"{where}: plot must be one of {', '.join(PLOTS)}, got {plot!r}")
    if plot == "lines" and axis is None:
        raise ProtocolError(f"{where}: plot: lines draws metrics against the table's axis; set axis: {{grid: ...}}")
    by_audio = raw.get("by_audio", False)
    if not isinstance(by_audio, bool):
        raise ProtocolError(f"{where}: by_audio takes true or false, got {by_audio!r}")
    return TableLayout(paper=paper, columns=columns, axis=axis, by_audio=by_audio, plot=plot)


#: the largest seed and iteration count a run takes (the config's limits, one place)
MAX_SEED = declaration(RootSettings, "seed")[0].metadata["high"]
MAX_ITERS = declaration(TrainSettings, "iters")[0].metadata["high"]


def _number(v, whole: bool = False) -> bool:
    """A finite int or float (not a bool), whole when asked."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and (not whole or float(v).is_integer())


def _check_grid(path: Path, grid: dict[str, list]) -> None:
    """The grid's values have the types and ranges a run needs (refused here, not mid-run)."""
    for k, values in grid.items():
        if not values:
            raise ProtocolError(f"{path} grid.{k}: no values (an empty list runs nothing)")
    for v in grid["iters"]:
        if v is not None and not (_number(v, whole=True) and 1 <= v <= MAX_ITERS):
            raise ProtocolError(
                f"{path} grid.iters: {v!r} is not a whole number of iterations from 1 to {MAX_ITERS:g} (null: the scale's train.iters)"
            )
    for v in grid["seed"]:
        if not (_number(v, whole=True) and 0 <= v <= MAX_SEED):
            raise ProtocolError(f"{path} grid.seed: {v!r} is not a whole number from 0 to {MAX_SEED}")
    for v in grid["clip_seconds"]:
        if not _number(v) or v < 0:
            raise ProtocolError(f"{path} grid.clip_seconds: {v!r} is not a length in seconds (0: the whole training half)")
    for v in grid["audio"]:
        if not isinstance(v, str) or not v:
            raise ProtocolError(f"{path} grid.audio: {v!r} is not self, an identity name or an audio file")
    for k, values in grid.items():
        seen = [str(v) for v in values]
        if len(set(seen)) < len(seen):
            raise ProtocolError(f"{path} grid.{k}: {values!r} repeats a value (the same cells would run twice)")


#: top-level fields and the types they take (the rest of each field's shape is checked where it is read;
FIELD_TYPES = {
    "name": (str,),
    "description": (str,),
    "noise": (str,),
    "data": (str,),
    "synth": (dict,),
    "clips": (dict,),
    "grid": (dict,),
    "scales": (dict,),
}  # table, rows, metrics, targets, base,
#                settings and expected_missing have their own checks, with an example of the right shape
_TYPE_NAMES = {str: "a string", dict: "a mapping", list: "a list"}


def _check_types(where: str, data: dict) -> None:
    """Each top-level field has its type (None: the field's default)."""
    for key, types in FIELD_TYPES.items():
        v = data.get(key)
        if v is not None and not isinstance(v, types):
            want = " or ".join(_TYPE_NAMES[t] for t in types)
            raise ProtocolError(f"{where}: {key} takes {want}, got {v!r}")


def _check_data_sources(where: Path, synth: dict, clips: dict) -> None:
    """The synthetic corpus and clip settings are numbers in range, the clip folders strings."""
    checks = [
        ("synth.identities", synth["identities"], True, 2, 1000),
        ("synth.seconds", synth["seconds"], False, 0.5, 3600),
        ("synth.size", synth["size"], True, 16, 4096),
        ("synth.seed", synth["seed"], True, 0, MAX_SEED),
        ("clips.size", clips["size"], True, 16, 4096),
        ("clips.fps", clips["fps"], False, 1, 240),
    ]
    if clips["max_seconds"] is not None:
        checks.append(("clips.max_seconds", clips["max_seconds"], False, 0.1, 36000))
    for key, v, whole, lo, hi in checks:
        if not (_number(v, whole) and lo <= v <= hi):
            kind = "a whole number" if whole else "a number"
            raise ProtocolError(f"{where} {key}: takes {kind} from {lo:g} to {hi:g}, got {v!r}")
    sources = clips["from"] if isinstance(clips["from"], list) else [clips["from"]]
    if not sources or not all(isinstance(f, str) and f for f in sources):
        raise ProtocolError(f"{where} clips.from: a folder of clips or a list of folders, got {clips['from']!r}")


def _check_lists(path: Path, data: dict) -> None:
    """Fields that hold a list are lists (a string would be read letter by letter)."""
    for key, example in (("rows", "[{label: AE-NeRF, method: aenerf}]"), ("metrics", "[psnr, ssim]")):
        v = data.get(key)
        if v is not None and not isinstance(v, list):
            raise ProtocolError(f"{path}: {key} is a list, e.g. {key}: {example}, got {v!r}")
    if "metrics" in data and not all(isinstance(m, str) for m in data.get("metrics") or []):
        raise ProtocolError(f"{path}: metrics are names, e.g. metrics: [psnr, ssim], got {data['metrics']!r}")
    targets = data.get("targets", "all")
    if targets != "all" and not (isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets)):
        example = f", e.g. targets: [{targets}]" if isinstance(targets, str) else ""
        raise ProtocolError(f"{path}: targets is all or a list of identity names{example}, got {targets!r}")
    base = data.get("base", "leave_one_out")
    if base != "leave_one_out" and not (isinstance(base, list) and all(isinstance(b, str) and b for b in base)):
        raise ProtocolError(
            f"{path}: base is leave_one_out (every identity but the target) or a list of identity names ([] for none), got {base!r}"
        )
    settings = data.get("settings")
    if settings is not None and not isinstance(settings, dict):
        raise ProtocolError(f"{path}: settings is a mapping of dotted config keys, e.g. settings: {{train.iters: 3}}, got {settings!r}")


def _merged(base: dict, top: dict) -> dict:
    """``top`` over ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _include_file(name: str, including: Path) -> Path:
    """A shared block by name (``protocols/shared/<name>.yaml``) or by path (relative to the including file)."""
    if "/" in name or name.endswith(".yaml"):
        return (including.parent / name).resolve()
    return protocols_dir() / SHARED_BLOCKS / f"{name}.yaml"


def with_includes(raw: dict, path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """``raw`` with the blocks of its ``include:`` merged under its own fields (blocks may include others)."""
    names = raw.pop("include")
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ProtocolError(f"{path}: include is a shared block's name or a list of them, e.g. include: [paper_table], got {names!r}")
    merged: dict = {}
    for name in names:
        block_path = _include_file(name, Path(path))
        if not block_path.is_file():
            shared = sorted(p.stem for p in (protocols_dir() / SHARED_BLOCKS).glob("*.yaml"))
            raise ProtocolError(f"{path}: include {name!r}: no such block ({block_path}); shared blocks: {', '.join(shared)}")
        if block_path in seen:
            raise ProtocolError(f"{path}: include {name!r} includes itself ({' -> '.join(p.name for p in (*seen, block_path))})")
        try:
            block = strict_yaml(block_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ProtocolError(f"{block_path} (included by {path}) is not valid YAML: {' '.join(str(exc).split())}") from exc
        if not isinstance(block, dict):
            raise ProtocolError(f"{block_path} (included by {path}): a block is a mapping of protocol fields")
        _check_fields(str(block_path), block, FIELDS - {"name"})
        if "include" in block:
            block = with_includes(block, block_path, (*seen, block_path))
        merged = _merged(merged, block)
    return _merged(merged, raw)


def load_protocol(name_or_path: str | Path, scale: str | None = "smoke") -> Protocol:
    """Read and validate a protocol, with the overrides of ``scale`` applied (None: none, the
    protocol as written, which is what reports lay out)."""
    path = protocol_file(name_or_path)
    return parse_protocol(path.read_text(), path, scale)


def parse_protocol(text: str, path: Path, scale: str | None = "smoke", check_methods: bool = True) -> Protocol:
    """A protocol from its YAML ``text`` (``path`` names it in errors and gives the default name).
    ``check_methods=False`` reads a protocol whose methods are not installed here (a results
    file from elsewhere: its table is laid out, nothing is run)."""
    path = Path(path)
    raw, text = _document(text, path)
    data = _at_scale(raw, path, scale)
    grid = {"clip_seconds": [0.0], "iters": [None], "audio": ["self"], "seed": [0], **(data.get("grid") or {})}
    _check_fields(f"{path} grid", grid, GRID_FIELDS)
    grid = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items()}
    _check_grid(path, grid)
    _check_lists(path, data)
    synth = {"identities": 3, "seconds": 6.0, "size": 64, "seed": 0, **(data.get("synth") or {})}
    _check_fields(f"{path} synth", synth, SYNTH_FIELDS)
    clips = {"from": "shared:clips", "size": 128, "max_seconds": None, "fps": float(FPS), **(data.get("clips") or {})}
    _check_fields(f"{path} clips", clips, CLIPS_FIELDS)
    _check_data_sources(path, synth, clips)
    rows = _rows(path, data.get("rows") or [], check_methods)
    if "method" in {str(k).split(".")[0] for k in (data.get("settings") or {})}:
        raise ProtocolError(f"{path}: settings set method; each row names its method with method: NAME")
    from aebench.data.staging import check_name
    from aebench.eval.registry import METRICS

    metrics, expected = _metrics(path, data)
    try:  # the run store keeps cells under <runs>/<name>/: nothing may land outside it
        name = check_name(str(data.get("name", path.stem)), "protocol name")
    except ValueError as exc:
        raise ProtocolError(f"{path}: {exc}") from exc
    return Protocol(
        name=name,
        scale=scale,
        description=str(data.get("description", "")),
        table=_layout(f"{path} table", data.get("table"), grid, set(METRICS)),
        metrics=metrics,
        rows=rows,
        targets=data.get("targets", "all"),
        base=data.get("base", "leave_one_out"),
        data=str(data.get("data", "synth")),
        synth=synth,
        clips=clips,
        grid=grid,
        settings=dict(data.get("settings") or {}),
        path=path,
        noise=None if data.get("noise") is None else str(data["noise"]),
        text=text,
        expected_missing={str(k): str(v) for k, v in expected.items()},
    )


def _document(text: str, path: Path) -> tuple[dict, str]:
    """The protocol file as a mapping of known fields, its ``include:`` blocks merged in, and the
    text it is recorded as (the merged protocol when it includes blocks)."""
    try:
        raw = strict_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict):
        raise ProtocolError(f"{path}: a protocol is a mapping of fields ({', '.join(sorted(FIELDS))}), got {type(raw).__name__}")
    _check_fields(str(path), raw, FIELDS)
    if "include" in raw:  # the text a store records and a results file carries is the whole protocol
        raw = with_includes(raw, path)
        text = f"# {path.name}, its include: blocks merged in\n" + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    _check_types(str(path), raw)
    return raw, text


def _at_scale(raw: dict, path: Path, scale: str | None) -> dict:
    """The protocol's fields with the overlay of ``scale`` applied (every scale's overlay checked);
    ``grid``, ``settings``, ``synth`` and ``clips`` merge key by key, other fields are replaced."""
    raw = dict(raw)
    scales = raw.pop("scales", {}) or {}
    _check_fields(f"{path} scales", scales, {"smoke", "small", "paper"})
    for name, over in scales.items():  # every scale's overlay, not only the one asked for
        _check_fields(f"{path} scales.{name}", over or {}, FIELDS - {"scales", "name"})
        _check_types(f"{path} scales.{name}", over or {})
    data = copy.deepcopy(raw)
    overlay = (scales.get(scale) or {}) if scale else {}
    for key, value in overlay.items():
        if key in ("grid", "settings", "synth", "clips") and isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    return data


def _rows(path: Path, raw_rows: list, check_methods: bool) -> list[Row]:
    """The table's rows: each a method and its own switches (never a shared training condition
    or a launcher setting), one label each, methods registered here (when ``check_methods``)."""
    rows = []
    for i, r in enumerate(raw_rows):
        if not isinstance(r, dict):
            raise ProtocolError(f"{path} rows[{i}]: a row is a mapping, e.g. {{label: AE-NeRF, method: aenerf}}, got {r!r}")
        _check_fields(f"{path} rows[{i}]", r, ROW_FIELDS)
        if "method" not in r:
            raise ProtocolError(f"{path} rows[{i}]: needs a method")
        for key, kind in (("method", str), ("label", str), ("drop", str), ("set", dict)):
            if r.get(key) is not None and not isinstance(r[key], kind):
                raise ProtocolError(f"{path} rows[{i}]: {key} takes {_TYPE_NAMES[kind]}, got {r[key]!r}")
        row_set = dict(r.get("set") or {})
        if "method" in row_set:
            raise ProtocolError(f"{path} rows[{i}] sets method in set:; a row names its method with method: NAME")
        launcher = [k for k in row_set if str(k).split(".")[0] in ("slurm", "ray")]
        if launcher:  # where cells run is the run's choice, not a row's (and not part of a cell)
            raise ProtocolError(
                f"{path} rows[{i}] sets {', '.join(map(str, launcher))}: launcher settings apply to a "
                f"whole run; give them on the command line (aebench run ... launcher=slurm slurm.KEY=VALUE)"
            )
        shared = [k for k in row_set if str(k).split(".")[0] in SHARED_SECTIONS]
        if shared:
            raise ProtocolError(
                f"{path} rows[{i}] sets {', '.join(shared)}: training conditions ({', '.join(SHARED_SECTIONS)}) "
                f"are shared by every row of a protocol; put them under 'settings' (all rows), or use "
                f"train.preset=official for each method's own values"
            )
        rows.append(
            Row(
                label=str(r.get("label", r["method"])),
                method=r["method"],
                set=row_set,
                drop=None if r.get("drop") is None else str(r["drop"]),
            )
        )
    if not rows:
        raise ProtocolError(f"{path}: no rows")
    labels = [r.label for r in rows]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:  # a table shows one entry per label: two rows under one label would hide one of them
        raise ProtocolError(f"{path}: row label(s) {twice} used by more than one row; give each row its own label")
    from aebench.registry import methods as registered

    unknown_methods = sorted({r.method for r in rows} - set(registered())) if check_methods else []
    if unknown_methods:
        raise ProtocolError(f"{path}: unknown method(s) {unknown_methods}; registered: {', '.join(registered())}")
    return rows


def _metrics(path: Path, data: dict) -> tuple[list[str], dict]:
    """The protocol's metrics (families expanded; all by default) and those it expects to be
    missing, each with its reason (a metric it does not list is refused)."""
    from aebench.eval.registry import METRICS, expand

    try:
        metrics = expand(list(data.get("metrics") or list(METRICS)))
    except ValueError as exc:
        raise ProtocolError(f"{path}: {exc}") from exc
    expected = data.get("expected_missing") or {}
    if not isinstance(expected, dict) or not all(isinstance(v, str) and v.strip() for v in expected.values()):
        raise ProtocolError(
            f'{path}: expected_missing maps a metric to the reason its renders cannot yield it (metric: "reason"), got {expected!r}'
        )
    strays = [m for m in expected if m not in metrics]
    if strays:
        raise ProtocolError(f"{path}: expected_missing names {strays}, which the protocol does not list; its metrics: {', '.join(metrics)}")
    return metrics, expected
