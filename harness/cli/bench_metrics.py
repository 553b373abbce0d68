"""``aebench bench metrics``: frames/s of each metric at 512x512 on this machine (not a test)."""

from __future__ import annotations

import click


@click.command("metrics")
@click.option("--frames", "n_frames", default=25, show_default=True, type=click.IntRange(min=1), help="Frames per metric.")
@click.option("--size", default=512, show_default=True, type=click.IntRange(min=8), help="Frame size (square).")
@click.option(
    "--clip",
    default=None,
    help="Video to take frames from (default: the shared may_short.mp4, else random noise, on which dlib finds no face).",
)
@click.option("--weights", "weight_items", multiple=True, metavar="NAME=PATH", help="Explicit weights files.")
def metrics_cmd(n_frames, size, clip, weight_items) -> None:
    """Time each metric on N frames (prediction = blurred ground truth) and print frames/s."""
    import time
    import warnings

    import cv2
    import numpy as np
    import torch
    from tabulate import tabulate

    from aebench.media import read_audio, read_video
    from aebench.paths import shared_data_dir
    from aebench.eval.api import evaluate
    from aebench.harness.cli.eval_cmd import _parse_weights
    from aebench.eval.registry import METRICS

    torch.set_num_threads(2)
    src = clip or shared_data_dir() / "clips" / "may_short.mp4"
    audio = None
    try:
        gt, _ = read_video(src, max_frames=n_frames)
        audio = read_audio(src)
        gt = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in gt])
        where = str(src)
    except Exception:
        gt = np.random.default_rng(0).integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8)
        where = "random noise"
    pred = np.stack([cv2.GaussianBlur(f, (5, 5), 1.5) for f in gt])
    click.echo(f"{len(gt)} frames {size}x{size} from {where}; torch threads {torch.get_num_threads()}")
    rows = []
    weights = _parse_weights(weight_items)
    for name in METRICS:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = evaluate(pred, gt if METRICS[name].needs_gt else None, audio, [name], weights, progress=False)
        dt = time.perf_counter() - t0
        if r.summary[name] is None:
            rows.append([name, "MISSING", "", r.missing[name][:90]])
        else:
            rows.append(
                [
                    name,
                    f"{len(gt) / dt:.2f}",
                    f"{r.summary[name]:.4f}",
                    "includes landmarks" if name in ("lmd", "lmd_dlib", "sync_conf", "sync_dist") else "",
                ]
            )
    click.echo(tabulate(rows, headers=["metric", "frames/s", "value", "note"], tablefmt="simple"))
    if weights:
        click.echo(f"values from explicit (unofficial) weights {sorted(weights)}: timing only; frames/s include building each network once")
