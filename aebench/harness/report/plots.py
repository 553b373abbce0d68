"""Plots of a protocol's runs (matplotlib, PNG): training curves always; metric vs clip length
(fewshot_length) or vs iterations (fewshot_iters); bars per variant with the paper's beside
(ablation, rrs)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from aebench.paths import paper_results_dir
from aebench.harness.protocol.run_store import read_cells

AXES = {"fewshot_length": ("clip_seconds", "clip length (s)"), "fewshot_iters": ("iters", "iterations")}
BARS = {"ablation": "table4_ablation.csv", "rrs": "table5_rrs.csv"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(protocol: str | Path, runs_root: Path, out_dir: Path) -> list[Path]:
    """PNGs of ``protocol`` (a name in ``protocols/`` or a YAML path) from the run store."""
    from aebench.harness.protocol.spec import raw_protocol

    protocol = str(raw_protocol(protocol)["name"])
    cells = read_cells(Path(runs_root), protocol)
    if not cells:
        raise FileNotFoundError(f"no finished runs of protocol '{protocol}' under {runs_root}; run `aebench run protocol={protocol}`")
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    scale = cells[0]["scale"]

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for c in cells:
        curve = training_curve(c["dir"] / "log.txt")
        if curve:
            label = f"{c['row']} / {c['identity']}"
            axes[0].plot([r["step"] for r in curve], [r.get("loss", float("nan")) for r in curve], label=label)
            axes[1].plot([r["step"] for r in curve], [r.get("psnr", float("nan")) for r in curve], label=label)
    axes[0].set(xlabel="fine-tuning step", ylabel="loss", yscale="log", title=f"{protocol} ({scale}): training loss")
    axes[1].set(xlabel="fine-tuning step", ylabel="training PSNR (dB)", title="training PSNR")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    written.append(out_dir / "training_curves.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    from aebench.eval.registry import METRICS

    metrics = [m for m, spec in METRICS.items() if spec.per_frame and any(c["summary"].get(m) is not None for c in cells)]
    if protocol in AXES and metrics:
        field, xlabel = AXES[protocol]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            series = defaultdict(lambda: defaultdict(list))
            for c in cells:
                if c["summary"].get(m) is not None:
                    series[c["row"]][float(c[field])].append(c["summary"][m])
            for row, pts in series.items():
                xs = sorted(pts)
                ax.plot(xs, [sum(pts[x]) / len(pts[x]) for x in xs], marker="o", label=row)
            label = f"{METRICS[m].label} {METRICS[m].better}"
            ax.set(xlabel=xlabel, ylabel=label, title=f"{label} vs {xlabel} ({scale})")
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out_dir / f"{m}_vs_{field}.png".replace(f"{m}_", "metrics_"))
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)

    if protocol in BARS and metrics:
        with open(paper_results_dir() / BARS[protocol]) as fh:
            paper = {r["variant"]: r for r in csv.DictReader(fh)}
        rows = list(dict.fromkeys(c["row"] for c in cells))
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            ours = [sum(v) / len(v) for v in ([c["summary"][m] for c in cells if c["row"] == r and c["summary"].get(m) is not None] or [float("nan")] for r in rows)]
            theirs = [float(paper[r][m.upper()]) if r in paper and paper[r].get(m.upper()) else float("nan") for r in rows]
            xs = range(len(rows))
            ax.bar([x - 0.2 for x in xs], ours, width=0.4, label=f"ours ({scale})")
            ax.bar([x + 0.2 for x in xs], theirs, width=0.4, label="paper")
            ax.set_xticks(list(xs), rows, rotation=30, fontsize=7)
            ax.set(title=m.upper())
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out_dir / "variants_bars.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    return written


def training_curve(log: Path) -> list[dict]:
    """``step N k=v ...`` lines of a training log as dicts."""
    rows = []
    if not log.exists():
        return rows
    for line in log.read_text().splitlines():
        if not line.startswith("step "):
            continue
        parts = line.split()
        row = {"step": int(parts[1])}
        for p in parts[2:]:
            if "=" in p:
                k, v = p.split("=", 1)
                try:
                    row[k] = float(v)
                except ValueError:
                    pass
        rows.append(row)
    return rows
