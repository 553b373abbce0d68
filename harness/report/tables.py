"""Our numbers in the layout of the paper's tables, with the paper's numbers beside.

One function, :func:`render_table`, builds every table from the run store with pandas:

* Each metric is a pair of columns, ``X (ours)`` and ``X (paper)``. Ours is the mean over the
  row's identities (the unit of replication; the seeds of an identity are averaged first) with
  the half width of its 95% confidence interval (Student t over the identities,
  :mod:`aebench.harness.report.stats`) and the count: ``22.00 ± 12.71 (n=2)``,
  ``24.25 ± 4.03 (n=3, 2 seeds each)``; one run reads ``21.00 (n=1, one run)``. Frames of one
  video are never repeats. An identity whose metric is missing does not hide the others: the
  entry says ``(n=1 of 2)``; only when none has a value it reads ``missing`` (a footnote names
  the fix). A paper row we did not run reads ``not run``. Where seeds were repeated, a footnote
  gives the seed-to-seed standard deviation, pooled within identities.
* ``versus=ROW`` adds after each of our columns the paired difference of each row from ROW
  (row minus ROW; seeds paired within an identity and averaged, then paired by identity and
  grid point) with its 95% t interval, the exact sign-flip permutation p and the p adjusted by
  Holm over every comparison of the table (one family). The word is ``resolved`` exactly when
  the adjusted p is below 0.05, else ``not resolved``. A last row gives, under each comparison
  column, the smallest difference the table could resolve with its n and measured spread.
* Cost columns (``train_s``, ``render_fps``, ``peak_mem``, the paper's ``train_hours``) are
  cell values (:data:`~aebench.harness.protocol.spec.CELL_VALUES`), shown like metrics.
* The layout is the protocol's own (its ``table:`` field, :class:`~aebench.harness.protocol.spec.TableLayout`):
  the paper's table, which of its columns stand beside which of ours, the grid axis shown as
  a column, the per-voice split. This module holds no protocol names: a protocol copied to
  another file prints the same table.
* Protocols with ``by_audio``, and any protocol whose cells are driven by more than one audio,
  get one column per driving audio (the paper's Testsets B and C are different voices),
  never one pooled number under two headings; a metric that needs the ground truth gets
  only its self-driven column (no other voice can have it).
* Labels come from the metric registry; a labelled variant says so in its header
  (``LMD (dlib)``), and entries computed with unofficial weights or a variant recipe
  carry a marker explained in a footnote.
* Every row states its scale, working size, data root and iterations, so a smoke number is
  never mistaken for a paper-scale one.
"""

from __future__ import annotations

import dataclasses

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from aebench.harness.protocol.spec import CELL_VALUES, paper_table
from aebench.harness.report import stats

UNOFFICIAL, VARIANT = "†", "‡"
#: store verifications that are not a full sha256 (aebench.weights.verify): marked like unofficial files
UNVERIFIED = ("sha256-prefix", "none (hash unknown)")


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"


UNIT_KEYS = stats.UNIT_KEYS
#: what pairs two cells of different rows: the same unit and seed
PAIR_KEYS = UNIT_KEYS + ("seed",)
_UNIT_COLS = [f"pair__{k}" for k in UNIT_KEYS]
_PAIR_COLS = [f"pair__{k}" for k in PAIR_KEYS]


def _seeds_text(seeds: list[int]) -> str:
    """How many seeds each unit holds, as an entry says it (nothing for one seed each)."""
    lo, hi = min(seeds), max(seeds)
    if hi <= 1:
        return ""
    return f", {hi} seeds each" if lo == hi else f", {lo}-{hi} seeds each"


