"""A test double for the protocol runner: 'renders' the ground-truth test frames plus seeded
noise, with a base model that only counts how often it was trained. Registered by tests only."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import yaml

from aebench.media import write_video
from aebench.method_api import Method, driving_pose_indices, render_span
from aebench.settings import Settings, setting


@dataclass(frozen=True)
class NoisyGTSettings(Settings):
    """``cfg.noisy_gt``."""

    noise: float = setting(8.0, low=0.0)
    """Standard deviation of the noise added to the ground truth frames (0-255 units)."""


class NoisyGT(Method):
    name = "noisy_gt"
    has_base_model = True
    settings_cls = NoisyGTSettings

    def pretrain(self, identities, cfg, run_dir):
        ckpt = Path(run_dir) / "ckpt"
        ckpt.mkdir(parents=True, exist_ok=True)
        counter = Path(os.environ["FAKE_METHOD_COUNTER"]) if "FAKE_METHOD_COUNTER" in os.environ else None
        if counter is not None:
            with open(counter, "a") as fh:
                fh.write("pretrain\n")
        if "FAKE_METHOD_FAIL_PRETRAIN" in os.environ:
            raise RuntimeError("injected pretrain failure")
        (ckpt / "base.json").write_text(json.dumps([i.name for i in identities]))
        return ckpt

    def finetune(self, identity, clip, base, cfg, run_dir):
        if "FAKE_METHOD_COUNTER" in os.environ:
            with open(os.environ["FAKE_METHOD_COUNTER"], "a") as fh:
                fh.write("finetune\n")
        if "FAKE_METHOD_HOLD" in os.environ:
            hold(Path(os.environ["FAKE_METHOD_HOLD"]) / f"iters-{int(cfg.train.iters)}")
        ckpt = Path(run_dir) / "checkpoint" / "final"
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt.parent / "log.txt").write_text("step 1 loss=0.5 psnr=10\nstep 2 loss=0.25 psnr=12\n")
        return ckpt

    def render(self, checkpoint, identity, driving_audio, cfg, out):
        fail_on = os.environ.get("FAKE_METHOD_FAIL")
        if fail_on and fail_on == str(cfg.run.row):
            raise RuntimeError("injected failure")
        if "FAKE_METHOD_THREADS" in os.environ:  # the torch threads the cell runs with
            import torch

            with open(os.environ["FAKE_METHOD_THREADS"], "a") as fh:
                fh.write(f"{torch.get_num_threads()}\n")
        test = identity.split("test")
        n, audio = render_span(identity, driving_audio, int(cfg.train.render_frames))
        noise = float(cfg.noisy_gt.noise)
        rng = np.random.default_rng(int(cfg.seed))
        frames = []
        for k in driving_pose_indices(test.n_frames, n):
            img = test.frame(int(k)).astype(np.float32) + rng.normal(0, noise, (*identity.size, 3))
            frames.append(np.clip(img, 0, 255).astype(np.uint8))
        return write_video(out, frames, identity.fps, audio, crf=0)


def hold(gate: Path, limit_s: float = 300.0) -> None:
    """While the file ``gate`` exists, wait (a test stops a cell mid-run this way): first write
    ``gate.started`` with the SLURM job this process runs in (empty outside SLURM)."""
    if not gate.exists():
        return
    job = os.environ.get("SLURM_ARRAY_JOB_ID", "")
    job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID", "")
    gate.with_suffix(".started").write_text(job)
    deadline = time.monotonic() + limit_s
    while gate.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def toy_protocol(folder: Path, name: str = "mine") -> Path:
    """A one-row protocol of :class:`NoisyGT` on a 2-identity 16 px synthetic corpus, written
    to ``folder/my_protocol.yaml`` (the method must be registered by the test)."""
    spec = {
        "name": name,
        "table": None,
        "metrics": ["psnr", "ssim"],
        "rows": [{"label": "A", "method": "noisy_gt"}],
        "targets": ["synth_01"],
        "base": "leave_one_out",
        "data": "synth",
        "synth": {"identities": 2, "seconds": 2.0, "size": 16, "seed": 0},
        "grid": {"iters": [2]},
        "settings": {"data.size": 16, "train.render_frames": 4},
    }
    path = Path(folder) / "my_protocol.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
