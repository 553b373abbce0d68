"""``aebench eval``: score any method's output (:func:`aebench.eval.evaluate`) and print the summary."""

from __future__ import annotations

from pathlib import Path

import click

from aebench.harness.cli.checks import Output, comma_list, inputs_untouched, reported, writable_file, writable_folder

from aebench.eval.registry import METRICS


def format_value(v) -> str:
    if v is None:
        return "MISSING"
    if v == float("inf"):
        return "inf"
    return f"{v:.4f}"


def summary_table(result) -> str:
    from tabulate import tabulate

    rows = [[METRICS[k].label or k, k, METRICS[k].better, format_value(v)] for k, v in result.summary.items()]
    return tabulate(rows, headers=["metric", "name", "better", "value"], tablefmt="simple")


def _parse_weights(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for it in items:
        if "=" not in it:
            raise click.BadParameter(f"{it!r}: expected NAME=PATH, e.g. syncnet=/path/syncnet_v2.model", param_hint="--weights")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _check_outputs(out: Path, export: Path | None, inputs: dict) -> None:
    """Where the results go, checked before anything is scored (not after minutes of it): folders
    that can be written, and never onto an input (`--export pred.mp4` would replace the video)."""
    writable_folder(out, "--out")
    if export is not None:
        writable_file(export, "--export")
    inputs_untouched(
        [Output("--out", out, "folder", (out / "metrics.json", out / "frames.csv")), export and Output("--export", export)], inputs
    )


def _reading_notes(info: dict) -> list[str]:
    """What reading the inputs did that changes which pixels were compared: a video's display
    rotation applied, frames paired by number."""
    from aebench.media import frame_ranges

    lines = [
        f"--{which}: display rotation of {info[which + '_source']['rotation']} degrees applied (frames as shown)"
        for which in ("pred", "gt")
        if info.get(which + "_source", {}).get("rotation")
    ]
    paired = info.get("paired_by_number")
    if paired:
        only = {k: frame_ranges(paired[k]) or "none" for k in ("pred_only", "gt_only")}
        lines.append(
            f"paired by number: {paired['pairs']} frame pairs; only in --pred: {only['pred_only']}; only in --gt: {only['gt_only']}"
        )
    return lines


def _finite_fps(fps: float | None) -> float | None:
    """``--fps nan`` and ``--fps inf`` pass click's range check; refused here (by the API's own
    check), before any scoring."""
    from aebench.eval.api import check_fps

    try:
        check_fps(fps)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--fps'") from exc
    return fps


@click.command("eval")
@click.option("--pred", required=True, help="Predicted video (mp4) or folder of frames.")
@click.option("--gt", default=None, help="Ground-truth video or folder; omit for cross-driven (sync metrics only).")
@click.option("--audio", default=None, help="Driving audio (wav/mp4); default: the prediction's own audio track.")
@click.option("--metrics", default=None, help=f"Comma-separated names ({', '.join(METRICS)}); default: all computable.")
@click.option(
    "--weights",
    "weight_items",
    multiple=True,
    metavar="NAME=PATH",
    help="Explicit weights file (recorded with its sha256, marked unofficial), repeatable.",
)
@click.option(
    "--align",
    type=click.Choice(["strict", "truncate"]),
    default="strict",
    show_default=True,
    help="Unequal frame counts: refuse, or trim both to the shorter.",
)
@click.option("--resize", is_flag=True, help="Resize a prediction of another size to the ground truth's (recorded); refused otherwise.")
@click.option(
    "--fps",
    type=click.FloatRange(min=1),
    default=None,
    callback=lambda ctx, p, v: _finite_fps(v),
    help="Frame rate of frame folders (default 25); a video given with it must run at that rate.",
)
@click.option(
    "--pair-by-number",
    is_flag=True,
    help="Pair --pred and --gt frame folders by the number in their file names (only numbers in both; "
    "recorded) instead of by position, which refuses a gap in a folder's numbering.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (metrics.json, frames.csv).")
@click.option(
    "--export",
    "export",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a results file (the schema of `aebench export`; `aebench tables --from FILE` reads it).",
)
@click.option("--label", default=None, help="The method's name in the results file (default: the prediction's file name).")
def eval_cmd(pred, gt, audio, metrics, weight_items, align, resize, fps, pair_by_number, out, export, label) -> None:
    """Score any method's rendered video: PSNR, SSIM, LPIPS, LMD against --gt; LSE-C/LSE-D and
    THEval's training-free lip-sync and naturalness metrics against the audio."""
    import warnings

    from aebench.media import MediaError
    from aebench.eval.api import evaluate
    from aebench.weights import WeightsError

    names = comma_list(metrics)
    weights = _parse_weights(weight_items)
    _check_outputs(Path(out), export, {"--pred": pred, "--gt": gt, "--audio": audio, "--weights": weights.values()})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="METRIC MISSING")
            result = evaluate(
                pred, gt, audio, names, weights, progress=True, align=align, resize=resize, fps=fps, pair_by_number=pair_by_number
            )
    except (ValueError, MediaError, WeightsError) as exc:
        raise click.ClickException(str(exc)) from exc
    with reported("--out", out):
        result.write(out)
    click.echo(summary_table(result))
    for line in _reading_notes(result.info):
        click.echo(line)
    if export is not None:
        from aebench.harness.report.results import eval_document, write_results

        with reported("--export", export):
            write_results(eval_document(result, label or Path(pred).stem, pred, gt, audio), export)
        click.echo(f"results file: {export}")
    if "sync" in result.info and "offset" in result.info["sync"]:
        click.echo(f"AV offset (frames): {result.info['sync']['offset']}")
    if "sync" in result.info:
        crop = result.info["sync"].get("crop")
        click.echo(
            "sync face crops: "
            + (
                "syncnet-python's S3FD pipeline"
                if crop == "s3fd"
                else "dlib landmarks (labelled variant; add syncnet_s3fd for the reference pipeline)"
            )
        )
    for name, rec in result.info.get("weights", {}).items():
        if not rec["official"] and rec["verification"] == "explicit file":
            click.secho(f"NOTE: {name} weights are UNOFFICIAL: {rec['path']} (sha256 {rec['sha256']})", fg="yellow")
    for k, why in result.missing.items():
        click.secho(f"MISSING {k}: {why}", fg="red", err=True)
    click.echo(f"wrote {out}/metrics.json and {out}/frames.csv ({result.info['n_frames']} frames)")
