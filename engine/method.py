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

from abc import ABCMeta, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from aebench.data import Identity
from aebench.data.features import AudioNorm
from aebench.method_api import Method, driving_pose_indices, render_span
from aebench.engine.audio import ATT_LR_MULT, AudioEncoder
from aebench.engine.encoding import PositionalEncoding
from aebench.engine.mlp import NeRFMLP
from aebench.engine.trainer import global_step
from aebench.engine.occupancy import EMA_DECAY, OccupancyGrid, cameras_box
from aebench.engine.proposal import ProposalField
from aebench.engine.volume import Field, render_rays
from aebench.engine.settings import NeRFSettings
from aebench.settings import RootSettings, TrainSettings

CKPT_NAME = "checkpoint"
OCC_FULL_UPDATES = 4  # the grid's first updates visit every cell, later ones a random quarter (as nerfacc's warm-up)
RENDER_GRID_EVERY = 10  # a render's grid holds the densities of every 10th frame's audio code (and the last's)


class NeRFModel(nn.Module, metaclass=ABCMeta):
    """A NeRF method's network: audio encoder, positional encodings, and the hooks below.

    ``settings`` is the method's :class:`NeRFSettings` subclass, ``train`` the shared
    :class:`TrainSettings`. ``phase`` ("pretrain" or "finetune") and ``step_offset`` (global
    step at the start of this training) are set by :class:`NeRFMethod`.
    """

    #: True when the network is conditioned on reference frames (n_refs must then be at least 1)
    uses_references: ClassVar[bool] = False
    #: True when the field needs the references' audio codes (AE-NeRF), not only their images
    uses_ref_audio: ClassVar[bool] = False
    #: composited outputs besides rgb and their background value (AE-NeRF's parsing masks)
    mask_backgrounds: ClassVar[dict[str, float]] = {}

    def __init__(self, settings: NeRFSettings, audio_channels: int, train: TrainSettings):
        super().__init__()
        self.settings, self.train_cfg = settings, train
        self.audio_channels = int(audio_channels)
        self.phase, self.step_offset = "finetune", 0
        #: global step from which AudioAttNet smooths (None: ``train.smooth_from``; set by NeRFMethod)
        self.smooth_start: int | None = None
        self.pe_x, self.pe_d = PositionalEncoding(settings.pe_x), PositionalEncoding(settings.pe_d)
        #: the NeRF MLP's position input: gamma(x) (``frequency``) or a grid encoding
        self.pos: nn.Module = position_encoding(settings) or self.pe_x
        self.audio = AudioEncoder(audio_channels, settings.audio_dim, train.smooth_window, settings.att_dims)
        #: the empty-space grid of ``train.sampler`` / ``train.render_sampler`` = occupancy (set by NeRFMethod)
        self.occupancy: OccupancyGrid | None = None
        #: ``train.sampler=proposal``: the density-only network that places the field's samples
        self.proposal: ProposalField | None = None
        if train.sampler == "proposal":
            self.use_proposal()

    def use_proposal(self) -> None:
        """Give the model its proposal network (:mod:`aebench.engine.proposal`), drawn from
        a forked random stream: the method's own networks get the same initial weights as without it."""
        with torch.random.fork_rng(devices=[]):
            self.proposal = ProposalField(self.settings.pe_x)

    @property
    def fast(self) -> bool:
        """True with a grid encoding (``field.encoding`` hashgrid or triplane)."""
        return self.settings.field.encoding != "frequency"

    def mlp_size(self) -> tuple[int, int]:
        """(width, depth) of the NeRF MLPs: the method's, or ``field.mlp`` with a grid encoding."""
        s = self.settings
        return (s.field.mlp[0], s.field.mlp[1]) if self.fast else (s.width, s.depth)

    def set_scene_box(self, box: Tensor) -> None:
        """The (2, 3) box a grid encoding covers (a persistent buffer: checkpoints keep it)."""
        if self.fast:
            self.pos.set_box(box)

    # ----- hooks -----------------------------------------------------------------------
    def references(self, images: Tensor, c2w: Tensor, intrinsics: Tensor, codes: Tensor | None) -> Any:
        """Per-reference-set conditioning from (L, H, W, 3) images, (L, 4, 4) poses, (3,)
        intrinsics and, when :attr:`uses_ref_audio`, (L, A) audio codes."""
        return None

    @abstractmethod
    def field(self, code: Tensor, refs: Any, groups: Any) -> Field:
        """The field (see :mod:`aebench.engine.volume`) for audio code ``code`` (A,): every method
        implements it."""

    def ray_groups(self, labels: Tensor | None, generator: torch.Generator | None) -> Any:
        """Per-ray routing for a batch with mask ``labels`` (N,); ``labels`` None at inference."""
        return None

    def extra_loss(self, out: dict, groups: Any) -> tuple[Tensor | float, dict[str, float]]:
        """Loss terms besides the photometric one, and their stats."""
        return 0.0, {}

    def reinit_for_finetune(self) -> None:
        """Called once after loading the base model's weights into a new fine-tune."""

    def compile_networks(self) -> None:
        """``train.compile``: ``torch.compile`` every NeRF MLP in place (state-dict keys unchanged;
        dynamic shapes, as the occupancy sampler's packed batches vary in size)."""
        for m in self.modules():
            if isinstance(m, NeRFMLP):
                m.compile(dynamic=True)

    # ----- shared ----------------------------------------------------------------------
    def smoothing(self, local_step: int) -> bool:
        start = self.train_cfg.smooth_from if self.smooth_start is None else self.smooth_start
        return self.global_step(local_step) >= start

    def audio_pad(self, norm: AudioNorm | None, like: Tensor) -> Tensor | None:
        """The window AudioAttNet sees beyond a clip's ends (``train.audio_pad``): None for zero
        normalised windows, else the normalised value of a zero raw window, shaped as ``like``'s (T, C)."""
        if self.train_cfg.audio_pad != "raw" or norm is None:
            return None
        return like.new_tensor(norm(np.zeros((1,) + tuple(like.shape[1:]), dtype=np.float32))[0])

    def global_step(self, local_step: int) -> int:
        """The global step of this run's ``local_step`` under ``train.schedule``
        (:func:`~aebench.engine.trainer.global_step`)."""
        return global_step(local_step, self.step_offset, self.train_cfg.schedule)

    def param_groups(self) -> list[dict]:
        """Adam's groups: the networks, AudioNet (its own group: DFRF's separate optimizer, whose
        state a fine-tune may reload) and AudioAttNet (5x the lr)."""
        att, aud = list(self.audio.att_net.parameters()), list(self.audio.audio_net.parameters())
        grid = list(self.pos.parameters()) if self.fast else []
        ids = {id(p) for p in att + aud + grid}
        groups = [
            {"params": [p for p in self.parameters() if id(p) not in ids]},
            {"params": aud, "name": "audio_net"},
            {"params": att, "lr_mult": ATT_LR_MULT, "name": "att_net"},
        ]
        if grid:  # the hash tables learn at Instant-NGP's / ER-NeRF's larger lr
            groups.append({"params": grid, "lr_mult": self.settings.field.lr_mult, "name": "grid"})
        return groups

    def render(
        self,
        code: Tensor,
        refs: Any,
        rays_o: Tensor,
        rays_d: Tensor,
        bg: Tensor,
        near: float,
        far: float,
        groups: Any,
        perturb: bool,
        generator: torch.Generator | None = None,
        stop_eps: float = 0.0,
        samples: tuple[int, int] | None = None,
    ) -> dict:
        """Render rays (see :func:`~aebench.engine.volume.render_rays`) with ``samples``
        (n_coarse, n_fine), training's by default."""
        tc = self.train_cfg
        n_coarse, n_fine = samples or (tc.n_coarse, tc.n_fine)
        return render_rays(
            self.field(code, refs, groups),
            rays_o,
            rays_d,
            near,
            far,
            bg,
            n_coarse,
            n_fine,
            perturb,
            generator,
            self.mask_backgrounds,
            self.occupancy,
            stop_eps,
            self.proposal,
        )

    def render_fn(self, code: Tensor, refs: Any, near: float, far: float):
        """``fn(rays_o, rays_d, bg) -> rgb`` (N, 3) for inference (early ray termination with the grid;
        ``train.render_samples`` when set)."""
        skipping = self.occupancy is not None or (self.proposal is not None and self.train_cfg.render_sampler == "occupancy")
        stop = self.train_cfg.stop_eps if skipping else 0.0
        samples = tuple(self.train_cfg.render_samples) or None

        def fn(rays_o, rays_d, bg):
            out = self.render(
                code, refs, rays_o, rays_d, bg, near, far, self.ray_groups(None, None), perturb=False, stop_eps=stop, samples=samples
            )
            return (out["fine"] if "fine" in out else out["coarse"])["rgb"]

        return fn

    def density_fn(self, code: Tensor, refs: Any):
        """``fn(points (P, 3)) -> (P,)`` densities of the field that renders the image (the fine
        level when there is one) under audio code ``code`` and references ``refs``; the
        occupancy grid is updated from it."""
        field = self.field(code, refs, None)
        level = "fine" if self.train_cfg.n_fine > 0 else "coarse"

        def fn(points: Tensor) -> Tensor:
            dirs = torch.zeros_like(points)
            dirs[:, 2] = 1.0  # density does not depend on the view direction
            return field(points[:, None], dirs, level)["sigma"][:, 0]

        return fn

    def training_step(self, batch: dict, step: int) -> tuple[Tensor, dict[str, float]]:
        views, g = batch["views"], batch.get("generator")
        smooth = self.smoothing(step)
        pad = self.audio_pad(views.norm, views.audio[0])
        code = self.audio(views.audio, torch.tensor([batch["frame_index"]]), smooth, pad)[0]
        refs = None
        if batch.get("refs") is not None:
            idx = batch["refs"]
            codes = self.audio(views.audio, idx, smooth, pad) if self.uses_ref_audio else None
            refs = self.references(views.frames[idx].float() / 255.0, views.poses[idx], views.intrinsics, codes)
        grid = self.occupancy
        if grid is not None and (grid.updates == 0 or step % self.train_cfg.occ_every == 0):
            grid.update(self.density_fn(code, refs), g, fraction=1.0 if grid.updates < OCC_FULL_UPDATES else 0.25)
        groups = self.ray_groups(batch["label"], g)
        out = self.render(
            code, refs, batch["rays_o"], batch["rays_d"], batch["bg"], views.near, views.far, groups, self.train_cfg.perturb, g
        )
        target = batch["rgb"]
        l_prop = out["fine"].pop("proposal_loss", None) if "fine" in out else None
        l_p = sum(F.mse_loss(o["rgb"], target) for o in out.values())
        extra, stats = self.extra_loss(out, groups)
        if l_prop is not None:  # the proposal learns only from it (the fine weights are detached)
            extra = extra + l_prop
            stats = {**stats, "l_prop": l_prop.detach()}
        last = out["fine"] if "fine" in out else out["coarse"]
        mse = F.mse_loss(last["rgb"].detach(), target)
        w_ent = self.train_cfg.opacity_entropy
        if w_ent > 0:
            l_ent = opacity_entropy(last["acc"])
            extra = extra + w_ent * l_ent
            stats = {**stats, "l_ent": l_ent.detach()}
        return l_p + extra, {"l_p": l_p.detach(), "psnr": -10.0 * torch.log10(mse), **stats}


