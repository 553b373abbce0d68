"""Typed settings: a config section as a frozen dataclass, validated when it is read.

A method describes its section of the config (``cfg.<method>``) as a subclass of
:class:`Settings` (the NeRF methods through :class:`aebench.aenerf.engine.settings.NeRFSettings`);
the shared training/rendering section (``cfg.train``) is :class:`TrainSettings`, which the
protocol runner reads too (which settings act only after fine-tuning). Values live in the YAML files (``aebench/configs/sections/``, with
their per-scale overlays); these classes give each key its type and its meaning (one
docstring per field) and are what checkpoints store (``to_dict``) and rebuild networks from
(``from_dict``). Reading a section whose keys differ from the fields, or whose values have
another type, is a :class:`SettingsError` naming the keys.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

S = TypeVar("S", bound="Settings")


class SettingsError(ValueError):
    """A config section does not match its settings class."""


def _coerce(cls_name: str, name: str, kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"{cls_name}.{name} takes a list, got {value!r}")
        (item,) = typing.get_args(kind) or (Any,)
        return [_coerce(cls_name, name, item, v) for v in value]
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{cls_name}.{name} takes true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise SettingsError(f"{cls_name}.{name} takes an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{cls_name}.{name} takes a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(f"{cls_name}.{name} takes a string, got {value!r}")
        return value
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of the typed sections; see the module docstring."""

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any], where: str = "") -> S:
        """Validate ``data`` (a plain mapping or an OmegaConf section) against the fields."""
        try:
            from omegaconf import DictConfig, OmegaConf

            if isinstance(data, DictConfig):
                data = OmegaConf.to_container(data, resolve=True)
        except ImportError:  # pragma: no cover
            pass
        where = where or cls.__name__
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        extra = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if extra or missing:
            parts = ([f"unknown {', '.join(extra)}"] if extra else []) + ([f"missing {', '.join(missing)}"] if missing else [])
            raise SettingsError(f"{where} does not match {cls.__name__} ({'; '.join(parts)}); valid keys: {', '.join(names)}")
        return cls(**{n: _coerce(cls.__name__, n, hints[n], data[n]) for n in names})

    from_config = from_dict

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def arch(self) -> dict[str, Any]:
        """The fields that shape the network (all but those marked ``metadata={"arch": False}``):
        a base model and its fine-tune must agree on these."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("arch", True)}

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)


def loss_only() -> dict:
    """Field metadata of a setting that changes training but not the network's shape."""
    return {"arch": False}


def render_only() -> dict:
    """Field metadata of a ``cfg.train`` setting that acts only when rendering (a fine-tuned
    model is shared by cells that differ only in these)."""
    return {"render": True}


