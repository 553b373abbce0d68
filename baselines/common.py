"""What DFRF and AD-NeRF share on top of :mod:`aenerf.engine`: an audio-conditioned NeRF
model skeleton (AudioNet + late AudioAttNet, coarse and fine ``NeRFMLP``), the training-loop
wiring (per-method train settings, AudioAttNet's 5x learning rate), and rendering a driving
audio over an identity's test poses. Each baseline subclasses :class:`AudioNeRFModel` and
:class:`AudioNeRFMethod` and only adds what its paper adds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from aebench.data import Identity
from aebench.methods import Method, driving_pose_indices
from aenerf.engine.encoding import PositionalEncoding
from aenerf.engine.mlp import NeRFMLP
from aenerf.engine.render import render_rays
from aenerf.engine.trainer import Trainer, psnr, seed_everything
from aenerf.engine.views import Views, sample_rays
from baselines.audio_net import AudioEncoder

#: per-method keys that, when not null, replace ``cfg.train``'s (each paper's own schedule)
TRAIN_OVERRIDES = ("lr_decay_steps", "batch_rays", "face_fraction")
#: AD-NeRF and DFRF step AudioAttNet's optimizer with 5x the learning rate (official code)
ATT_LR_MULT = 5.0


def train_settings(cfg: DictConfig, section: str) -> DictConfig:
    """``cfg.train`` with the method section's non-null :data:`TRAIN_OVERRIDES` applied."""
    own = cfg[section]
    update = {k: own[k] for k in TRAIN_OVERRIDES if k in own and own[k] is not None}
    return OmegaConf.merge(cfg.train, update)


def training_clip(identity: Identity, cfg: DictConfig) -> Identity:
    """The fine-tuning clip the runner passes (first ``clip_seconds`` of the training half,
    the whole half for 0); rendering rebuilds it to find DFRF's references."""
    s = float(cfg.data.clip_seconds)
    return identity.clip(s) if s > 0 else identity.split("train")


class ScaledAdam(torch.optim.Adam):
    """Adam whose param groups may carry ``lr_mult``: the Trainer sets one schedule for every
    group and this applies each group's multiple at the step (AudioAttNet's 5x)."""

    def step(self, closure=None):
        saved = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = g["lr"] * g.get("lr_mult", 1.0)
        try:
            return super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, saved):
                g["lr"] = lr