def opacity_entropy(acc: Tensor, eps: float = 1e-5) -> Tensor:
    """Mean binary entropy in bits of ray opacities ``acc`` (N,) in [0, 1], clamped to [eps, 1 - eps]:
    0 where every ray is empty or opaque, 1 where all are half transparent (``train.opacity_entropy``)."""
    a = acc.clamp(eps, 1.0 - eps)
    return -(a * torch.log2(a) + (1.0 - a) * torch.log2(1.0 - a)).mean()


def position_encoding(settings: NeRFSettings) -> nn.Module | None:
    """The grid encoding of ``settings.field`` (None for ``frequency``)."""
    from aebench.engine.grid_encoding import HashGrid, TriPlane

    field = settings.field
    if field.encoding == "hashgrid":
        return HashGrid(3, *field.hashgrid)
    if field.encoding == "triplane":
        return TriPlane(*field.triplane)
    return None


def occupancy_grid(train: TrainSettings, cameras: list[tuple], decay: float = EMA_DECAY) -> OccupancyGrid:
    """A grid over the view volume of ``cameras`` ((poses, intrinsics, h, w, near, far) each; the
    union of their boxes), with ``train``'s resolution and threshold at the coarse spacing."""
    return OccupancyGrid.for_cameras(cameras, train.occ_resolution, train.occ_threshold, train.n_coarse, decay)


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

    def batch_fn(self, views: list, train: TrainSettings, n_refs: int):
        """``batch_fn(step, generator)`` for the Trainer: one identity, one frame, its rays and
        (``n_refs`` > 0) as many other frames of the same clip as references."""
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

    def _train(self, identities: list[Identity], cfg: DictConfig, run_dir: Path, base: Path | None, phase: str) -> Path:
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
        iters = train.pretrain_iters if phase == "pretrain" else train.iters
        model.smooth_start = self.smooth_start(train, iters)
        cameras = [(v.poses, v.intrinsics, *v.hw, v.near, v.far) for v in views]
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
            self.batch_fn(views, train, settings.n_refs),
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
        order = driving_pose_indices(test.n_frames, n)
        intr = to_t(identity.intrinsics.copy())
        bg = to_t(identity.background()).float() / 255.0
        h, w = identity.size
        if model.train_cfg.render_sampler == "occupancy" and model.proposal is None:  # the union (no decay) over the driving audio's codes
            model.occupancy = occupancy_grid(model.train_cfg, [(poses, intr, h, w, identity.near, identity.far)], decay=1.0)
            g = torch.Generator(device=device).manual_seed(0)
            for i in sorted({*range(0, n, RENDER_GRID_EVERY), n - 1}):
                model.occupancy.update(model.density_fn(codes[i], refs), g)

        def frames():
            chunk = model.train_cfg.chunk
            for i in range(n):
                fn = model.render_fn(codes[i], refs, identity.near, identity.far)
                if chunk == 0:  # from free memory, measured on the first frame
                    chunk = auto_chunk(fn, h, w, intr, poses[int(order[i])], bg)
                yield render_image(fn, h, w, intr, poses[int(order[i])], bg, chunk)

        from aebench.engine.precision import precision

        with precision(model.train_cfg.precision, device):
            return write_render(frames(), n, Path(out), fps, audio, identity.audio_rate, desc=f"{self.name} render")
