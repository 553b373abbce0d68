"""The one skeleton every NeRF method (AE-NeRF, DFRF, AD-NeRF) fills in.

A method is a :class:`NeRFMethod` subclass naming three things: its settings dataclass
(``settings_cls``, the YAML section ``cfg.<name>`` is validated against it), its network
(``model_cls``, a :class:`NeRFModel`) and whether it has a base model. Everything else is
shared, so every method trains and renders under the same conditions (``cfg.train``):

* **Batches** (:meth:`NeRFMethod.batch_fn`): per step one identity (pretraining) and one
  target frame, ``train.batch_rays`` rays (``train.face_fraction`` inside the face box), and,
  for methods with references, ``n_refs`` other frames of the same clip (DFRF's scheme). The
  random stream depends on the seed and the step only, so every row of a protocol sees the
  same rays.
* **Audio**: each clip's windows normalised with its own statistics (:class:`AudioNorm`,
  stored in the checkpoint and reused for references and driving audio when rendering);
  AudioNet codes, smoothed by AudioAttNet from the global step ``train.smooth_from`` on.
* **Training** through :class:`~aebench.engine.trainer.Trainer`; a fine-tune starts from the
  base model's weights (then :meth:`NeRFModel.reinit_for_finetune`) and continues its global
  step count (lr schedule and smoothing), as DFRF's ``global_step`` does.
* **Checkpoint metadata** (``state.json`` ``meta``): method, settings (``to_dict``), audio
  features, channels and normalisation, reference frames (identity-level numbers), global
  step offset, phase.
* **Rendering**: the identity's test poses in order (mirrored when the audio is longer), the
  driving audio's codes, fixed references spread over the fine-tuning clip, chunked.

A network implements :meth:`NeRFModel.field` (and, with references,
:meth:`NeRFModel.references`; optionally ray groups, extra losses, mask backgrounds).
Adding a method: one module (settings + model + method class) and one registry line (an
``aebench.methods`` entry point; docs/extending.md walks through one).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from omegaconf import DictConfig

from aebench.data import Identity
from aebench.data.features import AudioNorm
from aebench.method_api import Method, driving_pose_indices, render_span
from aebench.engine.occupancy import cameras_box
from aebench.engine.model import NeRFModel, occupancy_grid
from aebench.engine.settings import NeRFSettings
from aebench.settings import RootSettings, TrainSettings

CKPT_NAME = "checkpoint"
RENDER_GRID_EVERY = 10  # a render's grid holds the densities of every 10th frame's audio code (and the last's)


def fixed_references(n_frames: int, n_refs: int) -> np.ndarray:
    """``n_refs`` view-local frames evenly spread over ``n_frames`` (the references used when
    rendering; DFRF fixes 4 training frames); repeated when the clip is shorter."""
    if n_frames < 1:
        raise ValueError("the clip has no frames to take references from")
    if n_frames >= n_refs:
        return np.linspace(0, n_frames - 1, n_refs).round().astype(np.int64)
    return np.arange(n_refs) % n_frames


class NeRFMethod(Method):
    """Training and rendering shared by every NeRF method; see the module docstring."""

    settings_cls: ClassVar[type[NeRFSettings]]
    model_cls: ClassVar[type[NeRFModel]]

    # ----- settings --------------------------------------------------------------------
    def settings(self, cfg: DictConfig) -> NeRFSettings:
        s = self.settings_cls.from_tree(cfg, self.name)
        if self.model_cls.uses_references and s.n_refs < 1:
            raise ValueError(f"{self.name}.n_refs must be at least 1 ({self.name} aggregates reference frames), got {s.n_refs}")
        if not self.model_cls.uses_references and s.n_refs != 0:
            raise ValueError(f"{self.name} uses no reference frames: {self.name}.n_refs must be 0, got {s.n_refs}")
        return s

    @staticmethod
    def train_settings(cfg: DictConfig) -> TrainSettings:
        return TrainSettings.from_tree(cfg, "train")

    # ----- Method API ------------------------------------------------------------------
    def pretrain(self, identities: list[Identity], cfg: DictConfig, run_dir: Path) -> Path | None:
        if not self.has_base_model:
            return None
        if not identities:
            raise ValueError(f"{self.name} pretrain needs at least one identity")
        return self._train([i.split("train") for i in identities], cfg, Path(run_dir), None, "pretrain")

    def finetune(self, identity: Identity, clip: Identity, base: Path | None, cfg: DictConfig, run_dir: Path) -> Path:
        if base is not None and not self.has_base_model:
            raise ValueError(f"{self.name} trains each identity from scratch; it has no base model")
        return self._train([clip], cfg, Path(run_dir), base, "finetune")

    def batch_fn(self, views: list, train: TrainSettings, n_refs: int, phase: str = "finetune"):
        """``batch_fn(step, generator)`` for the Trainer: one identity, one frame, its rays and
        (``n_refs`` > 0) as many other frames of the same clip as references. ``phase`` is the
        training's (a method with a stage of its own draws other rays there: ER-NeRF's lips)."""
        from aebench.engine.views import sample_rays

        def fn(step: int, g: torch.Generator) -> dict:
            dev = g.device
            v = views[int(torch.randint(len(views), (1,), generator=g, device=dev))]
            frame = int(torch.randint(v.n, (1,), generator=g, device=dev))
            batch = sample_rays(v, frame, train.batch_rays, train.face_fraction, g, train.face_rect)
            batch.update(views=v, frame_index=frame, generator=g, refs=None)
            if n_refs > 0:
                others = torch.randperm(v.n, generator=g, device=dev)
                others = others[others != frame] if v.n > 1 else others
                if others.numel() < n_refs:  # tiny clips: repeat
                    others = others.repeat(n_refs // others.numel() + 1)
                batch["refs"] = others[:n_refs].to(v.frames.device)
            return batch

        return fn

    def _check_base(self, meta: dict, settings: NeRFSettings, channels: int, features: str, base: Path, proposal: bool = False) -> None:
        """A base model must be this method's, with this run's network, sampler and audio input."""
        if meta.get("method") != self.name:
            raise ValueError(f"base model {base} is a '{meta.get('method')}' checkpoint, not '{self.name}'")
        if bool(meta.get("proposal")) != proposal:
            raise ValueError(
                f"base model {base} was trained "
                + ("with" if meta.get("proposal") else "without")
                + " train.sampler=proposal and this run "
                + ("uses" if proposal else "does not")
                + "; pretrain a base model with the same train.sampler"
            )
        if meta.get("features") != features or meta.get("audio_channels") != channels:
            raise ValueError(
                f"base model {base} was trained on '{meta.get('features')}' audio features "
                f"({meta.get('audio_channels')} channels); this run uses features={features} ({channels}); "
                f"use a base model pretrained with the same features"
            )
        theirs = self.settings_cls.from_dict(meta["settings"], context=f"base model {base}").arch()
        diff = {k: (theirs.get(k), v) for k, v in settings.arch().items() if theirs.get(k) != v}
        if diff:
            raise ValueError(
                f"base model {base} has another network than this run (base vs run: "
                + ", ".join(f"{self.name}.{k}: {a} vs {b}" for k, (a, b) in diff.items())
                + f"); pretrain a base model with the same {self.name} settings"
            )

    def _train(
        self, identities: list[Identity], cfg: DictConfig, run_dir: Path, base: Path | None, phase: str, iters: int | None = None
    ) -> Path:
        """Train ``phase`` ("pretrain", "finetune" or a method's own stage) for ``iters`` steps
        (default ``train.pretrain_iters`` for a base model, else ``train.iters``) into ``run_dir``,
        from ``base``'s weights when given."""
        from aebench.device import resolve_device
        from aebench.engine.checkpoint import read_state
        from aebench.engine.trainer import FINAL, Trainer, seed_everything
        from aebench.engine.views import Views

        root = run_dir / CKPT_NAME
        if (root / FINAL / "state.json").exists():
            return root / FINAL
        device = resolve_device(cfg.device)
        train, settings = self.train_settings(cfg), self.settings(cfg)
        top = RootSettings.from_tree(cfg)
        features = top.features
        views = [Views.from_identity(i, features, device) for i in identities]
        channels = int(views[0].audio.shape[-1])
        offset = 0
        if base is not None:
            state = read_state(base)
            self._check_base(state["meta"], settings, channels, features, base, train.sampler == "proposal")
            offset = int(state["step"]) + int(state["meta"].get("step_offset", 0))
        seed_everything(top.seed)  # the same seed gives the same initial weights
        model = self.model_cls(settings, channels, train).to(device)
        model.phase, model.step_offset = phase, offset
        if iters is None:
            iters = train.pretrain_iters if phase == "pretrain" else train.iters
        model.smooth_start = self.smooth_start(train, train.pretrain_iters if phase == "pretrain" else train.iters)
        cameras = [(v.poses, v.intrinsics, *v.hw, v.near, v.far) for v in views]
        model.fit_statistics(views)
        if model.fast:  # the grids cover the training cameras' view volume (a fine-tune then loads the base's)
            model.set_scene_box(cameras_box(cameras))
        if train.compile:
            model.compile_networks()
        if train.sampler == "occupancy":  # a fresh grid over the training cameras (also on resume)
            model.occupancy = occupancy_grid(train, cameras)
        target = views[-1]
        refs = target.indices[fixed_references(target.n, settings.n_refs)] if settings.n_refs else []
        meta = {
            "method": self.name,
            "phase": phase,
            "settings": settings.to_dict(),
            "features": features,
            "audio_channels": channels,
            "audio_norm": target.norm.to_dict(),
            "step_offset": offset,
            "smooth_start": model.smooth_start,
            "refs": [int(r) for r in refs],
            "identity": target.name,
            "identities": [v.name for v in views],
            "clip": [int(target.indices[0]), int(target.indices[-1]) + 1],
            "proposal": model.proposal is not None,
        }
        trainer = Trainer(
            model,
            train,
            root,
            self.batch_fn(views, train, settings.n_refs, phase),
            device,
            top.seed,
            meta,
            init_from=base,
            desc=f"{self.name} {phase} " + (target.name if len(views) == 1 else f"{len(views)} identities"),
            reinit=lambda m: m.reinit_for_finetune(),
            step_offset=offset,
            reload_state=(lambda m: m.audio.audio_net) if base is not None and train.reload_audio_optimizer else None,
        )
        return trainer.fit(iters)

    def smooth_start(self, train: TrainSettings, iters: int) -> int | None:
        """The global step from which AudioAttNet smooths: ``train.smooth_from`` for a method with a
        base model (its fine-tune continues the base's step count), ``train.smooth_from_share`` of
        its iterations for one trained from scratch (AD-NeRF's 200k of 400k)."""
        if self.has_base_model:
            return None
        return round(train.smooth_from_share * iters)

    # ----- rendering -------------------------------------------------------------------
    def load(self, checkpoint: Path, cfg: DictConfig, device) -> tuple[NeRFModel, dict]:
        """The network of ``checkpoint`` (rebuilt from its stored settings) and its state.json."""
        from aebench.engine.checkpoint import load_checkpoint, read_state

        state = read_state(checkpoint)
        meta = state["meta"]
        if meta.get("method") != self.name:
            raise ValueError(f"{checkpoint} is a '{meta.get('method')}' checkpoint, not '{self.name}'")
        settings = self.settings_cls.from_dict(meta["settings"], context=f"checkpoint {checkpoint}")
        model = self.model_cls(settings, meta["audio_channels"], self.train_settings(cfg))
        model.proposal = None  # a checkpoint trained with the proposal sampler renders with it, any other without
        if meta.get("proposal"):
            model.use_proposal()
        model = model.to(device)
        load_checkpoint(checkpoint, model, map_location=device)
        if model.train_cfg.compile:
            model.compile_networks()
        model.phase, model.step_offset = meta.get("phase", "finetune"), int(meta.get("step_offset", 0))
        model.smooth_start = meta.get("smooth_start")
        model.eval()
        return model, state

    @staticmethod
    def driving_windows(meta: dict, audio: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, T, C) windows of a driving audio, normalised with the checkpoint's
        :class:`AudioNorm` (the training clip's statistics, as the references and training saw)."""
        from aebench.data.features import extract

        return AudioNorm.from_dict(meta["audio_norm"])(extract(meta["features"], audio, n_frames, fps))

    @torch.no_grad()
    def render(self, checkpoint: Path, identity: Identity, driving_audio: np.ndarray, cfg: DictConfig, out: Path) -> Path:
        from aebench.data.features import load_or_compute
        from aebench.device import resolve_device
        from aebench.engine.image_render import auto_chunk, render_image, write_render

        device = resolve_device(cfg.device)
        model, state = self.load(checkpoint, cfg, device)
        meta = state["meta"]
        fps = identity.fps
        n, audio = render_span(identity, driving_audio, model.train_cfg.render_frames)
        norm = AudioNorm.from_dict(meta["audio_norm"])
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        # as the last training step did (unless train.smooth_at_render is off: AD-NeRF's render_path)
        smooth = model.smoothing(max(int(state["step"]) - 1, 0)) and model.train_cfg.smooth_at_render
        windows = to_t(self.driving_windows(meta, audio, n, fps))
        pad = model.audio_pad(norm, windows[0])
        codes = model.audio.encode_all(windows, smooth, pad)
        torch.manual_seed(RootSettings.from_tree(cfg).seed)  # stochastic fields (DFRF's sampled slots) render reproducibly
        refs = None
        if meta["refs"]:
            ref_view = identity.select(meta["refs"])
            ref_codes = None
            if model.uses_ref_audio:  # encoded within the fine-tuning clip, as while training
                first, stop = meta.get("clip") or (0, int(identity.meta["n_frames"]))
                feats = to_t(norm(load_or_compute(identity, meta["features"])[first:stop]))
                ref_codes = model.audio(feats, to_t(np.asarray(meta["refs"]) - first), smooth, pad)
            refs = model.references(
                to_t(ref_view.frames()).float() / 255.0, to_t(ref_view.poses), to_t(identity.intrinsics.copy()), ref_codes
            )
        test = identity.split("test")
        poses = to_t(test.poses)
        marks = to_t(test.landmarks)
        at = lambda i: model.at_frame(refs, marks[int(order[i])], None)  # noqa: E731  (frame i's conditioning)
        order = driving_pose_indices(test.n_frames, n)
        intr = to_t(identity.intrinsics.copy())
        bg = to_t(identity.background()).float() / 255.0
        h, w = identity.size
        if model.train_cfg.render_sampler == "occupancy" and model.proposal is None:  # the union (no decay) over the driving audio's codes
            model.occupancy = occupancy_grid(model.train_cfg, [(poses, intr, h, w, identity.near, identity.far)], decay=1.0)
            g = torch.Generator(device=device).manual_seed(0)
            for i in sorted({*range(0, n, RENDER_GRID_EVERY), n - 1}):
                model.occupancy.update(model.density_fn(codes[i], at(i)), g)

        def frames():
            chunk = model.train_cfg.chunk
            for i in range(n):
                fn = model.render_fn(codes[i], at(i), identity.near, identity.far)
                if chunk == 0:  # from free memory, measured on the first frame
                    chunk = auto_chunk(fn, h, w, intr, poses[int(order[i])], bg)
                yield render_image(fn, h, w, intr, poses[int(order[i])], bg, chunk)

        from aebench.engine.precision import precision

        with precision(model.train_cfg.precision, device):
            return write_render(frames(), n, Path(out), fps, audio, identity.audio_rate, desc=f"{self.name} render")
