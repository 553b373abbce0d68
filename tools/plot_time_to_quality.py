"""Redraw docs/time_to_quality_may.png from the `aebench bench converge` curves in
docs/time_to_quality/ (files METHOD_VARIANT_SIZE.json): one panel per method (columns) and size (rows), PSNR on
held-out frames against training wall time, the base model's end dashed.
`python tools/plot_time_to_quality.py [FOLDER] [OUT.png]` from the repository root."""

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"aenerf": "AE-NeRF", "dfrf": "DFRF", "adnerf": "AD-NeRF"}
folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/time_to_quality")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/time_to_quality_may.png")
panels = defaultdict(list)
for f in sorted(folder.glob("*.json")):
    run = json.loads(f.read_text())
    variant = f.stem[len(run["method"]) + 1 :].rsplit("_", 1)[0].replace("_", " + ").replace("occ", "occupancy sampler")
    panels[(run["method"], run["size"])].append((variant, run))
methods = [m for m in NAMES if any(k[0] == m for k in panels)]
sizes = sorted({k[1] for k in panels}, key=lambda size: int(size.split()[0]))
fig, axes = plt.subplots(len(sizes), len(methods), figsize=(4.6 * len(methods), 3.6 * len(sizes)), squeeze=False)
for (row, size), (col, method) in ((r, c) for r in enumerate(sizes) for c in enumerate(methods)):
    ax, key = axes[row][col], (method, size)
    if key not in panels:
        ax.axis("off")
        continue
    runs = sorted(panels[key], key=lambda vr: (vr[0] != "frequency", vr[0]))
    for variant, run in runs:
        pts = [p for p in run["curve"] if p["psnr"] is not None]
        ax.plot([p["seconds"] for p in pts], [p["psnr"] for p in pts], marker=".", label=variant)
        if run["base_seconds"]:
            ax.axvline(run["base_seconds"], ls="--", lw=0.7, color=ax.lines[-1].get_color())
    ax.set_title(f"May, {NAMES[key[0]]}, {key[1]}" + ("" if runs[0][1]["base_seconds"] else " (no base model)"), fontsize=10)
    ax.set_xlabel("training wall time (s), base model included\n(dashed: base model done)", fontsize=8)
    ax.set_ylabel("PSNR, held-out frames (dB)", fontsize=8)
    ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out, dpi=100)
print(f"wrote {out} ({len(panels)} panels)")
