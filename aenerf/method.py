"""AE-NeRF through the Method API: base-model pretraining over several identities, few-shot
fine-tuning, rendering of an identity's test poses driven by any audio.

Training batches: one target frame per iteration (a random identity while pretraining),
``train.batch_rays`` rays from it (biased to the head by ``train.face_fraction``) and
L = ``aenerf.n_refs`` reference frames drawn at random from the *same* training frames,
other than the target (DFRF's scheme; the target cannot serve as its own reference).
Rendering uses L fixed references spread evenly over the fine-tuning clip; their
identity-level frame numbers are stored in the checkpoint, so only clip frames are ever
seen (the few-shot setting).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from aebench.data import Identity
from aebench.methods import Method, driving_pose_indices

CKPT_NAME = "checkpoint"


def build_model(cfg: DictConfig, audio_channels: int, arch: dict | None = None):
    """The network from ``cfg.aenerf`` (or a checkpoint's stored ``arch``)."""
    from aenerf.model import AENeRFModel

    arch = dict(arch or OmegaConf.to_container(cfg.aenerf, resolve=True))
    loss_cfg = {k: cfg.aenerf[k] for k in ("rrs", "rrs_eps", "lambda_m", "lambda_o")}
    return AENeRFModel(arch, audio_channels, fine=int(cfg.train.n_fine) > 0, train_cfg=cfg.train, loss_cfg=loss_cfg)


def fixed_references(n_frames: int, n_refs: int) -> np.ndarray:
    """Evenly spread view-local indices of the inference references."""
    return np.unique(np.linspace(0, n_frames - 1, n_refs).round().astype(np.int64))


def make_batch_fn(views_list: list, cfg: DictConfig):
    """``batch_fn(step, generator)`` for :class:`aenerf.engine.trainer.Trainer`."""
    from aenerf.engine.views import sample_rays

    n_refs = int(cfg.aenerf.n_refs)

    def batch_fn(step: int, g: torch.Generator) -> dict:
        dev = views_list[0].frames.device
        v = views_list[int(torch.randint(len(views_list), (1,), generator=g, device=dev))]
        frame = int(torch.randint(v.n, (1,), generator=g, device=dev))
        others = torch.arange(v.n, device=dev)
        if v.n > n_refs:
            others = others[others != frame]
        refs = others[torch.randperm(others.numel(), generator=g, device=dev)[:n_refs]]
        if refs.numel() < n_refs:  # fewer frames than references: repeat
            refs = refs[torch.arange(n_refs, device=dev) % refs.numel()]
        batch = sample_rays(v, frame, int(cfg.train.batch_rays), float(cfg.train.face_fraction), g)
        batch.update(audio=v.audio[frame], ref_audio=v.audio[refs], ref_images=v.frames[refs], ref_c2w=v.poses[refs],
                     intrinsics=v.intrinsics, near=v.near, far=v.far, generator=g)
        return batch

    return batch_fn


def _check_base(meta: dict, arch: dict, channels: int, features: str, base: Path) -> None:
    """A base model must have this run's network (variant switches and sizes) and audio input."""
    if meta.get("features") != features or meta.get("audio_channels") != channels:
        raise ValueError(f"base model {base} was trained on '{meta.get('features')}' audio features "
                         f"({meta.get('audio_channels')} channels); this run uses features={features} ({channels}); "
                         f"use a base model pretrained with the same features")
    diff = {k: (meta["arch"].get(k), v) for k, v in arch.items() if meta["arch"].get(k) != v}
    if diff:
        raise ValueError(f"base model {base} has another network than this run (base vs run: "
                         + ", ".join(f"aenerf.{k}: {a} vs {b}" for k, (a, b) in diff.items())
                         + "); pretrain a base model with the same aenerf settings")


class AENeRF(Method):
    name = "aenerf"
    has_base_model = True

    def pretrain(self, identities: list[Identity], cfg: DictConfig, run_dir: Path) -> Path:
        return self._train([i.split("train") for i in identities], cfg, Path(run_dir), int(cfg.train.pretrain_iters),
                           None, "pretrain")

    def finetune(self, identity: Identity, clip: Identity, base: Path | None, cfg: DictConfig, run_dir: Path) -> Path:
        return self._train([clip], cfg, Path(run_dir), int(cfg.train.iters), base, "finetune")

    def _train(self, identities: list[Identity], cfg: DictConfig, run_dir: Path, iters: int, base: Path | None,
               desc: str) -> Path:
        from aebench.device import resolve_device
        from aenerf.engine.checkpoint import read_state
        from aenerf.engine.trainer import FINAL, Trainer, seed_everything
        from aenerf.engine.views import Views

        root = run_dir / CKPT_NAME
        if (root / FINAL / "state.json").exists():
            return root / FINAL
        device = resolve_device(cfg.device)
        seed_everything(int(cfg.seed))
        views = [Views.from_identity(i, cfg.features, device) for i in identities]
        channels = views[0].audio.shape[-1]
        model = build_model(cfg, channels).to(device)
        if base is not None:
            _check_base(read_state(base)["meta"], model.arch, int(channels), cfg.features, base)
        refs = views[-1].indices[fixed_references(views[-1].n, int(model.arch["n_refs"]))]
        meta = {"method": self.name, "arch": model.arch, "audio_channels": int(channels), "features": cfg.features,
                "fine": model.fine, "refs": [int(r) for r in refs], "identity": views[-1].name}
        trainer = Trainer(model, cfg.train, root, make_batch_fn(views, cfg), device, int(cfg.seed), meta,
                          init_from=base, desc=f"aenerf {desc}")
        return trainer.fit(iters)

    def render(self, checkpoint: Path, identity: Identity, driving_audio: np.ndarray, cfg: DictConfig, out: Path) -> Path:
        from aebench.data.features import extract
        from aebench.device import resolve_device
        from aenerf.engine.checkpoint import load_checkpoint, read_state
        from aenerf.engine.renderer import render_image, write_render

        device = resolve_device(cfg.device)
        meta = read_state(checkpoint)["meta"]
        model = build_model(cfg, meta["audio_channels"], meta["arch"]).to(device)
        load_checkpoint(checkpoint, model, map_location=device)
        model.eval()
        fps, rate = identity.fps, identity.audio_rate
        n_frames = int(round(len(driving_audio) / rate * fps))
        if int(cfg.train.render_frames) > 0:
            n_frames = min(n_frames, int(cfg.train.render_frames))
        if n_frames <= 0:
            raise ValueError(f"driving audio of {len(driving_audio)} samples is shorter than one frame at {fps} fps")
        audio = driving_audio[: int(round(n_frames * rate / fps))]
        windows = torch.from_numpy(np.ascontiguousarray(extract(meta["features"], audio, n_frames, fps), dtype=np.float32)).to(device)
        test = identity.split("test")
        poses = torch.from_numpy(test.poses[driving_pose_indices(test.n_frames, n_frames)]).to(device)
        refs = Identity(identity.path, identity.meta, np.asarray(meta["refs"]), identity.size[0])
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        ref_images = to_t(refs.frames()).float() / 255.0
        ref_audio = to_t(refs.features(meta["features"]).astype(np.float32))
        ref_c2w, intr = to_t(refs.poses), to_t(identity.intrinsics.copy())
        background = to_t(identity.background()).float() / 255.0
        h, w = identity.size
        with torch.no_grad():
            maps = model.ref_encoder(ref_images)

            def frames():
                for i in range(n_frames):
                    with torch.no_grad():
                        ctx = model.context(windows[i], ref_audio, ref_images, ref_c2w, intr, identity.near, identity.far, maps=maps)
                    yield render_image(model.render_fn(ctx), h, w, intr, poses[i], background, int(cfg.train.chunk))

            return write_render(frames(), n_frames, Path(out), fps, audio, rate, desc="aenerf render")