class AudioNeRFModel(nn.Module):
    """Coarse and fine audio-conditioned NeRFs (``NeRFMLP``, cond = audio code + ``extra_cond``).

    ``hp`` (a plain dict, stored in the checkpoint meta) holds the sizes. Subclasses set
    ``extra_cond`` and override :meth:`context` / :meth:`field` / :meth:`extra_loss`.
    """

    extra_cond: int = 0

    def __init__(self, hp: dict[str, Any]):
        super().__init__()
        self.hp = dict(hp)
        self.pe_x = PositionalEncoding(hp["pe_x"])
        self.pe_d = PositionalEncoding(hp["pe_d"])
        self.audio = AudioEncoder(hp["audio_channels"], hp["audio_dim"], hp["smo_size"], hp["att_dims"])
        cond = hp["audio_dim"] + self.extra_cond
        self.coarse = NeRFMLP(self.pe_x.out_dim, self.pe_d.out_dim, cond, hp["width"], hp["depth"])
        self.fine = NeRFMLP(self.pe_x.out_dim, self.pe_d.out_dim, cond, hp["width"], hp["depth"])
        self.views: list[Views] = []
        self.train_cfg: DictConfig | None = None

    # ----- hooks ------------------------------------------------------------------------
    def context(self, views: Views, batch: dict) -> dict:
        """Per-batch conditioning besides audio (DFRF: reference features)."""
        return {}

    def field(self, audio: Tensor, ctx: dict):
        """The field closure for one batch (see :mod:`aenerf.engine.render`)."""
        nets = {"coarse": self.coarse, "fine": self.fine}

        def fn(points: Tensor, dirs: Tensor, level: str) -> dict:
            n, s = points.shape[:2]
            x = self.pe_x(points)
            d = self.pe_d(dirs)[:, None].expand(n, s, -1)
            cond = audio.expand(n, s, -1)
            return nets[level](x, d, cond)

        return fn

    def extra_loss(self, out: dict) -> tuple[Tensor | float, dict]:
        return 0.0, {}

    # ----- training / rendering -----------------------------------------------------------
    def param_groups(self) -> list[dict]:
        att = list(self.audio.att_net.parameters())
        ids = {id(p) for p in att}
        return [{"params": [p for p in self.parameters() if id(p) not in ids]},
                {"params": att, "lr_mult": ATT_LR_MULT}]

    def smoothing(self, step: int) -> bool:
        return step + int(self.hp.get("step_offset", 0)) >= int(self.hp["nosmo_iters"])

    def render_batch(self, rays_o: Tensor, rays_d: Tensor, bg: Tensor, audio: Tensor, ctx: dict,
                     near: float, far: float, perturb: bool, generator=None) -> dict:
        cfg = self.train_cfg
        return render_rays(self.field(audio, ctx), rays_o, rays_d, near, far, bg, int(cfg.n_coarse),
                           int(cfg.n_fine), perturb, generator)

    def training_step(self, batch: dict, step: int) -> tuple[Tensor, dict]:
        views = self.views[int(batch["view"])]
        frame = int(batch["frame"])
        audio = self.audio(views.audio, frame, self.smoothing(step))
        ctx = self.context(views, batch)
        out = self.render_batch(batch["rays_o"], batch["rays_d"], batch["bg"], audio, ctx, views.near, views.far,
                                bool(self.train_cfg.perturb), batch.get("generator"))
        last = out.get("fine", out["coarse"])
        mse = torch.mean((last["rgb"] - batch["rgb"]) ** 2)
        loss = mse
        if "fine" in out:
            loss = loss + torch.mean((out["coarse"]["rgb"] - batch["rgb"]) ** 2)
        extra, stats = self.extra_loss(last)
        return loss + extra, {"psnr": psnr(mse.detach()), "mse": float(mse.detach()), **stats}


