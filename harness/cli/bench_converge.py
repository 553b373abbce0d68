"""``aebench bench converge``: time to quality of a NeRF method (issue 21).

Trains the method's base model on every identity under ``data.root`` but the target (leave one
out, as ``real_quick``; methods without a base model skip it) and fine-tunes on the target's
few-shot clip, scoring PSNR on its first ``--frames`` held-out test frames at every
``--every``-th fine-tuning iteration (each a checkpoint rendered through the Method API and
scored as a protocol cell is). The models are trained by the protocol runner's own stages
(:func:`~aebench.harness.protocol.runner.ensure_base`, ``ensure_finetuned``) into a scratch
store, from a config validated like any other (the checkpoint interval and the frames scored are
config overrides, the torch threads the config's ``threads``). The curve's ``seconds`` are
training wall time since the start, base model included, scoring excluded. Writes ``--json``
(``curve``: points with ``seconds``, ``phase``, ``iters``, ``psnr``) and a PNG beside it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import click

from aebench.atomic import atomic_files
from aebench.harness.cli.bench_methods import _checked, _named_identity
from aebench.harness.cli.checks import Output, inputs_untouched, reported, writable_file, writable_folder


def _score(method, ckpt: Path, target, cfg, frames: int, work: Path) -> float:
    """PSNR of ``ckpt``'s self-driven render of ``target``'s first ``frames`` test frames (``cfg``
    renders that many: ``train.render_frames``)."""
    from aebench.eval import evaluate
    from aebench.harness.protocol.runner import ground_truth, scored_frames

    audio = target.split("test").audio
    video = method.render(ckpt, target, audio, cfg, work / "score.mp4")
    pred, n, audio = scored_frames(video, target, audio, frames)
    gt = ground_truth(target, n)
    return float(evaluate(pred, gt=gt, audio=audio, fps=target.fps, metrics=["psnr"], progress=False).summary["psnr"])


def _quiet(*_args, **_kwargs) -> None:
    """The runner's progress lines, not shown (the trainer's progress bars are)."""


def time_to_reach(result: dict, psnr: float) -> float | None:
    """Training seconds of the first scored point of ``result``'s curve at or above ``psnr``
    (None when the curve never gets there)."""
    return next((p["seconds"] for p in result["curve"] if p["psnr"] is not None and p["psnr"] >= psnr), None)


def plot_curve(result: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in result["curve"] if p["psnr"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p["seconds"] for p in pts], [p["psnr"] for p in pts], "o-", label=result["label"])
    if result.get("base_seconds"):
        ax.axvline(result["base_seconds"], color="grey", ls="--", lw=1, label="base model done")
    ax.set_xlabel("training wall time (s), base model included")
    ax.set_ylabel(f"PSNR on {result['frames']} test frames (dB)")
    ax.set_title(f"{result['target']}, {result['size']}, {result['threads']} thread(s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _check_outputs(out: Path, keep: Path | None, inputs: dict) -> None:
    """``--json`` (its PNG beside it) and ``--keep-checkpoint`` checked before the training:
    writable, and none of them an input (``--keep-checkpoint`` is replaced as a whole)."""
    writable_file(out, "--json")
    if keep is not None:
        writable_folder(keep, "--keep-checkpoint")
    inputs_untouched(
        [Output("--json", out, files=(out, out.with_suffix(".png"))), keep and Output("--keep-checkpoint", keep, "folder", whole=True)],
        inputs,
    )


@click.command("converge")
@click.argument("overrides", nargs=-1)
@click.option("--target", required=True, help="identity under data.root to fine-tune on and score")
@click.option("--every", default=0, show_default=True, help="fine-tuning iterations between scores (0 = a tenth)")
@click.option("--frames", default=8, show_default=True, help="held-out test frames scored")
@click.option("--json", "json_out", required=True, help="write the curve here (and a PNG beside it)")
@click.option(
    "--keep-checkpoint",
    "keep",
    type=click.Path(file_okay=False),
    default=None,
    help="copy the final fine-tuned checkpoint here (e.g. for `bench render --checkpoint`); "
    "replaces an earlier checkpoint there, refuses any other non-empty folder",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="another run's JSON: also report when this run reached its final PSNR",
)
def converge_cmd(
    overrides: tuple[str, ...], target: str, every: int, frames: int, json_out: str, keep: str | None, reference: str | None
) -> None:
    """Time to quality: PSNR on held-out frames against training wall time, e.g.
    `method=aenerf data.root=data/prepared/clips-128px-25fps-12s field.encoding=hashgrid threads=1 --target may`."""
    import torch

    from aebench.data import Identity
    from aebench.data.identity import list_identities
    from aebench.device import torch_threads
    from aebench.engine.trainer import watch_checkpoints
    from aebench.harness.protocol.runner import ensure_base, ensure_finetuned
    from aebench.registry import get_method

    cfg = _checked(overrides)
    found = {p.name: p for p in list_identities(cfg.data.root)}
    _named_identity(found, target, cfg.data.root)
    if keep and Path(keep).exists() and any(Path(keep).iterdir()) and not (Path(keep) / "state.json").exists():
        raise click.BadParameter(
            f"{keep} exists and is not a checkpoint (no state.json); it would be replaced: "
            f"name a new folder or an earlier --keep-checkpoint",
            param_hint="--keep-checkpoint",
        )
    _check_outputs(Path(json_out), keep and Path(keep), {"--reference": reference, "data.root": found.values()})
    every = every or max(int(cfg.train.iters) // 10, 1)
    others = [n for n in sorted(found) if n != target]
    run = [f"run.identity={target}", f"run.base_identities=[{','.join(others)}]"]
    cfg = _checked((*overrides, *run, f"train.ckpt_every={every}", "train.keep_ckpts=1"))  # validated, as a cell's
    score_cfg = _checked((*overrides, *run, f"train.render_frames={frames}"))
    size = int(cfg.data.size)
    tgt = Identity.open(found[target]).at_size(size)
    method = get_method(str(cfg.method))
    curve: list[dict] = []
    clock = {"t0": 0.0, "scoring": 0.0}

    with tempfile.TemporaryDirectory() as tmp, torch_threads(int(cfg.threads)):
        work = Path(tmp)

        def on_checkpoint(trainer, step: int, path: Path) -> None:
            seconds = time.perf_counter() - clock["t0"] - clock["scoring"]
            phase = trainer.meta.get("phase", "finetune")
            psnr = None
            if phase == "finetune":
                s0 = time.perf_counter()
                psnr = _score(method, path, tgt, score_cfg, frames, work)
                clock["scoring"] += time.perf_counter() - s0
            curve.append({"seconds": round(seconds, 3), "phase": phase, "iters": int(step), "psnr": psnr})

        clock["t0"] = time.perf_counter()
        with watch_checkpoints(on_checkpoint):  # the runner's stages, into a scratch store
            base = ensure_base(method, cfg, work, progress=_quiet)
            base_seconds = time.perf_counter() - clock["t0"] if base is not None else 0.0
            final = ensure_finetuned(method, cfg, tgt, Path(base[0].checkpoint) if base else None, work, progress=_quiet)[0].checkpoint
        if keep:
            with reported("--keep-checkpoint", keep):
                if Path(keep).exists():
                    shutil.rmtree(keep)
                shutil.copytree(final, keep)
        result = {
            "method": str(cfg.method),
            "label": f"{cfg.method} ({cfg.field.encoding})",
            "encoding": str(cfg.field.encoding),
            "target": target,
            "size": f"{size} px",
            "threads": torch.get_num_threads(),
            "frames": frames,
            "every": every,
            "overrides": list(overrides),
            "base_seconds": round(base_seconds, 3),
            "curve": curve,
            "final_psnr": next((p["psnr"] for p in reversed(curve) if p["psnr"] is not None), None),
        }
    if reference:
        ref = json.loads(Path(reference).read_text())
        goal, ref_s = ref["final_psnr"], ref["curve"][-1]["seconds"]
        reached = time_to_reach(result, goal)
        result["reference"] = {
            "file": str(reference),
            "label": ref.get("label"),
            "final_psnr": goal,
            "seconds": ref_s,
            "seconds_to_reach": reached,
            "ratio": None if reached is None else round(ref_s / reached, 2),
        }
    out, png = Path(json_out), Path(json_out).with_suffix(".png")
    with reported("--json", out), atomic_files(out, png) as (out_tmp, png_tmp):  # both or neither
        out_tmp.write_text(json.dumps(result, indent=1))
        plot_curve(result, png_tmp)
    click.echo(f"final PSNR {result['final_psnr']:.2f} dB after {curve[-1]['seconds']:.1f} s; wrote {out} and {png}")
    if reference:
        r = result["reference"]
        click.echo(
            f"{r['label']} reached {r['final_psnr']:.2f} dB in {r['seconds']:.1f} s; this run "
            + (f"in {r['seconds_to_reach']:.1f} s ({r['ratio']}x faster)" if r["seconds_to_reach"] is not None else "never did")
        )
