"""DFRF (Shen et al., ECCV 2022, "Learning Dynamic Facial Radiance Fields for Few-Shot Talking
Head Synthesis") on the shared engine: a reference-conditioned audio NeRF, trained as a base
model over several identities and then fine-tuned on a short clip.

Facts from ``sstzal/DFRF`` (NeRFs/run_nerf_deform.py, run_nerf_helpers_deform.py):

* **References**: ``num_reference_images = 4``. While training, 4 random training frames of
  the same identity other than the target; when rendering, fixed training frames
  (``[50, 100, 150, 200]``; here 4 frames evenly spread over the fine-tuning clip).
* **Reference feature extractor** (``Feature_extractor``): input per pixel gamma_5(rgb) (33)
  and gamma_5(reference camera position) (33) = 66 channels; two 3x3 convs, stride 1 (no
  downsampling), 64 channels, ReLU; then a linear layer to 128 channels.
* **Projection + deformation** (``make_indices``, ``Position_warp``): a sample x is projected
  into each reference; an MLP 255 -> 128 -> 32 -> 2 (ReLU, weights N(0, 1e-3), zero bias) on
  [gamma_10(x) (63), audio code (64, detached), the feature at the projection (128, detached)]
  predicts a pixel offset clamped to [-10, 10]; the feature is re-sampled bilinearly at the
  offset position. Penalty: ``L2loss_weight = 5e-9`` times the mean squared offset.
* **Aggregation** (``SlotAttention``, no audio): per sample, the 4 reference tokens
  [feature 128, pixel position 2] go through fc1 (130 -> 32, ReLU) and fc6 (32 -> 32) and are
  concatenated with themselves and gamma_10(x) (63): 225 -> fc7 -> 128; 2 slots of 128,
  2 iterations, softmax over slots, GRU update, residual MLP; the flattened slots (256)
  condition the NeRF.
* **NeRF**: 8x256 MLP, skip at 4, input [gamma_10(x), audio code 64, aggregated 256], view
  directions gamma_4(d); coarse 64 + fine 128 samples with separate MLPs sharing the feature
  extractor, warper and slot attention; loss = MSE(fine) + MSE(coarse) + penalty.
* **Audio**: AudioNet, then AudioAttNet from ``nosmo_iters`` (100k) on with 5x lr; the step
  count continues from the base model into fine-tuning (``global_step``).
* Adam lr 5e-4, decay 0.1 over 750k steps (``lrate_decay`` 500 x 1500); ``N_rand`` 850 rays,
  95% inside the face box; ``N_iters`` 600k for the base model.

Deviations (deliberate):

* The suite's audio features (``cfg.features``, mfcc by default) replace DeepSpeech.
* Slot attention is the engine's ``SlotAggregation`` (shared with AE-NeRF's "w/o AAA"):
  its input linear plays fc7 (no LeakyReLU), slots start from learned means instead of
  Gaussian samples (deterministic rendering), and an FC-ReLU-FC maps the flattened slots
  to ``2 * slot_dim``.
* The pixel position given to the aggregation is divided by the image size (the official
  code feeds raw pixel indices of a 512 image); the offset clamp ``offset_clamp`` is in
  pixels of a 512-px image and scaled to the working size.
* Projected positions are clamped into the image before sampling, as the official code
  does, then sampled bilinearly (the official code rounds the first lookup to a pixel).
* Rays: ``face_fraction`` from the head labels instead of the face box; one NeRF renders
  head and torso over ``background.png`` (DFRF composites over a torso background image).
* NeRF layout is the engine's ``NeRFMLP``, as for every method here (input re-injected before
  layer ``depth // 2``, a feature layer before the colour branch, softplus density where the
  official code uses ReLU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from aebench.data import Identity
from aenerf.engine.encoding import PositionalEncoding
from aenerf.engine.references import project_to_refs, sample_features
from aenerf.engine.slot_attention import SlotAggregation
from aenerf.engine.views import Views
from baselines.common import AudioNeRFMethod, AudioNeRFModel, training_clip

REF_IMAGE_SIZE = 512  # the official clamp of 10 px is in pixels of 512x512 frames


class FeatureExtractor(nn.Module):
    """DFRF's reference CNN: [gamma(rgb), gamma(camera position)] -> 2 x conv3x3 -> linear."""

    def __init__(self, pe: int = 5, width: int = 64, feat_dim: int = 128):
        super().__init__()
        self.pe = PositionalEncoding(pe)
        self.convs = nn.Sequential(nn.Conv2d(2 * self.pe.out_dim, width, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(width, feat_dim)

    def forward(self, images: Tensor, c2w: Tensor) -> Tensor:
        """(L, H, W, 3) images in [0, 1] and (L, 4, 4) poses -> (L, feat_dim, H, W)."""
        l, h, w, _ = images.shape
        cam = self.pe(c2w[:, :3, 3])[:, None, None].expand(l, h, w, -1)
        x = torch.cat([self.pe(images), cam], -1).permute(0, 3, 1, 2)
        return self.fc(self.convs(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PositionWarp(nn.Module):
    """Offset (du, dv) of a projected position from [gamma(x), audio, reference feature]."""

    def __init__(self, in_dim: int, hidden: tuple[int, int] = (128, 32), clamp: float = 10.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                 nn.Linear(hidden[1], 2))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 1e-3)
                nn.init.zeros_(m.bias)
        self.clamp = clamp

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x).clamp(-self.clamp, self.clamp)


class DFRFModel(AudioNeRFModel):
    def __init__(self, hp: dict[str, Any]):
        self.extra_cond = 2 * hp["slot_dim"]
        super().__init__(hp)
        feat = hp["feat_dim"]
        self.features = FeatureExtractor(hp["pe_ref"], hp["cnn_width"], feat)
        self.pe_warp = PositionalEncoding(hp["pe_warp"])
        self.warp = PositionWarp(self.pe_warp.out_dim + hp["audio_dim"] + feat, tuple(hp["warp_hidden"]),
                                 hp["offset_clamp"] * hp["image_size"] / REF_IMAGE_SIZE)
        tok = feat + 2
        self.rel = nn.Sequential(nn.Linear(tok, 32), nn.ReLU(), nn.Linear(32, 32))  # fc1, fc6
        self.slots = SlotAggregation(tok + self.pe_x.out_dim + 32, hp["slot_dim"], 2 * hp["slot_dim"],
                                     hp["n_slots"], hp["slot_iters"])

    def reference_context(self, images: Tensor, c2w: Tensor, intrinsics: Tensor) -> dict:
        return {"maps": self.features(images, c2w), "c2w": c2w, "intrinsics": intrinsics}

    def context(self, views: Views, batch: dict) -> dict:
        refs = batch["refs"]
        return self.reference_context(views.frames[refs], views.poses[refs], views.intrinsics)

    def aggregate(self, pts: Tensor, audio: Tensor, ctx: dict) -> tuple[Tensor, Tensor]:
        """(P, 3) points -> (P, 2 slot_dim) aggregated features and (L, P, 2) offsets."""
        maps = ctx["maps"]
        h, w = maps.shape[-2:]
        lo = pts.new_tensor([0.5, 0.5])
        hi = pts.new_tensor([w - 0.5, h - 0.5])
        uv, _ = project_to_refs(pts, ctx["c2w"], ctx["intrinsics"])
        uv = torch.maximum(torch.minimum(uv, hi), lo)
        first = sample_features(maps, uv)  # (L, P, C)
        l, p = uv.shape[:2]
        px = self.pe_x(pts)
        warp_in = torch.cat([self.pe_warp(pts)[None].expand(l, p, -1), audio.detach().expand(l, p, -1),
                             first.detach()], -1)
        offset = self.warp(warp_in)
        uv2 = torch.maximum(torch.minimum(uv + offset, hi), lo)
        feats = sample_features(maps, uv2)
        tokens = torch.cat([feats, uv2 / uv2.new_tensor([w, h])], -1)  # (L, P, C + 2)
        tokens = torch.cat([tokens, px[None].expand(l, p, -1), self.rel(tokens)], -1).transpose(0, 1)
        return self.slots(tokens), offset

    def field(self, audio: Tensor, ctx: dict):
        nets = {"coarse": self.coarse, "fine": self.fine}

        def fn(points: Tensor, dirs: Tensor, level: str) -> dict:
            n, s = points.shape[:2]
            flat = points.reshape(-1, 3)
            agg, offset = self.aggregate(flat, audio, ctx)
            x = self.pe_x(flat)
            d = self.pe_d(dirs)[:, None].expand(n, s, -1).reshape(n * s, -1)
            cond = torch.cat([audio.expand(n * s, -1), agg], -1)
            out = nets[level](x, d, cond)
            return {"sigma": out["sigma"].reshape(n, s), "rgb": out["rgb"].reshape(n, s, 3),
                    "aux_offset": offset}

        return fn

    def extra_loss(self, out: dict) -> tuple[Tensor, dict]:
        pen = torch.mean(out["aux_offset"] ** 2)
        return float(self.hp["offset_weight"]) * pen, {"offset_px2": float(pen.detach())}


def render_references(n: int, count: int) -> np.ndarray:
    """``count`` clip frames evenly spread over ``n`` (DFRF fixes 4 training frames)."""
    if n < 1:
        raise ValueError("the clip has no frames to take references from")
    if n >= count:
        return np.linspace(0, n - 1, count).round().astype(np.int64)
    return np.arange(count) % n


class DFRF(AudioNeRFMethod):
    name = "dfrf"
    has_base_model = True
    model_cls = DFRFModel

    def hparams(self, cfg: DictConfig, audio_channels: int) -> dict[str, Any]:
        s = cfg.dfrf
        hp = super().hparams(cfg, audio_channels)
        keys = ("feat_dim", "cnn_width", "pe_ref", "pe_warp", "offset_clamp", "offset_weight", "slot_dim",
                "n_slots", "slot_iters", "n_refs")
        hp.update({k: s[k] for k in keys})
        hp["warp_hidden"] = list(s.warp_hidden)
        hp["image_size"] = int(cfg.data.size) if int(cfg.data.size) > 0 else REF_IMAGE_SIZE
        return hp

    def batch_extra(self, views: Views, frame: int, generator: torch.Generator, hp: dict) -> dict:
        """4 random frames of the same identity other than the target (DFRF training)."""
        n_refs = int(hp["n_refs"])
        others = torch.randperm(views.n, generator=generator, device=generator.device)
        others = others[others != frame] if views.n > 1 else others
        if others.numel() < n_refs:  # tiny clips: repeat
            others = others.repeat(n_refs // max(others.numel(), 1) + 1)
        return {"refs": others[:n_refs].to(views.frames.device)}

    def meta_extra(self, clip: Identity, cfg: DictConfig) -> dict:
        refs = render_references(clip.n_frames, int(cfg.dfrf.n_refs))
        return {"render_refs": [int(clip.indices[i]) for i in refs]}

    def pretrain(self, identities: list[Identity], cfg: DictConfig, run_dir):
        from pathlib import Path

        if not identities:
            raise ValueError("dfrf pretrain needs at least one identity")
        views = [self._views(i.split("train"), cfg) for i in identities]
        return self._train(views, cfg, Path(run_dir) / "checkpoint", int(cfg.train.pretrain_iters), None, 0,
                           {"identities": [i.name for i in identities]}, "dfrf pretrain")

    def render_context(self, model: DFRFModel, identity: Identity, meta: dict, cfg: DictConfig, device) -> dict:
        clip = training_clip(identity, cfg)
        wanted = meta.get("render_refs")
        pos = {int(j): i for i, j in enumerate(clip.indices)}
        if wanted is None or any(int(j) not in pos for j in wanted):
            raise ValueError(f"dfrf checkpoint references {wanted} are not frames of {identity.name}'s clip "
                             f"({clip.n_frames} frames, data.clip_seconds={cfg.data.clip_seconds}); render with the "
                             f"settings it was fine-tuned with")
        idx = [pos[int(j)] for j in wanted]
        images = torch.from_numpy(np.stack([clip.frame(i) for i in idx])).to(device).float() / 255.0
        c2w = torch.from_numpy(np.ascontiguousarray(clip.poses[idx])).to(device)
        intr = torch.from_numpy(identity.intrinsics.copy()).to(device)
        return model.reference_context(images, c2w, intr)
