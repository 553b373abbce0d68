"""``aebench bench train|render``: speed of any registered NeRF method through the Method API.

Both take ``key=value`` overrides (``method=aenerf|dfrf|adnerf``, ``scale=smoke|small|paper``,
``train.iters=...``). Data: the identities under ``data.root`` when it holds any, otherwise
a synthetic corpus made in a temporary folder at the scale's ``data.size``.

Both print the samples the field evaluated per ray (``evaluated/ray``, coarse and fine passes
together: n_coarse + n_coarse + n_fine with the hierarchical sampler; fewer with
``train.sampler=occupancy``, which skips empty space) and, for fields whose level-independent
part is computed once per sample (AE-NeRF's and DFRF's reference aggregation), how many
samples got it (``features/ray``). Rendering speed is per frame: a 1-frame render (loading,
audio features, the occupancy grid) is subtracted out. Training speed is measured as the difference of two
fine-tunes from scratch (``--warmup``
iterations and ``train.iters`` iterations, after an untimed ``--warmup`` run that pays the
one-time costs), so data loading and set-up cancel out;
rays/s = iterations/s x ``train.batch_rays``. Peak memory is CUDA max allocated on a GPU,
the process's peak RSS on CPU.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click

from aebench.harness.cli.checks import Output, inputs_untouched, reported, writable_file
from aebench.harness.protocol.run_store import atomic_write


def _what_ran(cfg, device, identity) -> dict:
    """The fields every bench report opens with: method, scale, device, threads, size."""
    import torch

    return {
        "method": cfg.method,
        "scale": cfg.scale,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "size": f"{identity.size[0]} px",
    }


def _checked(overrides: tuple[str, ...]):
    """The config of a bench command, with the method looked up: user mistakes as clear errors."""
    from aebench.config import ConfigError, load_config
    from aebench.registry import method_class

    from aebench.engine.method import NeRFMethod

    try:
        cfg = load_config(list(overrides))
        cls = method_class(str(cfg.method))
    except (ConfigError, KeyError) as exc:
        raise click.UsageError(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)) from exc
    if not issubclass(cls, NeRFMethod):
        raise click.UsageError(
            f"bench train|render time the NeRF methods on the shared engine; {cfg.method} is not one (aenerf, dfrf, adnerf)"
        )
    return cfg


def _named_identity(found: dict[str, Path], target: str, root) -> Path:
    """``found[target]`` (identity name -> folder), or a usage error naming those under ``root``."""
    if target not in found:
        raise click.UsageError(f"no identity '{target}' under data.root={root}; found: {', '.join(sorted(found)) or 'none'}")
    return found[target]


def _setup(overrides: tuple[str, ...], work: Path, target: str | None = None):
    """The config, the identity (``target`` under ``data.root``, default the first; a synthetic one
    when ``data.root`` holds none) and its few-shot clip."""
    from aebench.data import Identity
    from aebench.data.identity import list_identities

    cfg = _checked(overrides)
    found = list_identities(cfg.data.root)
    if target is not None:
        found = [_named_identity({p.name: p for p in found}, target, cfg.data.root)]
    if not found:
        from aebench.data.synth import make_corpus

        make_corpus(work / "synth", identities=1, seconds=4.0, size=int(cfg.data.size), seed=int(cfg.seed))
        found = list_identities(work / "synth")
    identity = Identity.open(found[0]).at_size(int(cfg.data.size))
    clip = identity.fewshot_clip(float(cfg.data.clip_seconds))
    return cfg, identity, clip


def _peak_memory(device) -> str:
    import resource

    import torch

    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB CUDA max allocated"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB peak RSS (CPU)"


def _finetune(method, identity, clip, cfg, iters: int, run_dir: Path, base: Path | None = None) -> tuple[float, Path]:
    from omegaconf import OmegaConf

    c = OmegaConf.merge(cfg, {"train": {"iters": iters}})
    t0 = time.perf_counter()
    ckpt = method.finetune(identity, clip, base, c, run_dir)
    return time.perf_counter() - t0, ckpt


def _check_json(json_out: str | None, cfg, inputs: dict) -> None:
    """``--json`` checked before the benchmark (not after minutes of it): a file that can be
    written, and none of what the benchmark reads (an identity under data.root, ``inputs``)."""
    if json_out is None:
        return
    from aebench.data.identity import list_identities

    writable_file(Path(json_out), "--json")
    inputs_untouched([Output("--json", Path(json_out))], {"data.root": list_identities(cfg.data.root), **inputs})


def _report(result: dict, out: str | None) -> None:
    for k, v in result.items():
        click.echo(f"{k:>16}: {v}")
    if out:
        with reported("--json", out):
            atomic_write(Path(out), json.dumps(result, indent=1))


@click.command("train", context_settings={"ignore_unknown_options": True})
@click.argument("overrides", nargs=-1)
@click.option("--warmup", default=3, show_default=True, help="iterations of the set-up run subtracted out")
@click.option("--json", "json_out", default=None, help="also write the figures to this JSON file")
@click.option(
    "--base",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="fine-tune from this base checkpoint (a trained field: what empty-space skipping needs)",
)
def train_cmd(overrides: tuple[str, ...], warmup: int, json_out: str | None, base: str | None) -> None:
    """Training iterations/s and rays/s of METHOD at SCALE, e.g. `method=aenerf scale=smoke train.iters=30`
    (torch CPU threads: the config's `threads`, as a protocol's cells)."""
    import torch

    from aebench.device import resolve_device
    from aebench.registry import get_method
    from aebench.engine.volume import count_samples

    checked = _checked(overrides)
    if checked.threads:
        torch.set_num_threads(int(checked.threads))
    if int(checked.train.iters) <= warmup:
        raise click.ClickException(f"train.iters must exceed --warmup={warmup}")
    if base is not None and not get_method(checked.method).has_base_model:
        raise click.UsageError(f"{checked.method} has no base model: leave out --base")
    _check_json(json_out, checked, {"--base": base})
    with tempfile.TemporaryDirectory(prefix="aebench-bench-") as tmp:
        work = Path(tmp)
        cfg, identity, clip = _setup(overrides, work)
        torch.manual_seed(int(cfg.seed))
        device = resolve_device(cfg.device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        method = get_method(cfg.method)
        iters = int(cfg.train.iters)
        base_dir = Path(base) if base else None
        _finetune(method, identity, clip, cfg, warmup, work / "prime", base_dir)  # one-time costs (imports, caches): untimed
        t_warm, _ = _finetune(method, identity, clip, cfg, warmup, work / "warm", base_dir)
        with count_samples() as counted:
            t_full, _ = _finetune(method, identity, clip, cfg, iters, work / "full", base_dir)
        if t_full <= t_warm:  # the iterations drown in the set-up's noise (fast methods, few iterations)
            raise click.ClickException(
                f"{iters} iterations took {t_full:.2f} s and the {warmup}-iteration set-up run "
                f"{t_warm:.2f} s: too close to measure a rate; raise train.iters"
            )
        rate = (iters - warmup) / (t_full - t_warm)
        _report(
            {
                **_what_ran(cfg, device, identity),
                "iterations": iters,
                "batch_rays": int(cfg.train.batch_rays),
                "from": base or "scratch",
                "sampler": str(cfg.train.sampler),
                "samples/ray": f"{int(cfg.train.n_coarse)}+{int(cfg.train.n_fine)}",
                "evaluated/ray": round(counted.per_ray, 2),
                "features/ray": round(counted.features_per_ray, 2),
                "iters/s": round(rate, 3),
                "rays/s": round(rate * int(cfg.train.batch_rays), 1),
                "setup s": round(t_warm - warmup / rate, 2),
                "peak memory": _peak_memory(device),
            },
            json_out,
        )


@click.command("render", context_settings={"ignore_unknown_options": True})
@click.argument("overrides", nargs=-1)
@click.option(
    "--frames",
    default=10,
    show_default=True,
    type=click.IntRange(min=2),
    help="frames to render (driving audio = the test half's own); a 1-frame render is subtracted out",
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="a trained checkpoint; default: a quick fine-tune of train.iters iterations",
)
@click.option("--target", default=None, help="identity under data.root to render (default: the first)")
@click.option("--json", "json_out", default=None, help="also write the figures to this JSON file")
def render_cmd(overrides: tuple[str, ...], frames: int, checkpoint: str | None, target: str | None, json_out: str | None) -> None:
    """Rendering frames/s of METHOD at SCALE (full frames at data.size, mp4 with audio), per frame:
    the time of a 1-frame render (set-up) is subtracted from that of --frames frames (torch CPU
    threads: the config's `threads`)."""
    import torch

    from aebench.device import resolve_device
    from aebench.media import probe
    from aebench.registry import get_method
    from aebench.engine.volume import count_samples

    checked = _checked(overrides)
    if checked.threads:
        torch.set_num_threads(int(checked.threads))
    _check_json(json_out, checked, {"--checkpoint": checkpoint})
    with tempfile.TemporaryDirectory(prefix="aebench-bench-") as tmp:
        work = Path(tmp)
        cfg, identity, clip = _setup(overrides, work, target)
        device = resolve_device(cfg.device)
        method = get_method(cfg.method)
        ckpt = Path(checkpoint) if checkpoint else _finetune(method, identity, clip, cfg, int(cfg.train.iters), work / "ft")[1]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        test = identity.split("test")

        def timed(n: int, name: str):
            t0 = time.perf_counter()
            out = method.render(ckpt, identity, test.audio[: identity.samples_for_frames(n)], cfg, work / name)
            return time.perf_counter() - t0, out

        t_one, _ = timed(1, "one.mp4")  # loading, audio features, grid, video writer: subtracted out
        with count_samples() as counted:
            t_all, out = timed(frames, "render.mp4")
        rate = (frames - 1) / max(t_all - t_one, 1e-9)
        info = probe(out)
        _report(
            {
                **_what_ran(cfg, device, identity),
                "frames": frames,
                "video": f"{info.n_frames} frames, audio={info.has_audio}",
                "sampler": str(cfg.train.render_sampler),
                "evaluated/ray": round(counted.per_ray, 2),
                "features/ray": round(counted.features_per_ray, 2),
                "frames/s": round(rate, 3),
                "rays/s": round(rate * identity.size[0] * identity.size[1], 1),
                "setup s": round(t_one - 1 / rate, 2),
                "peak memory": _peak_memory(device),
            },
            json_out,
        )
