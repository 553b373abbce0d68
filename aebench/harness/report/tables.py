"""Our numbers in the layout of the paper's tables, with the paper's numbers beside.

One function, :func:`render_table`, builds every table from the run store with pandas:

* Each metric is a pair of columns, ``X (ours)`` and ``X (paper)``. Ours is the mean over the
  finished cells of that row (identities, seeds) with its spread and count:
  ``22.00 ± 1.41 (n=2)`` (std over cells, ``ddof=1``). A cell whose metric is missing does not
  hide the others: the entry says ``(n=1 of 2)``; only when no cell has a value it reads
  ``missing`` (a footnote names the fix). A paper row we did not run reads ``not run``.
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

import csv
import io
import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from aebench.harness.protocol.run_store import read_cells, unfinished_rows
from aebench.harness.protocol.spec import paper_table

UNOFFICIAL, VARIANT = "†", "‡"
#: store verifications that are not a full sha256 (aebench.weights.verify): marked like unofficial files
UNVERIFIED = ("sha256-prefix", "none (hash unknown)")


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"


def _entry(values: pd.Series, marks: str) -> str:
    """``mean ± std (n=k[ of m])`` of a group's values (None/NaN = missing in that cell)."""
    present = values.dropna()
    if present.empty:
        return "missing"
    mean = float(present.mean())
    text = _fmt(mean)
    if len(present) > 1 and not math.isinf(mean):
        text += f" ± {_fmt(float(present.std(ddof=1)))}"
    of = f" of {len(values)}" if len(present) < len(values) else ""
    return f"{text}{marks} (n={len(present)}{of})"


def _axis_value(v) -> str:
    return f"{float(v):g}" if v not in (None, "") else ""


def audio_name(spec: str) -> str:
    """Short name of a driving audio spec: ``shared:audio/zozo.wav`` -> ``zozo``, ``self`` -> ``self``."""
    return Path(str(spec).split(":", 1)[-1]).stem


def _cell_marks(cell: dict, metric: str) -> str:
    """Markers of one cell's metric: weights the user gave that are not the official files (†), a
    labelled variant recipe (‡). Store copies verified as far as the manifest knows are not marked."""
    from aebench.eval.registry import METRICS
    from aebench.weights import manifest

    info = cell.get("info") or {}
    marks = ""
    m = METRICS.get(metric)
    used = [w for w, e in manifest().items() if metric in e.get("used_by", [])]
    records = [(info.get("weights", {}).get(w) or {}) for w in used]
    if any((r.get("verification") == "explicit file" and not r.get("official"))
           or r.get("verification") in UNVERIFIED for r in records):
        marks += UNOFFICIAL
    if m and m.group == "sync" and (info.get("sync") or {}).get("crop") == "dlib":
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