class AudioNeRFMethod(Method):
    """Training and rendering shared by the NeRF baselines; subclasses set ``name``,
    ``model_cls`` and :meth:`hparams`."""

    model_cls: type[AudioNeRFModel] = AudioNeRFModel

    def hparams(self, cfg: DictConfig, audio_channels: int) -> dict[str, Any]:
        s = cfg[self.name]
        keys = ("pe_x", "pe_d", "audio_dim", "smo_size", "att_dims", "width", "depth", "nosmo_iters")
        return {"audio_channels": int(audio_channels), **{k: s[k] for k in keys}}

    def batch_extra(self, views: Views, frame: int, generator: torch.Generator, hp: dict) -> dict:
        """Conditioning a batch needs besides rays (DFRF: its reference frames)."""
        return {}

    def meta_extra(self, clip: Identity, cfg: DictConfig) -> dict:
        return {}

    # ----- training ------------------------------------------------------------------------
    def _train(self, views: list[Views], cfg: DictConfig, ckpt_root: Path, iters: int, init_from: Path | None,
               step_offset: int, meta_extra: dict, desc: str) -> Path:
        from aebench.device import resolve_device

        device = resolve_device(cfg.device)
        tcfg = train_settings(cfg, self.name)
        hp = self.hparams(cfg, views[0].audio.shape[-1])
        hp["step_offset"] = step_offset
        seed_everything(int(cfg.seed))  # the same seed gives the same initial weights
        model = self.model_cls(hp).to(device)
        model.views, model.train_cfg = views, tcfg

        def batch_fn(step: int, g: torch.Generator) -> dict:
            k = int(torch.randint(len(views), (1,), generator=g, device=g.device))
            frame = int(torch.randint(views[k].n, (1,), generator=g, device=g.device))
            batch = sample_rays(views[k], frame, int(tcfg.batch_rays), float(tcfg.face_fraction), g)
            batch.update(view=k, generator=g, **self.batch_extra(views[k], frame, g, hp))
            return batch

        meta = {"method": self.name, "hp": hp, "features": str(cfg.features), **meta_extra}
        trainer = Trainer(model, tcfg, ckpt_root, batch_fn, device, seed=int(cfg.seed), meta=meta,
                          init_from=init_from, desc=desc)
        trainer.optimizer = ScaledAdam(model.param_groups(), lr=float(tcfg.lr), betas=(0.9, 0.999))
        return trainer.fit(iters)

    def _views(self, identity: Identity, cfg: DictConfig) -> Views:
        from aebench.device import resolve_device

        return Views.from_identity(identity, features=str(cfg.features), device=resolve_device(cfg.device))

    def finetune(self, identity: Identity, clip: Identity, base: Path | None, cfg: DictConfig, run_dir: Path) -> Path:
        offset = 0
        if base is not None:
            from aenerf.engine.checkpoint import read_state

            offset = int(read_state(base)["step"]) + int(read_state(base)["meta"]["hp"].get("step_offset", 0))
        return self._train([self._views(clip, cfg)], cfg, Path(run_dir) / "checkpoint", int(cfg.train.iters), base,
                           offset, self.meta_extra(clip, cfg), f"{self.name} finetune {identity.name}")

    # ----- rendering -----------------------------------------------------------------------
    def load(self, checkpoint: Path, cfg: DictConfig, device) -> tuple[AudioNeRFModel, dict]:
        from aenerf.engine.checkpoint import load_checkpoint, read_state

        state = read_state(checkpoint)
        meta = state["meta"]
        if meta.get("method") != self.name:
            raise ValueError(f"{checkpoint} is a '{meta.get('method')}' checkpoint, not '{self.name}'")
        model = self.model_cls(meta["hp"]).to(device)
        load_checkpoint(checkpoint, model, map_location=device)
        model.train_cfg = train_settings(cfg, self.name)
        model.eval()
        return model, state

    def render_context(self, model: AudioNeRFModel, identity: Identity, meta: dict, cfg: DictConfig, device) -> dict:
        return {}

    @torch.no_grad()
    def render(self, checkpoint: Path, identity: Identity, driving_audio: np.ndarray, cfg: DictConfig, out: Path) -> Path:
        from aebench.data.features import extract
        from aebench.device import resolve_device
        from aenerf.engine.renderer import render_image, write_render

        device = resolve_device(cfg.device)
        model, state = self.load(checkpoint, cfg, device)
        fps = identity.fps
        n = int(round(len(driving_audio) / identity.audio_rate * fps))
        if int(cfg.train.render_frames) > 0:
            n = min(n, int(cfg.train.render_frames))
        if n <= 0:
            raise ValueError(f"driving audio of {len(driving_audio)} samples is shorter than one frame")
        feats = torch.from_numpy(np.ascontiguousarray(extract(cfg.features, driving_audio, n, fps), dtype=np.float32)).to(device)
        codes = model.audio.encode_all(feats, model.smoothing(int(state["step"])))
        test = identity.split("test")
        poses = torch.from_numpy(np.ascontiguousarray(test.poses)).to(device)
        order = driving_pose_indices(test.n_frames, n)
        intr = torch.from_numpy(identity.intrinsics.copy()).to(device)
        bg = torch.from_numpy(identity.background().copy()).to(device).float() / 255.0
        h, w = identity.size
        ctx = self.render_context(model, identity, state["meta"], cfg, device)
        chunk = int(model.train_cfg.chunk)

        def frames():
            for i in range(n):
                code = codes[i]

                def fn(o, d, b):
                    res = model.render_batch(o, d, b, code, ctx, identity.near, identity.far, False)
                    return res.get("fine", res["coarse"])["rgb"]

                yield render_image(fn, h, w, intr, poses[int(order[i])], bg, chunk)

        audio = driving_audio[: int(round(n / fps * identity.audio_rate))]
        return write_render(frames(), n, Path(out), fps, audio, identity.audio_rate, desc=f"{self.name} render")
