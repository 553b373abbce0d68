"""``aebench report``: one static HTML page of a protocol (opens from disk, no server): its
table (ours beside the paper's), its plots, and per target a labelled side-by-side video
(ground truth | each row, with the driving audio) and a PNG strip for quick looks. Every
file the page uses is written beside it, referenced by relative paths."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}.caption,.note{font-size:13px;color:#444}
video,img{max-width:100%;margin:.5em 0}h2{margin-top:1.5em}"""


def safe_stem(text: str) -> str:
    """A file name made of ``text`` (identity and driving-audio names come from users' files):
    letters, digits, ``_ . -`` only."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _attr(text: str) -> str:
    """``text`` escaped for a double-quoted HTML attribute."""
    return html.escape(str(text), quote=True)


def _src(folder: str, path: Path) -> str:
    """A relative URL to ``folder/<file>``, percent-encoded and attribute-escaped."""
    return _attr(f"{folder}/{quote(path.name)}")


def write_report(
    protocol: str | Path | None, runs_root: Path, out: Path, versus: str | None = None, results_file: Path | None = None
) -> Path:
    """Write ``out/index.html`` (and its plots, videos and strips); returns the page. ``versus``:
    a row label, the table adds each row's paired difference from it; ``results_file``: read
    the cells from a results file (no renders there: the page says so instead of the videos)."""
    from aebench.harness.protocol.run_store import atomic_write
    from aebench.harness.report.compare import compare
    from aebench.harness.report.plots import plot
    from aebench.harness.report.results import load
    from aebench.harness.report.tables import audio_name, render_table

    res = load(protocol, runs_root, results_file)
    spec, cells = res.spec, res.cells
    name = spec.name
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        f"<h1>aebench: protocol {html.escape(name)}</h1>",
        f"<p>{html.escape(' '.join(spec.description.split()))}</p>",
        "<h2>Table</h2>",
        render_table(res, runs_root, "html", versus=versus),
        "<h2>Plots</h2>",
    ]
    for png in plot(res, runs_root, out / "plots"):
        parts.append(f'<img src="{_src("plots", png)}" alt="{_attr(png.stem)}">')
    parts.append("<h2>Side by side</h2>")
    if res.from_file:
        parts.append(
            f"<p class=note>Read from the results file {html.escape(str(results_file))}: it holds numbers, "
            "not renders, so there are no side-by-side videos here (`aebench report` on the run store has them).</p>"
        )
        cells = []
    for audio in sorted({str(c.get("audio", "self")) for c in cells}):
        for target in sorted({c["identity"] for c in cells if str(c.get("audio", "self")) == audio}):
            stem = safe_stem(f"compare_{target}_{audio_name(audio)}")
            video, strip = compare(protocol, runs_root, out / "videos" / f"{stem}.mp4", target, audio)
            parts.append(f"<h3>{html.escape(target)}, driven by {html.escape(audio)}</h3>")
            parts.append(f'<video controls preload="metadata" src="{_src("videos", video)}"></video>')
            parts.append(f'<img src="{_src("videos", strip)}" alt="{_attr("frames of " + target)}">')
    page = out / "index.html"
    atomic_write(
        page,
        "<!doctype html>\n<html><head><meta charset=utf-8><title>aebench "
        f"{html.escape(name)}</title><style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n",
    )  # last, whole: a page never points at what failed to be written
    return page
