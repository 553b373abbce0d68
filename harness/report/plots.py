"""Plots of a protocol's runs (matplotlib, PNG): training curves always; and as the protocol's
``table:`` says (:class:`~aebench.harness.protocol.spec.TableLayout`), ``plot: lines`` each metric
against the table's axis (clip length, iterations), ``plot: bars`` each row's metrics with the
paper's beside (read through the same column mapping as the table). Our points and bars are
means over a row's identities (seeds averaged within each first, as in the tables) with their
95% confidence intervals as error bars (Student t over identities,
:mod:`aebench.harness.report.stats`); a single identity has none."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from aebench.harness.protocol.run_store import training_curve
from aebench.harness.protocol.spec import paper_table
from aebench.harness.report.stats import mean_ci, unit_means


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_err(cells: list[dict], metric: str) -> tuple[float, float]:
    """(mean, CI half width; 0 for a single identity) of ``metric`` over the identities of
    ``cells`` (seeds averaged within each); NaN mean when none has a value."""
    values = unit_means(cells, lambda c: c["summary"].get(metric))
    if not values:
        return float("nan"), 0.0
    ci = mean_ci(values)
    return ci.mean, ci.half or 0.0


def _save(plt, fig, path: Path) -> None:
    """``fig`` as the PNG ``path``, whole or not at all (a full disk leaves no truncated image);
    the figure is closed either way."""
    from aebench.atomic import atomic_files

    try:
        with atomic_files(path) as (tmp,):
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


def plot(protocol, runs_root: Path, out_dir: Path) -> list[Path]:
    """PNGs of ``protocol`` (a name in ``protocols/``, a YAML path, or the
    :class:`~aebench.harness.report.results.Results` of a results file) from the run store."""
    from aebench.harness.report.results import Results, from_store

    res = protocol if isinstance(protocol, Results) else from_store(protocol, Path(runs_root))
    spec, cells = res.spec, res.cells
    layout, protocol = spec.table, spec.name
    plt = _plt()
    out_dir = Path(out_dir)  # made by the first PNG written (_save), not before
    written = []
    scale = cells[0]["scale"]

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for c in cells:
        curve = c.get("training_curve") or (training_curve(Path(c["dir"])) if c.get("dir") else [])
        if curve:
            label = f"{c['row']} / {c['identity']}"
            axes[0].plot([r["step"] for r in curve], [r.get("loss", float("nan")) for r in curve], label=label)
            axes[1].plot([r["step"] for r in curve], [r.get("psnr", float("nan")) for r in curve], label=label)
    axes[0].set(xlabel="fine-tuning step", ylabel="loss", yscale="log", title=f"{protocol} ({scale}): training loss")
    axes[1].set(xlabel="fine-tuning step", ylabel="training PSNR (dB)", title="training PSNR")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    written.append(out_dir / "training_curves.png")
    _save(plt, fig, written[-1])

    from aebench.eval.registry import METRICS

    metrics = [m for m, spec in METRICS.items() if spec.per_frame and any(c["summary"].get(m) is not None for c in cells)]
    if layout.plot == "lines" and metrics:
        field, xlabel = layout.axis.grid, layout.axis.label
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            series = defaultdict(lambda: defaultdict(list))
            for c in cells:
                if c["summary"].get(m) is not None:
                    series[c["row"]][float(c[field])].append(c)
            for row, pts in series.items():
                xs = sorted(pts)
                means, errs = zip(*(_mean_err(pts[x], m) for x in xs))
                ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=row)
            label = f"{METRICS[m].label} {METRICS[m].better}"
            ax.set(xlabel=xlabel, ylabel=label, title=f"{label} vs {xlabel} ({scale})")
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out_dir / f"{m}_vs_{field}.png".replace(f"{m}_", "metrics_"))
        _save(plt, fig, written[-1])

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
        rows = sorted(dict.fromkeys(c["row"] for c in cells), key=spec.row_rank)
        fig, axes = plt.subplots(1, len(bar_metrics), figsize=(4 * len(bar_metrics), 3.5), squeeze=False)
        for ax, m in zip(axes[0], bar_metrics):
            ours, errs = zip(*(_mean_err([c for c in cells if c["row"] == r], m) for r in rows))
            col = column_of.get(m)
            theirs = [float(paper[r][col]) if col and r in paper and paper[r].get(col) else float("nan") for r in rows]
            xs = range(len(rows))
            ax.bar([x - 0.2 for x in xs], ours, width=0.4, yerr=errs, capsize=3, label=f"ours ({scale}, 95% CI)")
            if layout.paper:
                ax.bar([x + 0.2 for x in xs], theirs, width=0.4, label="paper")
            ax.set_xticks(list(xs), rows, rotation=30, fontsize=7)
            ax.set(title=f"{METRICS[m].label} {METRICS[m].better}" + (f" (paper: {col})" if col else ""))
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out_dir / "variants_bars.png")
        _save(plt, fig, written[-1])
    return written
