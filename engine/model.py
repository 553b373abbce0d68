"""The network half of every NeRF method: :class:`NeRFModel` (the audio encoder, the position
encodings, the samplers' networks and the hooks a method fills in: its field, references, ray
groups, extra losses) and its training step; :mod:`aebench.engine.method` trains, checkpoints and
renders it.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.data.features import AudioNorm
from aebench.engine.audio import ATT_LR_MULT, AudioEncoder
from aebench.engine.encoding import PositionalEncoding
from aebench.engine.mlp import NeRFMLP
from aebench.engine.trainer import global_step
from aebench.engine.occupancy import EMA_DECAY, OccupancyGrid
from aebench.engine.proposal import ProposalField
from aebench.engine.volume import Field, render_rays
from aebench.engine.settings import NeRFSettings
from aebench.settings import TrainSettings

OCC_FULL_UPDATES = 4  # the grid's first updates visit every cell, later ones a random quarter (as nerfacc's warm-up)


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

    def at_frame(self, refs: Any, landmarks: Tensor | None, index: int | None, generator: torch.Generator | None = None) -> Any:
        """What :meth:`field` receives as ``refs`` for one frame: ``refs`` itself (the default), or
        for a method conditioned on the frame (ER-NeRF's eye and individual code) refs completed
        from its (68, 2) ``landmarks`` and its training-frame ``index`` (None when rendering)."""
        return refs

    def fit_statistics(self, views: list) -> None:
        """Statistics of the training :class:`~aebench.engine.views.Views` the network keeps in its
        state (ER-NeRF's open-eye aspect ratio); called before training."""

    def image_loss(self, out: dict, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss on the rendered rays: the MSE of every level's colour (ER-NeRF weights it per ray)."""
        return sum(F.mse_loss(o["rgb"], batch["rgb"]) for o in out.values()), {}

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
        frame = batch["frame_index"]
        refs = self.at_frame(refs, views.landmarks[frame] if views.landmarks is not None else None, frame, g)
        grid = self.occupancy
        if grid is not None and (grid.updates == 0 or step % self.train_cfg.occ_every == 0):
            grid.update(self.density_fn(code, refs), g, fraction=1.0 if grid.updates < OCC_FULL_UPDATES else 0.25)
        groups = self.ray_groups(batch["label"], g)
        out = self.render(
            code, refs, batch["rays_o"], batch["rays_d"], batch["bg"], views.near, views.far, groups, self.train_cfg.perturb, g
        )
        target = batch["rgb"]
        l_prop = out["fine"].pop("proposal_loss", None) if "fine" in out else None
        l_p, image_stats = self.image_loss(out, batch, step)
        extra, stats = self.extra_loss(out, groups)
        stats = {**image_stats, **stats}
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
