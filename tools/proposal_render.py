"""Render speed and quality of the proposal sampler's checkpoints beside the default's (issue 31).

    python tools/proposal_render.py aenerf 64 0 [--frames 8] [--rounds 2]

For the checkpoints ``tools/proposal_bench.sh`` kept (``$CKPT/METHOD_VARIANT_SIZE_seedN``, default
/tmp/proposal_bench) it renders May's first ``--frames`` test frames self-driven, in one process
with one torch thread, ``--rounds`` times in turn:

* ``default``: the default checkpoint as protocols render it (``train.render_sampler=occupancy``:
  an occupancy grid built for the render, occupied samples only, early ray termination);
* ``proposal, every sample``: the proposal checkpoint with ``render_sampler=hierarchical``;
* ``proposal``: the proposal checkpoint as protocols render it (``occupancy``: samples the
  proposal bounds as empty skipped, early ray termination).

Each render's seconds per frame (the whole render, set-up included, over its frames), the samples
the field evaluated per ray and the PSNR against the ground truth are written to
docs/speed/sampler/METHOD_SIZE_seedN_renders.json. The training settings come from the
converge JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "speed" / "sampler"
VARIANTS = {
    "default": ("default", "occupancy"),
    "proposal, every sample": ("proposal", "hierarchical"),
    "proposal": ("proposal", "occupancy"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("method")
    ap.add_argument("size", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import torch

    from aebench.config import load_config
    from aebench.data import Identity
    from aebench.eval import evaluate
    from aebench.engine.volume import count_samples
    from aebench.harness.protocol.runner import ground_truth, scored_frames
    from aebench.registry import get_method

    torch.set_num_threads(1)
    ckpts = Path(os.environ.get("CKPT", "/tmp/proposal_bench"))
    method = get_method(args.method)
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for label, (variant, sampler) in VARIANTS.items():
                name = f"{args.method}_{variant}_{args.size}_seed{args.seed}"
                overrides = json.loads((OUT / f"{name}.json").read_text())["overrides"]
                cfg = load_config([*overrides, f"train.render_sampler={sampler}", f"train.render_frames={args.frames}", "device=cpu"])
                target = Identity.open(Path(cfg.data.root) / "may").at_size(int(cfg.data.size))
                audio = target.split("test").audio
                with count_samples() as counted:
                    t0 = time.perf_counter()
                    video = method.render(ckpts / name, target, audio, cfg, Path(tmp) / f"{label}.mp4")
                    seconds = time.perf_counter() - t0
                pred, n, used = scored_frames(video, target, audio, args.frames)
                psnr = evaluate(pred, gt=ground_truth(target, n), audio=used, fps=target.fps, metrics=["psnr"], progress=False).summary[
                    "psnr"
                ]
                runs[label].append(
                    {"s_per_frame": round(seconds / n, 4), "evaluated_per_ray": round(counted.per_ray, 2), "psnr": float(psnr), "frames": n}
                )
                print(f"{name} {label}: {seconds / n:.3f} s/frame, {counted.per_ray:.1f} samples/ray, PSNR {psnr:.2f}", flush=True)
    out = {
        "method": args.method,
        "size": args.size,
        "seed": args.seed,
        "threads": 1,
        "frames": args.frames,
        "order": "the three renders in turn, each round",
        "renders": runs,
        "median_s_per_frame": {k: statistics.median(r["s_per_frame"] for r in v) for k, v in runs.items()},
    }
    path = OUT / f"{args.method}_{args.size}_seed{args.seed}_renders.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
