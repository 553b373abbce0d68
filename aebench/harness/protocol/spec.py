"""Protocol files (``protocols/<name>.yaml``): what a paper experiment runs, validated strictly.

Fields (an unknown field is an error naming the valid ones)::

    name: ablation
    description: Table 4 ...
    table: table4_ablation.csv   # the paper table it reproduces (results/paper/), or null
    rows_from: variant           # table rows are labelled by: method | variant
    metrics: [psnr, ssim, lpips, lmd, lmd_dlib, sync_conf, sync_dist]
    rows:                        # one table row each: a method and its config switches
      - {label: AE-NeRF, method: aenerf}
      - {label: w/o AAA, method: aenerf, set: {aenerf.aaa: false}}
    targets: all                 # identities fine-tuned and rendered: all | [names]
    base: leave_one_out          # base-model identities: leave_one_out | all_others_in_list | [names]
    data: synth                  # data root: synth (auto-built synthetic corpus) | clips (the clips
                                 # below, prepared on first use) | a folder of prepared identities
    synth: {identities: 3, seconds: 6.0, size: 64, seed: 0}
    clips: {from: "shared:clips", size: 128, max_seconds: 12}   # for data: clips
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
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aebench.media import FPS
from aebench.paths import protocols_dir

FIELDS = {"name", "description", "table", "rows_from", "metrics", "rows", "targets", "base", "data", "synth",
          "clips", "grid", "settings", "scales"}
ROW_FIELDS = {"label", "method", "set"}
GRID_FIELDS = {"clip_seconds", "iters", "audio", "seed"}
SYNTH_FIELDS = {"identities", "seconds", "size", "seed"}
#: ``clips``: a folder of videos (``shared:`` = under the shared data folder) prepared at
#: ``size`` px, the first ``max_seconds`` of each (null = whole clip), at ``fps``
CLIPS_FIELDS = {"from", "size", "max_seconds", "fps"}
#: config sections and keys every row of a protocol shares (equal footing); a row may set only
#: its method's own switches
SHARED_SECTIONS = ("train", "data", "features", "seed", "scale", "device")


class ProtocolError(ValueError):
    """An unknown protocol or an invalid protocol file."""


@dataclass
class Row:
    label: str
    method: str
    set: dict = field(default_factory=dict)


@dataclass
class Protocol:
    name: str
    scale: str
    description: str
    table: str | None
    rows_from: str
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


def available_protocols() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.yaml"))


def _check_fields(where: str, data: dict, valid: set[str]) -> None:
    unknown = set(data) - valid
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {sorted(unknown)}; valid: {', '.join(sorted(valid))}")


def protocol_file(name_or_path: str | Path) -> Path:
    """The YAML file of a protocol given by name (``protocols/<name>.yaml``) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = protocols_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise ProtocolError(f"unknown protocol '{name_or_path}'; available: {', '.join(available_protocols())} "
                            f"(or the path of a protocol YAML file)")
    return path


def load_protocol(name_or_path: str | Path, scale: str = "smoke") -> Protocol:
    """Read and validate a protocol, with the overrides of ``scale`` applied."""
    path = protocol_file(name_or_path)
    raw = yaml.safe_load(path.read_text()) or {}
    _check_fields(str(path), raw, FIELDS)
    scales = raw.pop("scales", {}) or {}
    _check_fields(f"{path} scales", scales, {"smoke", "small", "paper"})
    data = copy.deepcopy(raw)
    overlay = scales.get(scale) or {}
    _check_fields(f"{path} scales.{scale}", overlay, FIELDS - {"scales", "name"})
    for key, value in overlay.items():
        if key in ("grid", "settings", "synth", "clips") and isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    grid = {"clip_seconds": [0.0], "iters": [None], "audio": ["self"], "seed": [0], **(data.get("grid") or {})}
    _check_fields(f"{path} grid", grid, GRID_FIELDS)
    grid = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items()}
    synth = {"identities": 3, "seconds": 6.0, "size": 64, "seed": 0, **(data.get("synth") or {})}
    _check_fields(f"{path} synth", synth, SYNTH_FIELDS)
    clips = {"from": "shared:clips", "size": 128, "max_seconds": None, "fps": float(FPS), **(data.get("clips") or {})}
    _check_fields(f"{path} clips", clips, CLIPS_FIELDS)
    rows = []
    for i, r in enumerate(data.get("rows") or []):
        _check_fields(f"{path} rows[{i}]", r, ROW_FIELDS)
        if "method" not in r:
            raise ProtocolError(f"{path} rows[{i}]: needs a method")
        row_set = dict(r.get("set") or {})
        shared = [k for k in row_set if str(k).split(".")[0] in SHARED_SECTIONS]
        if shared:
            raise ProtocolError(f"{path} rows[{i}] sets {', '.join(shared)}: training conditions ({', '.join(SHARED_SECTIONS)}) "
                                f"are shared by every row of a protocol; put them under 'settings' (all rows), or use "
                                f"train.preset=official for each method's own values")
        rows.append(Row(label=str(r.get("label", r["method"])), method=r["method"], set=row_set))
    if not rows:
        raise ProtocolError(f"{path}: no rows")
    rows_from = data.get("rows_from", "method")
    if rows_from not in ("method", "variant"):
        raise ProtocolError(f"{path}: rows_from must be method or variant, got {rows_from!r}")
    from aebench.eval.registry import METRICS

    unknown = [m for m in data.get("metrics") or [] if m not in METRICS]
    if unknown:
        raise ProtocolError(f"{path}: unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return Protocol(name=str(data.get("name", path.stem)), scale=scale, description=str(data.get("description", "")),
                    table=data.get("table"), rows_from=rows_from,
                    metrics=list(data.get("metrics") or list(METRICS)),
                    rows=rows, targets=data.get("targets", "all"), base=data.get("base", "leave_one_out"),
                    data=str(data.get("data", "synth")), synth=synth, clips=clips, grid=grid,
                    settings=dict(data.get("settings") or {}), path=path)


def raw_protocol(name_or_path: str | Path) -> dict[str, Any]:
    """The protocol file as written (for reports that need its layout), with ``name`` filled in
    (the file's stem when it sets none): the run store keeps its cells under that name."""
    path = protocol_file(name_or_path)
    raw = yaml.safe_load(path.read_text()) or {}
    raw.setdefault("name", path.stem)
    return raw