def _units(group: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per unit (identity at a grid point) of ``group``: the mean of ``metric`` over its seeds with
    a value (``mean``, NaN when none has one), how many seeds have one (``seeds``) and how many
    runs it holds (``runs``)."""
    g = group.groupby(_UNIT_COLS, dropna=False)[metric]
    return pd.DataFrame({"mean": g.mean(), "seeds": g.count(), "runs": g.size()})


def _entry(group: pd.DataFrame, metric: str, marks: str) -> str:
    """``mean ± CI half width (n=k[ of m][, s seeds each])`` over the units of a group."""
    units = _units(group, metric)
    present = units[units["seeds"] > 0]
    if present.empty:
        return "missing"
    ci = stats.mean_ci(present["mean"].to_numpy(dtype=float))
    text = _fmt(ci.mean)
    if ci.half is not None:
        text += f" ± {_fmt(ci.half)}"
    seeds = present["seeds"].astype(int).tolist()
    of = f" of {len(units)}" if len(present) < len(units) else ""
    single = ", one run" if len(present) == 1 and seeds == [1] else ""
    runs, valued = int(present["runs"].sum()), int(present["seeds"].sum())
    partial = f"; {valued} of {runs} runs with a value" if valued < runs else ""
    return f"{text}{marks} (n={len(present)}{of}{_seeds_text(seeds)}{single}{partial})"


def _signed(v: float) -> str:
    return ("+" if v > 0 else "") + _fmt(v)


@dataclass
class Comparison:
    """One ``--versus`` test: a row's paired difference from the reference row in one column,
    over units (seeds averaged within each), and its Holm-adjusted p within the table's family."""

    row: str
    axis: str
    audio: str
    metric: str
    difference: stats.Difference | None  # None: no complete pair
    unit_differences: np.ndarray  # one paired difference per unit
    seeds: list[int]  # seeds paired within each unit
    p_adjusted: float | None = None  # None: not a test of the family (no p-value)

    @property
    def resolved(self) -> bool:
        """The one verdict rule: the Holm-adjusted p is below :data:`stats.ALPHA`."""
        return self.p_adjusted is not None and self.p_adjusted < stats.ALPHA

    def text(self) -> str:
        """The comparison as a table entry."""
        d = self.difference
        if d is None:
            return "no pairs"
        n = f"n={d.n}{_seeds_text(self.seeds)}"
        if d.low is None:
            return f"{_signed(d.mean)} ({n}, no interval)"
        if d.p is None or self.p_adjusted is None:  # a cost column: shown, not a test of the family
            return f"{_signed(d.mean)} [{_signed(d.low)}, {_signed(d.high)}] ({n}, a cost: not tested)"
        verdict = "resolved" if self.resolved else "not resolved"
        return f"{_signed(d.mean)} [{_signed(d.low)}, {_signed(d.high)}] p={d.p:.3g}, adj. p={self.p_adjusted:.3g} ({n}, {verdict})"

    def record(self) -> dict:
        """The comparison as a results file holds it."""
        d = self.difference
        return {
            "row": self.row,
            "axis": self.axis or None,
            "audio": self.audio or None,
            "metric": self.metric,
            "n": None if d is None else d.n,
            "seeds": self.seeds,
            "mean": None if d is None else d.mean,
            "low": None if d is None else d.low,
            "high": None if d is None else d.high,
            "p": None if d is None else d.p,
            "p_adjusted": self.p_adjusted,
            "resolved": self.resolved,
        }


def _pair(group: pd.DataFrame, base: pd.DataFrame, key: tuple[str, str, str], metric: str) -> Comparison:
    """The paired difference ``group - base`` of ``metric``: cells paired by unit and seed, the
    seeds of a unit averaged, then the units paired."""
    merged = group.merge(base, on=_PAIR_COLS, suffixes=("", "__base"))
    merged = merged[_UNIT_COLS + [metric, f"{metric}__base"]].dropna()
    merged = merged[~merged[[metric, f"{metric}__base"]].isin([math.inf, -math.inf]).any(axis=1)]
    row, axis, audio = key
    if merged.empty:
        return Comparison(row, axis, audio, metric, None, np.array([]), [])
    per_unit = merged.groupby(_UNIT_COLS, dropna=False).agg(a=(metric, "mean"), b=(f"{metric}__base", "mean"), seeds=(metric, "size"))
    a, b = per_unit["a"].to_numpy(float), per_unit["b"].to_numpy(float)
    return Comparison(row, axis, audio, metric, stats.paired_difference(a, b), a - b, per_unit["seeds"].astype(int).tolist())


def adjust(family: list[Comparison]) -> None:
    """Holm-adjust the p-values of one table's comparisons in place: the tests are the metrics'
    comparisons with an interval and a p-value (two units or more); cost columns are shown, not
    tested."""
    tested = [
        c
        for c in family
        if c.difference is not None and c.difference.p is not None and c.difference.low is not None and c.metric not in CELL_VALUES
    ]
    for c, adj in zip(tested, stats.holm([c.difference.p for c in tested])):
        c.p_adjusted = adj


def family_size(family: list[Comparison]) -> int:
    """How many of an adjusted family's comparisons are its tests (Holm's m)."""
    return sum(c.p_adjusted is not None for c in family)


def _resolvable(column: list[Comparison], family: int) -> str:
    """The smallest difference a comparison column could resolve (:func:`stats.resolvable_difference`)
    with its n and the measured spread of its paired differences."""
    diffs = [c.unit_differences for c in column if c.unit_differences.size]
    if not diffs:
        return ""
    if column[0].metric in CELL_VALUES:
        return "(a cost: not tested)"
    tested = [c.unit_differences for c in column if c.p_adjusted is not None]
    if not tested or family == 0:
        return f"none (n={max(d.size for d in diffs)}: no interval)"
    n = min(d.size for d in tested)  # what the tested row with the fewest pairs can resolve
    sd, _ = stats.pooled_sd(tested)
    mdd = stats.resolvable_difference(sd, n, family)
    if mdd is None:
        return f"unknown (n={n}, no spread)"
    if math.isinf(mdd):
        return f"none (n={n}: smallest p {stats.smallest_sign_flip_p(n):.3g} x {family} tests)"
    return f"±{_fmt(mdd)} (sd {_fmt(sd)}, n={n})"


def _seed_spread(df: pd.DataFrame, metric: str, audio: str) -> tuple[float | None, int]:
    """Seed-to-seed standard deviation of ``metric``, pooled within every (row, axis value, unit)
    that repeated its seeds (:func:`stats.pooled_sd`), and its degrees of freedom."""
    sub = df[df["audio"] == audio] if audio else df
    groups = [g[metric].to_numpy(float) for _, g in sub.groupby(["row", "axis"] + _UNIT_COLS, dropna=False)]
    return stats.pooled_sd(groups)


def _value_label(metric: str) -> str:
    from aebench.eval.registry import METRICS

    return METRICS[metric].label if metric in METRICS else CELL_VALUES[metric][0]


def _cell_value(c: dict, metric: str):
    if metric == "train_hours":
        return c.get("train_hours")
    if metric in CELL_VALUES:
        return (c.get("cost") or {}).get(metric)
    return c["summary"].get(metric)


def _noise_note(protocol_name: str | None) -> str | None:
    """The footnote quoting the measured run-to-run spread of the protocol named by ``noise:``
    (its committed reference's ``spread``), when that reference is at hand."""
    if not protocol_name:
        return None
    from aebench.harness.report.regress import reference_path

    path = reference_path(protocol_name)
    if not path.is_file():
        return None
    import json

    ref = json.loads(path.read_text())
    spread = ref.get("spread") or {}
    if not spread.get("sd"):
        return None
    parts = ", ".join(f"{_value_label(m)} {_fmt(v)}" for m, v in spread["sd"].items() if v is not None)
    return (
        f"run-to-run noise of this setup, measured by protocol {protocol_name} ({spread.get('how', '')}): "
        f"standard deviation between seeds {parts}"
    )


def _axis_value(v) -> str:
    return f"{float(v):g}" if v not in (None, "") else ""


def audio_name(spec: str) -> str:
    """Short name of a driving audio spec: ``shared:audio/zozo.wav`` -> ``zozo``, ``self`` -> ``self``."""
    return Path(str(spec).split(":", 1)[-1]).stem


def _cell_marks(cell: dict, metric: str) -> str:
    """Markers of one cell's metric: weights the user gave that are not the official files (†), a
    labelled variant recipe (‡). Store copies verified as far as the manifest knows are not marked."""
    from aebench.eval.registry import METRICS, weights_of

    info = cell.get("info") or {}
    marks = ""
    m = METRICS.get(metric)
    records = [(info.get("weights", {}).get(w) or {}) for w in weights_of(metric)]
    if any((r.get("verification") == "explicit file" and not r.get("official")) or r.get("verification") in UNVERIFIED for r in records):
        marks += UNOFFICIAL
    if m and m.variant and m.variant(info):
        marks += VARIANT
    return marks


def _audios_of(metric: str, audios: list[str]) -> list[str]:
    """The driving-audio columns of a metric: only the self-driven one where it needs the ground
    truth (when there is one; a table without self-driven cells keeps its columns)."""
    from aebench.eval.registry import METRICS

    m = METRICS.get(metric)
    if m is not None and m.needs_gt and "self" in audios:
        return ["self"]
    return audios


@dataclass
class Built:
    """A table before formatting: its header, body (strings), caption, footnotes and the
    ``--versus`` family of comparisons (Holm-adjusted)."""

    headers: list[str]
    body: list[list[str]]
    caption: str
    footnotes: list[str]
    family: list[Comparison]

    @property
    def family_size(self) -> int:
        return family_size(self.family)


def render_table(
    protocol: str | Path | None,
    runs_root: Path,
    fmt: str = "md",
    only: list[str] | None = None,
    versus: str | None = None,
    results_file: Path | None = None,
    rows: list[str] | None = None,
) -> str:
    """The table of ``protocol`` (a name in ``protocols/``, a YAML path, or the
    :class:`~aebench.harness.report.results.Results` a caller already read) from the run store, or
    from ``results_file`` (a results file; ``protocol`` may then be None), laid out as the
    protocol's ``table:`` says; ``only``: show just these of its metrics (in the protocol's
    order) and cost columns; ``versus``: a row label, adds each row's paired difference from it;
    ``rows``: show just these rows (the ``versus`` family is the rows shown)."""
    return format_table(build_table(protocol, runs_root, only, versus, results_file, rows), fmt)


def comparisons(
    protocol, runs_root: Path, versus: str, only: list[str] | None = None, results_file: Path | None = None, rows: list[str] | None = None
) -> dict:
    """The ``--versus`` family of a table as a results file holds it: how the tests were made and
    one record per comparison (:meth:`Comparison.record`)."""
    built = build_table(protocol, runs_root, only, versus, results_file, rows)
    return {
        "versus": versus,
        "unit": "identity (seeds averaged within each)",
        "interval": "Student t, 95%",
        "test": "exact two-sided sign-flip permutation",
        "adjustment": "holm",
        "alpha": stats.ALPHA,
        "family_size": built.family_size,
        "tests": [c.record() for c in built.family],
    }


def build_table(
    protocol: str | Path | None,
    runs_root: Path,
    only: list[str] | None = None,
    versus: str | None = None,
    results_file: Path | None = None,
    rows: list[str] | None = None,
) -> Built:
    """The table of :func:`render_table`, not yet formatted: the cells read (after the arguments
    are checked against the protocol), their values as records, the columns laid out, the rows
    filled (with the ``versus`` family, Holm-adjusted as one), the footnotes."""
    res, metrics = _table_inputs(protocol, runs_root, only, versus, results_file, rows)
    layout = _lay_out(res, metrics, only, versus)
    df = _records(res.cells, layout)
    body, family, notes = _rows(res, df, layout, versus)
    footnotes = _footnotes(res, df, layout, body, notes, versus, family_size(family))
    return Built(layout.headers, body, _caption(res, layout), footnotes, family)


def _table_inputs(
    protocol, runs_root: Path, only: list[str] | None, versus: str | None, results_file: Path | None, rows: list[str] | None = None
) -> tuple:
    """(the :class:`Results` a table shows, its metric and cost columns): the arguments are checked
    against the protocol before the run store is read; ``rows`` keeps just those rows."""
    from aebench.harness.protocol.spec import load_protocol
    from aebench.harness.report.results import Results, from_store, load

    res = protocol if isinstance(protocol, Results) else (load(protocol, runs_root, results_file) if results_file is not None else None)
    spec = res.spec if res is not None else load_protocol(protocol, scale=None)
    metrics = list(spec.metrics)
    if only:
        unknown = [m for m in only if m not in metrics and m not in CELL_VALUES]
        if unknown:
            raise ValueError(
                f"protocol {spec.name} has no metric(s) {unknown}; its metrics: {', '.join(metrics)}; "
                f"cost columns: {', '.join(CELL_VALUES)}"
            )
        metrics = [m for m in metrics if m in only] + [m for m in only if m in CELL_VALUES]
    labels = list(dict.fromkeys([r.label for r in spec.rows] + ([c["row"] for c in res.cells] if res else [])))
    if rows:
        unknown = [r for r in rows if r not in labels]
        if unknown:
            raise ValueError(f"--rows: {unknown} not rows of protocol {spec.name}; its rows: {', '.join(labels)}")
        labels = [r for r in labels if r in rows]
    if versus is not None and versus not in labels:
        raise ValueError(
            f"--versus {versus!r} is not a row of protocol {spec.name}{' shown' if rows else ''}; its rows: {', '.join(labels)}"
        )
    res = res or from_store(spec, runs_root)
    if rows:
        kept = dataclasses.replace(res.spec, rows=[r for r in res.spec.rows if r.label in rows])
        res = dataclasses.replace(res, spec=kept, cells=[c for c in res.cells if c["row"] in rows])
    return res, metrics


@dataclass
class Layout:
    """Where a table's values go: its metric columns (each paired with the paper's column, or ours
    only), the driving voices, the rows' keys (the paper's first), the headers."""

    table: str | None  # the paper's table file
    axis: object  # the protocol's axis (a grid field shown as a column), or None
    by_audio: bool  # one column per driving voice
    metric_cols: list[tuple[str, str]]  # (the paper's column name, our metric)
    ours_only: set[str]  # metrics without a paper column
    audios: list[str]
    paper: dict  # (row label, axis value) -> the paper's row
    keys: list[tuple[str, str]]  # (row label, axis value), in the order shown
    paper_only: list[str]  # the paper's columns shown as they are (per voice)
    headers: list[str]


def _lay_out(res, metrics: list[str], only: list[str] | None, versus: str | None) -> Layout:
    """The columns and rows of the table of ``res`` (before any value is filled in)."""
    spec, cells = res.spec, res.cells
    layout = spec.table
    table, axis = layout.paper, layout.axis
    by_audio = layout.by_audio or len({str(c.get("audio", "self")) for c in cells}) > 1
    if table and not by_audio:
        metric_cols = [
            (col, ours)
            for col, ours in layout.columns.items()  # our column paired with the paper's
            if not only or ours in metrics
        ]
        paired = {m for _, m in metric_cols}
        metric_cols += [(_value_label(m), m) for m in metrics if m not in paired]  # ours only (e.g. LMD (dlib))
    else:
        metric_cols = [(_value_label(m), m) for m in metrics]
    ours_only = {m for name, m in metric_cols if name not in layout.columns}
    audios = sorted(
        {audio_name(c.get("audio", "self")) if by_audio else "" for c in cells}, key=lambda a: (a != "self", a)
    )  # self-driven first
    paper: dict = {}
    if table:
        header, prows = paper_table(table)
        paper = {(r[header[0]], _axis_value(r.get(axis.paper)) if axis and axis.paper else ""): r for r in prows}
    ours_keys = sorted(
        dict.fromkeys((c["row"], _axis_value(c.get(axis.grid)) if axis else "") for c in cells),
        key=lambda k: (spec.row_rank(k[0]), k[0], k[1]),
    )
    keys = list(paper) + [k for k in ours_keys if k not in paper]
    headers = ["row"] + ([axis.header] if axis else [])
    for name, metric in metric_cols:
        label = _value_label(metric)
        ours_name = label if (not table or by_audio or "(" in label) else name  # variants say so
        for audio in _audios_of(metric, audios):
            voice = f" [{audio}]" if by_audio else ""
            headers.append(f"{ours_name}{voice} (ours)")
            if versus is not None:
                headers.append(f"{ours_name}{voice} vs {versus}")
        if table and not by_audio and metric not in ours_only:
            headers.append(f"{name} (paper)")
    paper_only = list(layout.columns) if by_audio and table else []  # per voice: the paper's test sets, as they are
    headers += [f"{p} (paper)" for p in paper_only] + ["scale", "size", "iters", "data"]
    return Layout(table, axis, by_audio, metric_cols, ours_only, audios, paper, keys, paper_only, headers)


def _records(cells: list[dict], layout: Layout) -> pd.DataFrame:
    """One record per cell: its row, axis value, voice, unit and pairing keys, and each column's
    value and marks."""
    records = []
    for c in cells:
        rec = {
            "row": c["row"],
            "axis": _axis_value(c.get(layout.axis.grid)) if layout.axis else "",
            "audio": audio_name(c.get("audio", "self")) if layout.by_audio else "",
            "scale": c["scale"],
            "size": c["size"],
            "iters": str(c["iters"]),
            "data": Path(c.get("data_root") or "").name,
            **{f"pair__{k}": str(c.get(k)) for k in PAIR_KEYS},
        }
        for _, metric in layout.metric_cols:
            v = _cell_value(c, metric)
            rec[metric] = float("nan") if v is None else float(v)
            rec[f"{metric}__marks"] = _cell_marks(c, metric)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _rows(res, df: pd.DataFrame, layout: Layout, versus: str | None) -> tuple[list[list], list[Comparison], dict]:
    """The table's body (with the ``versus`` comparisons adjusted as one family and the row of
    resolvable differences), the family, and why a metric is missing where it is."""
    cells, axis, table, by_audio = res.cells, layout.axis, layout.table, layout.by_audio
    notes: dict[str, str] = {}
    body: list[list] = []
    family: list[Comparison] = []
    for key in layout.keys:
        group = df[(df["row"] == key[0]) & (df["axis"] == key[1])]
        row = [key[0]] + ([key[1]] if axis else [])
        for name, metric in layout.metric_cols:
            for audio in _audios_of(metric, layout.audios):
                g = group[group["audio"] == audio]
                if g.empty:
                    row.append("not run")
                else:
                    marks = "".join(sorted(set("".join(g[f"{metric}__marks"]))))
                    row.append(_entry(g, metric, marks))
                    if g[metric].isna().any():
                        for c in cells:
                            if c["row"] == key[0] and metric in c.get("missing", {}):
                                notes[metric] = c["missing"][metric]
                        if metric in CELL_VALUES:
                            notes[metric] = (
                                "not recorded by cells run before aebench recorded costs (`aebench run` of a fresh run store records them)"
                            )
                if versus is not None:
                    base = df[(df["row"] == versus) & (df["axis"] == key[1]) & (df["audio"] == audio)]
                    if key[0] == versus or g.empty or base.empty:
                        row.append("(reference)" if key[0] == versus else "not run")
                    else:
                        family.append(_pair(g, base, (key[0], key[1], audio), metric))
                        row.append(family[-1])  # its text once the family is adjusted
            if table and not by_audio and metric not in layout.ours_only:
                row.append(layout.paper[key].get(name, "") if key in layout.paper else "-")
        row += [layout.paper[key].get(p, "") if key in layout.paper else "-" for p in layout.paper_only]
        if group.empty:
            row += ["", "", "", ""]
        else:
            row += [group["scale"].iloc[0], group["size"].iloc[0], ",".join(sorted(set(group["iters"]))), group["data"].iloc[0]]
        body.append(row)
    adjust(family)
    body = [[v.text() if isinstance(v, Comparison) else v for v in r] for r in body]
    if versus is not None and family:
        tests = family_size(family)
        last = ["resolvable difference"] + ([""] if axis else [])
        for _name, metric in layout.metric_cols:
            for audio in _audios_of(metric, layout.audios):
                last.append("")
                last.append(_resolvable([c for c in family if c.metric == metric and c.audio == audio], tests))
            if table and not by_audio and metric not in layout.ours_only:
                last.append("")
        body.append(last + [""] * (len(layout.headers) - len(last)))
    return body, family, notes


def _caption(res, layout: Layout) -> str:
    table = layout.table
    return (
        f"Protocol {res.spec.name}"
        + (f" - paper table {table} (paper numbers: arXiv 2312.10921)" if table else "")
        + f"; ours from {res.origin}: {stats.t_interval_note()}; ± is the interval's half width; "
        "scale, size and iterations per row"
    )


def _footnotes(res, df: pd.DataFrame, layout: Layout, body: list[list], notes: dict[str, str], versus: str | None, tests: int) -> list[str]:
    """What a reader needs to read the table: why a value is missing, how the comparisons were
    made, the seed spread and the setup's noise, what is not shown, what the marks mean."""
    from aebench.eval.registry import METRICS

    spec, cells = res.spec, res.cells
    for m, why in spec.expected_missing.items():  # the protocol's reason, not a cell's (it was never computed)
        if m in df.columns and df[m].isna().any():
            notes[m] = f"this protocol's renders cannot yield it: {why}"
    footnotes = [f"missing {m}: {why}" for m, why in notes.items()]
    if versus is not None:
        footnotes.append(
            f"vs {versus}: each row minus {versus}; seeds paired within an identity and averaged (only seeds both rows "
            "have), then paired by identity and grid point (n = identities): mean [95% Student t interval], the exact "
            f"two-sided sign-flip permutation p and that p adjusted by Holm over the {tests} comparisons of the metric "
            'columns of this table as shown (one family; cost columns are not tested); "resolved" exactly when the '
            f'adjusted p is below {stats.ALPHA:g}, "not resolved" otherwise. Row "resolvable difference" (a t '
            f"approximation): the smallest mean difference the column could resolve, t(1 - {stats.ALPHA:g}/(2m), n-1) x "
            f"sd / sqrt(n) with m = {tests} tests, n the fewest identities of a row and sd the measured standard deviation "
            "of the paired differences (pooled over the rows; the half width of the interval at Holm's strictest step; "
            'the sign-flip test also needs nearly every identity\'s difference to share its sign); "none" where the '
            "smallest sign-flip p of n pairs, 2/2^n, times m is not below the level, or n < 2"
        )
    spread = [
        f"{_value_label(metric)}{f' [{audio}]' if layout.by_audio else ''} {_fmt(sd)} (dof {dof})"
        for _, metric in layout.metric_cols
        for audio in _audios_of(metric, layout.audios)
        for sd, dof in [_seed_spread(df, metric, audio)]
        if sd is not None
    ]
    if spread:
        footnotes.append(
            "seed-to-seed standard deviation (pooled within each identity and row where seeds were "
            "repeated; the entries average the seeds first): " + ", ".join(spread)
        )
    noise = _noise_note(spec.noise)
    if noise:
        footnotes.append(noise)
    if res.unfinished:
        footnotes.append(
            "unfinished (started, not done; `aebench run` resumes them): "
            + ", ".join(f"{row} ({n} cell{'s' if n > 1 else ''})" for row, n in res.unfinished.items())
        )
    if res.stale:
        footnotes.append(
            f"{len(res.stale)} finished cell(s) ran on identities prepared again since and are not "
            f"shown (`aebench run` runs them on the new data): {', '.join(res.stale)}"
        )
    superseded = sorted(i for c in cells for i in c.get("superseded", []))
    if superseded:
        footnotes.append(
            f"{len(superseded)} older finished cell(s) at the same grid points, run with other settings, are not "
            f"shown (the latest of each is): {', '.join(superseded)}"
        )
    used = "".join(str(v) for r in body for v in r)
    if UNOFFICIAL in used:
        footnotes.append(
            f"{UNOFFICIAL} computed with weights not verified as the official files: a file the user gave, or a "
            "store file whose full sha256 is unknown (only a prefix, or nothing; see each cell's "
            "metrics.json: weights)"
        )
    if VARIANT in used:
        marked = dict.fromkeys(
            METRICS[m].variant_note
            for _, m in layout.metric_cols
            if m in METRICS and METRICS[m].variant_note and f"{VARIANT}" in "".join(df[f"{m}__marks"])
        )
        footnotes.append(f"{VARIANT} " + "; ".join(marked))
    return footnotes


def md_cell(v) -> str:
    """A Markdown table cell: a ``|`` would end the cell and a line break the row (e.g. in a row
    label from a protocol file), so they are escaped and joined."""
    return " ".join(v.replace("|", "\\|").splitlines()) if isinstance(v, str) else v


def csv_cell(v):
    """A CSV cell a spreadsheet shows as text: one starting with ``=``, ``@``, a tab, a carriage
    return, or ``+``/``-`` not followed by a digit would run as a formula (OWASP's CSV injection
    advice), so it gets a leading ``'``; signed numbers like ``-1.03 [...]`` and ``+0.16`` stay."""
    if isinstance(v, str) and v and (v[0] in "=@\t\r" or (v[0] in "+-" and not v[1:2].isdigit())):
        return "'" + v
    return v


def format_table(built: Built, fmt: str = "md") -> str:
    """A built table as Markdown (``md``), ``csv``, ``latex`` or ``html`` (each escaped for its
    format: :func:`md_cell`, :func:`csv_cell`; tabulate escapes LaTeX and HTML)."""
    headers, body, caption, footnotes = built.headers, built.body, built.caption, built.footnotes
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([csv_cell(h) for h in headers])
        w.writerows([[csv_cell(v) for v in r] for r in body])
        return buf.getvalue()
    if fmt == "latex":
        return f"% {caption}\n" + tabulate(body, headers, tablefmt="latex", disable_numparse=True) + "".join(f"\n% {n}" for n in footnotes)
    if fmt == "html":
        import html

        return (
            f"<p class=caption>{html.escape(caption)}</p>\n"
            + tabulate(body, headers, tablefmt="html", disable_numparse=True)
            + "".join(f"\n<p class=note>{html.escape(n)}</p>" for n in footnotes)
        )
    return (
        caption
        + "\n\n"
        + tabulate([[md_cell(v) for v in r] for r in body], [md_cell(h) for h in headers], tablefmt="github", disable_numparse=True)
        + ("\n\n" + "\n".join(footnotes) if footnotes else "")
    )
