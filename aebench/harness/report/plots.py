"""Plots of a protocol's runs (matplotlib, PNG): training curves always; and as the protocol's
``table:`` says (:class:`~aebench.harness.protocol.spec.TableLayout`), ``plot: lines`` each metric
against the table's axis (clip length, iterations), ``plot: bars`` each row's metrics with the
paper's beside (read through the same column mapping as the table)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from aebench.harness.protocol.run_store import read_cells
from aebench.harness.protocol.spec import paper_table

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(protocol: str | Path, runs_root: Path, out_dir: Path) -> list[Path]:
    """PNGs of ``protocol`` (a name in ``protocols/`` or a YAML path) from the run store."""
    from aebench.harness.protocol.spec import load_protocol

    spec = load_protocol(protocol, scale=None)
    layout, protocol = spec.table, spec.name
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
    if layout.plot == "lines" and metrics:
        field, xlabel = layout.axis.grid, layout.axis.label
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

    column_of: dict[str, str] = {}  # our metric -> the paper's column beside it (the table's mapping)
    for col, ours in layout.columns.items():
        if ours in METRICS:
            column_of.setdefault(ours, col)
    # bars: every metric with a value of ours, and every one the paper's table has beside ours
    # (drawn even where ours is missing, e.g. Sync without SyncNet's weights)
    bar_metrics = [m for m in METRICS if m in column_of or any(c["summary"].get(m) is not None for c in cells)]
    if layout.plot == "bars" and bar_metrics:
        paper: dict[str, dict] = {}
        if layout.paper:
            header, prows = paper_table(layout.paper)
            paper = {r[header[0]]: r for r in prows}
        rows = list(dict.fromkeys(c["row"] for c in cells))
        fig, axes = plt.subplots(1, len(bar_metrics), figsize=(4 * len(bar_metrics), 3.5), squeeze=False)
        for ax, m in zip(axes[0], bar_metrics):
            ours = [sum(v) / len(v) for v in ([c["summary"][m] for c in cells if c["row"] == r and c["summary"].get(m) is not None] or [float("nan")] for r in rows)]
            col = column_of.get(m)
            theirs = [float(paper[r][col]) if col and r in paper and paper[r].get(col) else float("nan") for r in rows]
            xs = range(len(rows))
            ax.bar([x - 0.2 for x in xs], ours, width=0.4, label=f"ours ({scale})")
            ax.bar([x + 0.2 for x in xs], theirs, width=0.4, label="paper")
            ax.set_xticks(list(xs), rows, rotation=30, fontsize=7)
            ax.set(title=f"{METRICS[m].label} {METRICS[m].better}" + (f" (paper: {col})" if col else ""))
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out_dir / "variants_bars.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    return written


def training_curve(log: Path) -> list[dict]:
    """``step N k=v ...`` lines of a training log as dicts, one per step: where a resumed attempt
    logs steps again (from its checkpoint on), its lines replace the earlier attempt's."""
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
        if rows and row["step"] <= rows[-1]["step"]:
            rows = [r for r in rows if r["step"] < row["step"]]
        rows.append(row)
    return rows
