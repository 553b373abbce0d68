"""Our numbers in the layout of the paper's tables, with the paper's numbers beside.

Each metric appears as a pair of columns, ``X (ours)`` and ``X (paper)``; ours is the mean
over the finished cells of that row (identities, seeds), with ``n`` cells. A metric that
could not be computed (weights absent) reads ``missing`` (a footnote names the fix), a
paper row we did not run reads ``not run``. Every row states its scale, working size,
data root and iterations, so a smoke number is never mistaken for a paper-scale one.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from aebench.paths import paper_results_dir
from aebench.report.store import read_cells

#: paper column -> our metric
PAPER_METRICS = {"PSNR": "psnr", "SSIM": "ssim", "LPIPS": "lpips", "LMD": "lmd_dlib", "Sync": "sync_conf",
                 "Sync_A": "sync_conf", "Sync_B": "sync_conf", "Sync_C": "sync_conf", "training_hours": "train_hours"}
#: protocol -> (paper metric columns to show, extra grid axis shown as a column)
LAYOUT = {
    "self_driven": (["PSNR", "SSIM", "LPIPS", "LMD", "Sync_A"], None),
    "cross_driven": (["Sync_B", "Sync_C"], None),
    "fewshot_length": (["PSNR", "SSIM", "LPIPS", "LMD", "Sync"], "clip_seconds"),
    "fewshot_iters": (["PSNR", "SSIM", "LPIPS", "LMD", "Sync"], "iterations"),
    "ablation": (["PSNR", "SSIM", "LPIPS", "LMD", "Sync"], None),
    "rrs": (["PSNR", "SSIM", "LPIPS", "LMD", "Sync", "training_hours"], None),
}
AXIS_FIELD = {"clip_seconds": "clip_seconds", "iterations": "iters"}


def _fmt(v) -> str:
    if v is None:
        return "missing"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def _paper_rows(table: str) -> tuple[list[str], list[dict]]:
    path = paper_results_dir() / table
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return list(rows[0].keys()), rows


def _axis_value(v) -> str:
    return f"{float(v):g}" if v not in (None, "") else ""


def render_table(protocol: str, runs_root: Path, fmt: str = "md") -> str:
    from aebench.protocol.spec import raw_protocol
    from eval.registry import METRICS

    spec = raw_protocol(protocol)
    cells = read_cells(Path(runs_root), protocol)
    if not cells:
        return (f"no finished runs of protocol '{protocol}' under {runs_root}; "
                f"run `aebench run protocol={protocol}` first")
    table = spec.get("table")
    paper_cols, axis = LAYOUT.get(protocol, ([], None))
    ours = defaultdict(list)
    for c in cells:
        ours[(c["row"], _axis_value(c.get(AXIS_FIELD[axis])) if axis else "")].append(c)
    if table:
        header, prows = _paper_rows(table)
        label_col = header[0]
        paper = {(r[label_col], _axis_value(r.get(axis)) if axis else ""): r for r in prows}
        metric_cols = [(m, PAPER_METRICS[m]) for m in paper_cols]  # paper column names; ours labelled below
    else:
        paper = {}
        metrics = spec.get("metrics") or ["psnr", "ssim"]
        metric_cols = [(METRICS[m].label, m) for m in metrics]
    keys = list(paper) + [k for k in ours if k not in paper]
    headers = ["row"] + ([axis] if axis else [])
    for name, metric in metric_cols:
        ours_name = METRICS[metric].label if metric in METRICS and "(" in METRICS[metric].label else name  # variants say so
        headers += [f"{ours_name} (ours)"] + ([f"{name} (paper)"] if table else [])
    headers += ["n", "scale", "size", "iters", "data"]
    missing_notes: dict[str, str] = {}
    body = []
    for key in keys:
        group = ours.get(key, [])
        row = [key[0]] + ([key[1]] if axis else [])
        for name, metric in metric_cols:
            if group:
                vals = [c["train_hours"] if metric == "train_hours" else c["summary"].get(metric) for c in group]
                if any(v is None for v in vals):
                    cell = "missing"
                    for c in group:
                        if metric in c["missing"]:
                            missing_notes[metric] = c["missing"][metric]
                else:
                    cell = _fmt(sum(vals) / len(vals))
            else:
                cell = "not run"
            row.append(cell)
            if table:
                row.append(paper[key].get(name, "") if key in paper else "-")
        if group:
            c0 = group[0]
            row += [len(group), c0["scale"], c0["size"], ",".join(sorted({str(c["iters"]) for c in group})),
                    Path(c0["data_root"]).name]
        else:
            row += ["", "", "", "", ""]
        body.append(row)
    caption = (f"Protocol {protocol}" + (f" - paper table {table} (paper numbers: arXiv 2312.10921)" if table else "")
               + f"; ours from {runs_root}/{protocol} (scale, size and iterations per row)")
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(headers)
        w.writerows(body)
        return buf.getvalue()
    notes = "".join(f"\nmissing {m}: {why}" for m, why in missing_notes.items())
    if fmt == "latex":
        return f"% {caption}\n" + tabulate(body, headers, tablefmt="latex", disable_numparse=True) + "".join(f"\n% missing {m}: {w}" for m, w in missing_notes.items())
    return caption + "\n\n" + tabulate(body, headers, tablefmt="github", disable_numparse=True) + ("\n" + notes if notes else "")
