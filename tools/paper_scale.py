"""Paper scale, measured on any machine and projected to a GPU (issue 31, item 3).

For each NeRF method at ``scale=paper`` (the paper's rays, samples, widths, references, wav2vec-
free MFCC features so no weights are needed; the frame size is a parameter, 512 px by default):

- trains a fine-tune of 1 and of 3 iterations from scratch on a synthetic identity, counting with
  ``torch.utils.flop_counter.FlopCounterMode`` (:func:`_count`): the difference over 2 iterations is one training
  iteration's floating-point operations (forward and backward; the set-up cancels out), and the
  run proves the code path (shapes, memory, checkpoint) end to end;
- renders one frame at two sizes (``--render-sizes``, small ones: a 512 px frame is ~10^5 s on a
  CPU) under the counter: the FLOPs of a frame are a + b x pixels (b: the field per ray and the
  references' features, whose images are at the frame's size; a: what is paid once per frame),
  solved from the two and extrapolated to 512 px. The
  hierarchical sampler is used (every sample evaluated), an upper bound of what the occupancy
  sampler evaluates on a trained field;
- records the peak resident memory of the training runs (``aebench.provenance.peak_memory``:
  reset per method where the kernel allows, else the process's peak so far, as ``peak_rss_scope``).

The projection is plain arithmetic, stated in the JSON: time = FLOPs / (peak x utilisation) for
the paper's schedule (``train.pretrain_iters`` base iterations and ``train.iters`` fine-tuning
iterations at scale=paper) on an A100 and an H100 (dense peaks of NVIDIA's data sheets, at the
precision of each column), beside the paper's 36 h + 3 h (A100). torch's FLOP formulas count matrix
products and convolutions (2 FLOPs per multiply-add), not elementwise work or memory traffic,
which dominate small NeRF MLPs on a GPU: the utilisation is the assumption to read the table by.

    python tools/paper_scale.py --out docs/paper_scale/cpu.json [--size 512] [--methods aenerf,dfrf,adnerf]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

#: dense peak throughput, TFLOP/s, of NVIDIA's data sheets (A100 SXM 80 GB; H100 SXM5), per precision
PEAK_TFLOPS = {"A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}, "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}}
#: the share of the peak a NeRF training step reaches (small MLPs, gathers, sorting): the assumption
UTILISATION = 0.2
#: the paper's wall times on an A100 (AE-NeRF, Implementation details): base model, fine-tune
PAPER_HOURS = {"base": 36.0, "finetune": 3.0}


class _NoModules:
    """Stands in for FlopCounterMode's per-module tracker, which fails on DFRF's slot attention (a
    tensor requiring grad without a grad_fn); every count then goes to the "Global" total."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _count(fn) -> tuple[float, object]:
    """(FLOPs, fn()) counted by torch's FlopCounterMode (its formulas, and its decomposition of
    operators it has no formula for, e.g. a linear layer under no_grad), without module tracking."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModules()
    with counter:
        out = fn()
    return float(counter.get_total_flops()), out


def measure(method_name: str, size: int, render_sizes: tuple[int, int], work: Path) -> dict:
    """One method's FLOPs per training iteration and per rendered frame at ``size`` px."""
    import torch
    from omegaconf import OmegaConf

    from aebench.config import load_config
    from aebench.data import Identity
    from aebench.data.synth import make_corpus
    from aebench.registry import get_method

    cfg = load_config([f"method={method_name}", "scale=paper", "features=mfcc", f"data.size={size}", "device=cpu"])
    corpus = work / f"synth{size}"
    if not corpus.exists():
        make_corpus(corpus, identities=1, seconds=2.0, size=size, seed=0)
    identity = Identity.open(next(p for p in sorted(corpus.iterdir()) if (p / "meta.json").exists())).at_size(size)
    clip = identity.fewshot_clip(0.0)
    method = get_method(method_name)

    def finetune(iters: int, name: str):
        c = OmegaConf.merge(cfg, {"train": {"iters": iters, "ckpt_every": 10**6, "log_every": 1}})
        return method.finetune(identity, clip, None, c, work / f"{method_name}-{name}")

    from aebench.provenance import peak_memory

    torch.manual_seed(0)
    with peak_memory() as mem:  # this method's high-water mark (reset here where the kernel allows)
        t0 = time.perf_counter()
        one, _ = _count(lambda: finetune(1, "one"))
        t1 = time.perf_counter()
        three, ckpt = _count(lambda: finetune(3, "three"))
        t3 = time.perf_counter()
    per_iter = (three - one) / 2
    frame = {}
    for s in render_sizes:
        c = OmegaConf.merge(cfg, {"data": {"size": s}, "train": {"render_frames": 1, "render_sampler": "hierarchical", "chunk": 4096}})
        small = Identity.open(identity.path).at_size(s)
        audio = small.split("test").audio
        flops, _ = _count(lambda: method.render(Path(ckpt), small, audio, c, work / f"{method_name}-{s}.mp4"))  # noqa: B023 (called here)
        frame[s] = flops
    (s1, f1), (s2, f2) = sorted(frame.items())
    per_pixel = (f2 - f1) / (s2 * s2 - s1 * s1)
    per_frame_const = f1 - per_pixel * s1 * s1
    train = cfg.train
    return {
        "method": method_name,
        "size": size,
        "batch_rays": int(train.batch_rays),
        "samples/ray": f"{int(train.n_coarse)}+{int(train.n_fine)}",
        "flops_per_train_iter": per_iter,
        "flops_render_counted": {str(k): v for k, v in frame.items()},
        "flops_per_ray_render": per_pixel,
        "flops_per_frame_const": per_frame_const,
        "flops_per_frame_512": per_frame_const + per_pixel * 512 * 512,
        "cpu_seconds": {"finetune_1_iter": round(t1 - t0, 1), "finetune_3_iters": round(t3 - t1, 1)},
        "peak_rss_mib": round(mem.rss / 2**20),
        "peak_rss_scope": mem.scope,
        "pretrain_iters": int(train.pretrain_iters),
        "finetune_iters": int(train.iters),
        "has_base_model": bool(method.has_base_model),
    }