@dataclasses.dataclass(frozen=True)
class TrainSettings(Settings):
    """``cfg.train``: training and rendering conditions shared by every row of a protocol."""

    preset: str
    """``shared``: these values for every method; ``official``: each method's published values
    (``aebench/configs/presets/official.yaml``) replace them (resolved in the config)."""
    iters: int
    """Fine-tuning iterations (or from-scratch iterations for methods without a base model)."""
    pretrain_iters: int
    """Base-model iterations."""
    lr: float
    """Adam learning rate."""
    lr_decay_rate: float
    """Exponential decay: lr * rate ** (global step / lr_decay_steps)."""
    lr_decay_steps: int
    """Steps over which the lr decays by ``lr_decay_rate``; the global step continues from a base model."""
    schedule: str
    """Step bookkeeping: ``aebench``, local step k of a run uses lr(g + k) and smooths from global step
    g + k, g the steps before it; ``official``, as the official loops count: the lr is set after each
    step (step k uses the lr of step k - 1, a run's first step the undecayed lr), and a fine-tune's
    first global step repeats the base's last (:meth:`aebench.aenerf.engine.trainer.Trainer.set_lr`)."""
    batch_rays: int
    """Rays per iteration, all from one target frame."""
    face_fraction: float
    """Share of a batch drawn inside the face box (bounding box of the head labels 1, 2); the rest uniform."""
    face_rect: str
    """``box``: the face share uniform in the face box, the rest uniform over the image, with replacement
    (aebench); ``official``: AD-NeRF's and DFRF's draw, rows compared with the box's x range and columns with
    its y range (a transposed rectangle), both shares without replacement, the rest outside the rectangle
    (DFRF run_nerf_deform.py 999-1021, AD-NeRF run_nerf.py 845-866)."""
    sampler: str
    """Training: ``hierarchical``, every stratified and importance sample is evaluated (NeRF);
    ``occupancy``, the same samples but only those in occupied cells of an occupancy grid
    (:mod:`aebench.aenerf.engine.occupancy`); ``proposal``, a small density-only network on the
    stratified samples places ``n_fine`` samples, the only ones the method evaluates (mip-NeRF 360's
    proposal sampler, :mod:`aebench.aenerf.engine.proposal`; the coarse networks are not trained, and
    the checkpoint renders with it: ``render_sampler`` occupancy then skips the samples it bounds as
    empty and stops rays early, hierarchical evaluates every proposed sample)."""
    render_sampler: str = dataclasses.field(metadata=render_only())
    """Rendering: ``hierarchical`` or ``occupancy`` (only occupied samples, and a ray stops once its
    transmittance is below ``stop_eps``). Either renders any checkpoint."""
    occ_resolution: int
    """Occupancy-grid cells per axis over the cameras' view volume."""
    occ_threshold: float
    """A cell is empty while its density gives a coarse sample less opacity than this (nerfacc's occ_thre)."""
    occ_every: int
    """Training steps between occupancy-grid updates (nerfacc's every_n_step)."""
    stop_eps: float = dataclasses.field(metadata=render_only())
    """Early ray termination when rendering with the occupancy sampler: transmittance below which a ray stops."""
    n_coarse: int
    """Stratified samples per ray (training and rendering)."""
    n_fine: int
    """Extra hierarchical samples per ray (0 = coarse only)."""
    perturb: bool
    """Jitter stratified samples while training."""
    smooth_from: int
    """Global step from which AudioAttNet smooths the audio codes (nosmo_iters)."""
    smooth_window: int
    """Frames AudioAttNet smooths over (smo_size)."""
    smooth_from_share: float
    """For a method trained from scratch (no base model): AudioAttNet smooths from this share of its
    iterations on (AD-NeRF: nosmo_iters 200k of N_iters 400k = 0.5); ``smooth_from`` counts global steps
    from a base model's start."""
    smooth_at_render: bool = dataclasses.field(metadata=render_only())
    """Render with smoothed codes once training smoothed (DFRF); false renders AudioNet's codes only, as
    AD-NeRF's ``render_path`` does (``auds_val = AudNet(auds)``, run_nerf.py 731)."""
    audio_pad: str
    """What AudioAttNet's window holds beyond the clip's ends: ``normalised`` zero windows (the clip mean
    in raw units; aebench) or ``raw`` zero windows (the official zeros of raw DeepSpeech windows)."""
    reload_audio_optimizer: bool
    """Fine-tuning reloads the base model's Adam state of AudioNet, as DFRF (run_nerf_deform.py 335,
    788-789); the other parameters' state starts fresh (AudioAttNet's reload is lost to a key typo there)."""
    chunk: int = dataclasses.field(metadata=render_only())
    """Rays per forward pass when rendering images; 0 = from the free memory (CUDA; 4096 on a CPU)."""
    ckpt_every: int
    """Checkpoint every N iterations (and at the end)."""
    keep_ckpts: int
    """Intermediate checkpoints kept."""
    log_every: int
    """Progress-bar / log.txt refresh interval."""
    grad_clip: float
    """Clip the gradient norm (0 = off)."""
    opacity_entropy: float
    """Weight of a regulariser that pushes each ray's field opacity (``acc``, the composited weights
    without the background's) to 0 or 1: the mean binary entropy in bits of the last pass's opacity,
    clamped to [1e-5, 1 - 1e-5], as ER-NeRF's and RAD-NeRF's ``train_step`` add it at 1e-4
    (Fictionarry/ER-NeRF nerf_triplane/utils.py, "entropy on weights_sum"). 0 = off (the papers'
    methods). An opaque field is what lets the occupancy sampler skip samples and stop rays early."""
    precision: str
    """``fp32`` | ``tf32`` | ``bf16`` (the last two on CUDA only): see :mod:`aebench.aenerf.engine.precision`."""
    compile: bool
    """``torch.compile`` the NeRF MLPs (training and rendering; the first steps pay the compile time)."""
    render_samples: list[int] = dataclasses.field(metadata=render_only())
    """Rendering: [n_coarse, n_fine] when they differ from training's (DFRF's test config: [32, 64]); [] = training's."""
    render_frames: int = dataclasses.field(metadata=render_only())
    """Cap on rendered frames (0 = one per 1/fps of the driving audio)."""

    @classmethod
    def render_keys(cls) -> tuple[str, ...]:
        """The settings that act only when rendering (``render_only()``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("render"))
