"""copycat: 'renders' an identity's test frames, darkened by ``copycat.darken`` grey levels (a method of
another package, registered through the ``aebench.methods`` entry point)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aebench.media import write_video
from aebench.method_api import Method, driving_pose_indices, render_span


class Copycat(Method):
    name = "copycat"
    has_base_model = False

    def pretrain(self, identities, cfg, run_dir):
        return None

    def finetune(self, identity, clip, base, cfg, run_dir):
        ckpt = Path(run_dir) / "checkpoint"
        ckpt.mkdir(parents=True, exist_ok=True)
        darken = int(cfg.copycat.get("darken", 0))  # its own section: an open mapping it validates
        (ckpt / "copycat.json").write_text(json.dumps({"identity": identity.name, "darken": darken}))
        return ckpt

    def render(self, checkpoint, identity, driving_audio, cfg, out):
        darken = json.loads((Path(checkpoint) / "copycat.json").read_text())["darken"]
        test = identity.split("test")
        n, audio = render_span(identity, driving_audio, int(cfg.train.render_frames))
        frames = (
            np.clip(test.frame(int(k)).astype(np.int16) - darken, 0, 255).astype(np.uint8) for k in driving_pose_indices(test.n_frames, n)
        )
        return write_video(out, frames, identity.fps, audio, crf=0)