def project(m: dict) -> dict:
    """Hours of the paper's schedule on each GPU and precision at :data:`UTILISATION`."""
    out = {}
    for gpu, peaks in PEAK_TFLOPS.items():
        for prec, tflops in peaks.items():
            rate = tflops * 1e12 * UTILISATION
            base = m["flops_per_train_iter"] * m["pretrain_iters"] / rate / 3600 if m["has_base_model"] else None
            ft = m["flops_per_train_iter"] * m["finetune_iters"] / rate / 3600
            out[f"{gpu} {prec}"] = {"base_h": base, "finetune_h": ft, "render_s_per_512px_frame": m["flops_per_frame_512"] / rate}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--render-sizes", default="16,32", help="two small frame sizes whose render FLOPs give a + b x pixels")
    ap.add_argument("--methods", default="aenerf,dfrf,adnerf")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    from aebench.provenance import provenance

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = tuple(int(s) for s in args.render_sizes.split(","))
    if len(sizes) != 2 or sizes[0] == sizes[1]:
        ap.error("--render-sizes takes two different sizes, e.g. 16,32")
    results = []
    with tempfile.TemporaryDirectory(prefix="aebench-paper-scale-") as tmp:
        for name in args.methods.split(","):
            print(f"== {name} at scale=paper, {args.size} px", file=sys.stderr)
            m = measure(name, args.size, sizes, Path(tmp))
            m["projection"] = project(m)
            results.append(m)
            print(json.dumps({k: v for k, v in m.items() if k != "projection"}, indent=1), file=sys.stderr)
    doc = {
        "what": "FLOPs per paper-scale training iteration and rendered frame (torch FlopCounterMode: matrix products "
        "and convolutions, 2 per multiply-add), projected to the paper's schedule",
        "utilisation": UTILISATION,
        "peak_tflops": PEAK_TFLOPS,
        "paper_hours_a100": PAPER_HOURS,
        "provenance": provenance(),
        "methods": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