def render_table(protocol: str | Path, runs_root: Path, fmt: str = "md", only: list[str] | None = None) -> str:
    """The table of ``protocol`` (a name in ``protocols/`` or a YAML path) from the run store,
    laid out as the protocol's ``table:`` says; ``only``: show just these of its metrics (in the
    protocol's order)."""
    from aebench.eval.registry import METRICS
    from aebench.harness.protocol.spec import load_protocol

    spec = load_protocol(protocol, scale=None)
    protocol = spec.name  # a path names its protocol; cells live under that name
    layout = spec.table
    metrics = list(spec.metrics)
    if only:
        unknown = [m for m in only if m not in metrics]
        if unknown:
            raise ValueError(f"protocol {protocol} has no metric(s) {unknown}; its metrics: {', '.join(metrics)}")
        metrics = [m for m in metrics if m in only]
    cells = read_cells(Path(runs_root), protocol)
    unfinished = unfinished_rows(Path(runs_root), protocol)
    if not cells:
        started = f" ({sum(unfinished.values())} started but unfinished)" if unfinished else ""
        raise FileNotFoundError(f"no finished runs of protocol '{protocol}' under {runs_root}{started}; "
                                f"run `aebench run protocol={protocol}` first")
    table = layout.paper
    axis = layout.axis
    by_audio = layout.by_audio or len({str(c.get("audio", "self")) for c in cells}) > 1
    if table and not by_audio:
        metric_cols = [(col, ours) for col, ours in layout.columns.items()  # our column paired with the paper's
                       if not only or ours in metrics]
        paired = {m for _, m in metric_cols}
        metric_cols += [(METRICS[m].label, m) for m in metrics if m not in paired]  # ours only (e.g. LMD (dlib))
    else:
        metric_cols = [(METRICS[m].label, m) for m in metrics]
    ours_only = {m for name, m in metric_cols if name not in layout.columns}

    records = []
    for c in cells:
        rec = {"row": c["row"], "axis": _axis_value(c.get(axis.grid)) if axis else "",
               "audio": audio_name(c.get("audio", "self")) if by_audio else "", "scale": c["scale"],
               "size": c["size"], "iters": str(c["iters"]), "data": Path(c["data_root"]).name}
        for _, metric in metric_cols:
            v = c["train_hours"] if metric == "train_hours" else c["summary"].get(metric)
            rec[metric] = float("nan") if v is None else float(v)
            rec[f"{metric}__marks"] = _cell_marks(c, metric)
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    audios = sorted(df["audio"].unique(), key=lambda a: (a != "self", a))  # self-driven first

    paper: dict = {}
    if table:
        header, prows = paper_table(table)
        label_col = header[0]
        paper = {(r[label_col], _axis_value(r.get(axis.paper)) if axis and axis.paper else ""): r for r in prows}
    order = [r.label for r in spec.rows]
    ours_keys = sorted(dict.fromkeys(zip(df["row"], df["axis"])),
                       key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]))
    keys = list(paper) + [k for k in ours_keys if k not in paper]

    headers = ["row"] + ([axis.header] if axis else [])
    columns: list[tuple[str, str, str]] = []  # (header, metric, audio)
    for name, metric in metric_cols:
        label = METRICS[metric].label if metric in METRICS else name
        ours_name = label if (not table or by_audio or "(" in label) else name  # variants say so
        for audio in _audios_of(metric, audios):
            columns.append((f"{ours_name}{f' [{audio}]' if by_audio else ''} (ours)", metric, audio))
            headers.append(columns[-1][0])
        if table and not by_audio and metric not in ours_only:
            headers.append(f"{name} (paper)")
    paper_only = list(layout.columns) if by_audio and table else []  # per voice: the paper's test sets, as they are
    headers += [f"{p} (paper)" for p in paper_only]
    headers += ["scale", "size", "iters", "data"]

    notes: dict[str, str] = {}
    body = []
    for key in keys:
        group = df[(df["row"] == key[0]) & (df["axis"] == key[1])]
        row = [key[0]] + ([key[1]] if axis else [])
        for name, metric in metric_cols:
            for audio in _audios_of(metric, audios):
                g = group[group["audio"] == audio]
                if g.empty:
                    row.append("not run")
                else:
                    marks = "".join(sorted(set("".join(g[f"{metric}__marks"]))))
                    row.append(_entry(g[metric], marks))
                    if g[metric].isna().any():
                        for c in cells:
                            if c["row"] == key[0] and metric in c.get("missing", {}):
                                notes[metric] = c["missing"][metric]
            if table and not by_audio and metric not in ours_only:
                row.append(paper[key].get(name, "") if key in paper else "-")
        row += [paper[key].get(p, "") if key in paper else "-" for p in paper_only]
        if group.empty:
            row += ["", "", "", ""]
        else:
            row += [group["scale"].iloc[0], group["size"].iloc[0], ",".join(sorted(set(group["iters"]))),
                    group["data"].iloc[0]]
        body.append(row)
    caption = (f"Protocol {protocol}" + (f" - paper table {table} (paper numbers: arXiv 2312.10921)" if table else "")
               + f"; ours from {runs_root}/{protocol}: mean ± std over cells (n = cells with a value); "
                 "scale, size and iterations per row")
    footnotes = [f"missing {m}: {why}" for m, why in notes.items()]
    if unfinished:
        footnotes.append("unfinished (started, not done; `aebench run` resumes them): "
                         + ", ".join(f"{row} ({n} cell{'s' if n > 1 else ''})" for row, n in unfinished.items()))
    superseded = sorted(i for c in cells for i in c.get("superseded", []))
    if superseded:
        footnotes.append(f"{len(superseded)} older finished cell(s) at the same grid points, run with other settings, are not "
                         f"shown (the latest of each is): {', '.join(superseded)}")
    used = "".join(str(v) for r in body for v in r)
    if UNOFFICIAL in used:
        footnotes.append(f"{UNOFFICIAL} computed with weights not verified as the official files: a file the user gave, or a "
                         "store file whose full sha256 is unknown (only a prefix, or nothing; see each cell's "
                         "metrics.json: weights)")
    if VARIANT in used:
        footnotes.append(f"{VARIANT} SyncNet on face crops from dlib landmarks (crop: dlib), not the S3FD pipeline")
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(headers)
        w.writerows(body)
        return buf.getvalue()
    if fmt == "latex":
        return (f"% {caption}\n" + tabulate(body, headers, tablefmt="latex", disable_numparse=True)
                + "".join(f"\n% {n}" for n in footnotes))
    if fmt == "html":
        import html

        return (f"<p class=caption>{html.escape(caption)}</p>\n"
                + tabulate(body, headers, tablefmt="html", disable_numparse=True)
                + "".join(f"\n<p class=note>{html.escape(n)}</p>" for n in footnotes))
    return (caption + "\n\n" + tabulate(body, headers, tablefmt="github", disable_numparse=True)
            + ("\n\n" + "\n".join(footnotes) if footnotes else ""))
