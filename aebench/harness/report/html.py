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


def write_report(protocol: str | Path, runs_root: Path, out: Path) -> Path:
    """Write ``out/index.html`` (and its plots, videos and strips); returns the page."""
    from aebench.harness.protocol.spec import load_protocol
    from aebench.harness.report.compare import compare
    from aebench.harness.report.plots import plot
    from aebench.harness.protocol.run_store import read_cells
    from aebench.harness.report.tables import audio_name, render_table

    spec = load_protocol(protocol, scale=None)
    name = spec.name
    cells = read_cells(Path(runs_root), name)
    if not cells:
        raise FileNotFoundError(f"no finished runs of protocol '{name}' under {runs_root}; run `aebench run protocol={protocol}`")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>aebench: protocol {html.escape(name)}</h1>",
             f"<p>{html.escape(' '.join(spec.description.split()))}</p>",
             "<h2>Table</h2>", render_table(protocol, runs_root, "html"), "<h2>Plots</h2>"]
    for png in plot(protocol, runs_root, out / "plots"):
        parts.append(f'<img src="{_src("plots", png)}" alt="{_attr(png.stem)}">')
    parts.append("<h2>Side by side</h2>")
    for audio in sorted({str(c.get("audio", "self")) for c in cells}):
        for target in sorted({c["identity"] for c in cells if str(c.get("audio", "self")) == audio}):
            stem = safe_stem(f"compare_{target}_{audio_name(audio)}")
            video, strip = compare(protocol, runs_root, out / "videos" / f"{stem}.mp4", target, audio)
            parts.append(f"<h3>{html.escape(target)}, driven by {html.escape(audio)}</h3>")
            parts.append(f'<video controls preload="metadata" src="{_src("videos", video)}"></video>')
            parts.append(f'<img src="{_src("videos", strip)}" alt="{_attr("frames of " + target)}">')
    page = out / "index.html"
    page.write_text("<!doctype html>\n<html><head><meta charset=utf-8><title>aebench "
                    f"{html.escape(name)}</title><style>{STYLE}</style></head><body>\n" + "\n".join(parts)
                    + "\n</body></html>\n")
    return page
