"""Typed settings: every setting is declared once, as a field of a frozen dataclass.

A field holds the setting's type (its annotation), its default (:func:`setting`), what values
it takes (``choices``, ``low``/``high``, a ``pattern``) and its meaning (the attribute docstring
under it). The config tree (:mod:`aebench.config`) is composed from these classes: the root's
(:class:`RootSettings`), the shared sections' (:class:`TrainSettings`, :class:`RunFacts`, and
those other layers declare: the field encoding, data preparation, the launchers) and one per
registered method (its ``settings_cls``). The YAML files keep only what varies: per-scale
overlays, presets and protocols. Validation, the error for an unknown key and ``aebench config
show --explain KEY`` are generated from these declarations.

A section may be *composed* of a shared part (:func:`shared_part`): a NeRF method's settings
hold the ``field`` section's values, read from ``cfg.field`` (one setting switches every row of
a protocol) and stored with the method's settings in its checkpoints. Reading a section whose
keys differ from the fields, or whose values have another type or lie outside their range, is a
:class:`SettingsError` naming the key.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import re
import textwrap
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

S = TypeVar("S", bound="Settings")


class SettingsError(ValueError):
    """A config section does not match its settings class."""


#: a setting without a neutral value (:func:`setting`)
NOT_NEUTRAL = object()


def setting(
    default: Any,
    *,
    choices: tuple | None = None,
    low: float | None = None,
    high: float | None = None,
    pattern: str | None = None,
    describe: str | None = None,
    arch: bool = True,
    render: bool = False,
    neutral: Any = NOT_NEUTRAL,
) -> Any:
    """A setting's declaration: its default and what it accepts.

    ``choices``: the valid values; ``low``/``high``: the range (inclusive); ``pattern``: a regular
    expression a string must match, ``describe`` saying in words what it accepts. ``arch=False``
    marks a setting that changes training but not the network's shape (a base model and its
    fine-tune may differ in it); ``render=True`` one of ``cfg.train`` that acts only when
    rendering (a fine-tuned model is shared by cells that differ only in these).

    ``neutral``: the value at which the setting computes what the code computed before it existed
    (a switch that is off). A cell at that value leaves the setting out of its id
    (:func:`aebench.config.id_view`), so adding a setting orphans no stored cell. It is fixed
    for good, unlike the default: a default that later moves away from it re-keys the cells that
    use the new value, never reuses the old ones."""
    meta = {
        "choices": tuple(choices) if choices else None,
        "low": low,
        "high": high,
        "pattern": pattern,
        "describe": describe,
        "arch": arch,
        "render": render,
    }
    if neutral is not NOT_NEUTRAL:
        meta["neutral"] = neutral
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def group(cls: type[Settings]) -> Any:
    """A nested group of settings (``data.*`` under the root)."""
    return dataclasses.field(default_factory=cls, metadata={"arch": True})


def shared_part(cls: type[Settings], section: str) -> Any:
    """A part composed from the shared section ``section`` of the config (not a key of this
    section): one declaration, read by every section that holds it."""
    return dataclasses.field(default_factory=cls, metadata={"shared": section, "arch": True})


def _is_settings(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Settings)


def _coerce(path: str, kind: Any, value: Any) -> Any:
    """``value`` as ``kind``; a SettingsError naming ``path`` when it is not one."""
    origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"'{path}' takes a list, got {value!r}")
        (item,) = typing.get_args(kind) or (Any,)
        return [_coerce(path, item, v) for v in value]
    if origin is dict or kind is dict:
        if not isinstance(value, Mapping):
            raise SettingsError(f"'{path}' is a mapping; set {path}.NAME=VALUE")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"'{path}' takes true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"'{path}' takes a number, got {value!r}")
        if not float(value).is_integer():
            raise SettingsError(f"'{path}' takes a whole number, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"'{path}' takes a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(f"'{path}' takes a string, got {value!r}")
        return value
    return value


def _check(path: str, meta: Mapping, value: Any) -> None:
    """``value`` against the field's choices, range and pattern."""
    choices, low, high, pattern = (meta.get(k) for k in ("choices", "low", "high", "pattern"))
    if choices and value not in choices:
        raise SettingsError(f"'{path}' must be one of {', '.join(map(str, choices))}, got {value}")
    if low is not None and value < low:
        raise SettingsError(f"'{path}' must be at least {low}, got {value}")
    if high is not None and value > high:
        raise SettingsError(f"'{path}' must be at most {high}, got {value}")
    if pattern and not re.fullmatch(pattern, str(value)):
        raise SettingsError(f"'{path}' must be {meta.get('describe') or f'of the form {pattern}'}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of the typed sections; see the module docstring."""

    @classmethod
    def keys(cls) -> list[str]:
        """The section's own keys (its shared parts are another section's)."""
        return [f.name for f in dataclasses.fields(cls) if not f.metadata.get("shared")]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The section's default values (nested groups as mappings), as the config tree holds them."""
        values = cls().to_dict()
        return {k: values[k] for k in cls.keys()}

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any], where: str = "", context: str = "") -> S:
        """Validate ``data`` (a mapping or an OmegaConf section holding every field, its shared
        parts included: what :meth:`to_dict` wrote) against the declarations. ``where`` is the
        section's dotted path in the config (the errors name ``'where.key'``), ``context`` what
        was read (a checkpoint) when it is not the config."""
        try:
            return cls._build(cls.upgrade(dict(_plain(data))), where)
        except SettingsError as exc:
            raise SettingsError(f"{context}: {exc}" if context else str(exc)) from None

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` as written by an earlier version (a checkpoint's settings) in today's form;
        a class whose fields moved says how here."""
        return data

    @classmethod
    def _build(cls: type[S], data: Mapping[str, Any], where: str) -> S:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        names = [f.name for f in fields]
        extra = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if extra or missing:
            parts = ([f"unknown {', '.join(map(str, extra))}"] if extra else []) + ([f"missing {', '.join(missing)}"] if missing else [])
            label = f"'{where}'" if where else cls.__name__
            raise SettingsError(f"{label} does not match {cls.__name__} ({'; '.join(parts)}); valid keys: {', '.join(names)}")
        values = {}
        for f in fields:
            path = f"{where}.{f.name}" if where else f.name
            kind = hints[f.name]
            if _is_settings(kind):
                if not isinstance(data[f.name], Mapping):
                    raise SettingsError(f"'{path}' is a group of settings ({', '.join(kind.keys())})")
                values[f.name] = kind._build(data[f.name], f.metadata.get("shared") or path)
                continue
            value = _coerce(path, kind, data[f.name])
            _check(path, f.metadata, value)
            values[f.name] = value
        return cls(**values)

    @classmethod
    def from_tree(cls: type[S], cfg: Mapping[str, Any], name: str | None = None) -> S:
        """Section ``name`` of the config tree ``cfg`` (None: the root keys), its shared parts
        read from their sections."""
        tree = _plain(cfg)
        data = dict(tree[name]) if name else {k: tree[k] for k in cls.keys()}
        for f in dataclasses.fields(cls):
            shared = f.metadata.get("shared")
            if shared:
                data[f.name] = tree[shared]
        return cls.from_dict(data, where=name or "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def arch(self) -> dict[str, Any]:
        """The fields that shape the network (all but those declared ``arch=False``): a base
        model and its fine-tune must agree on these."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("arch", True):
                value = getattr(self, f.name)
                out[f.name] = value.arch() if isinstance(value, Settings) else value
        return out

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)


def _plain(data: Any) -> Any:
    """An OmegaConf node as plain containers (other values unchanged)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover
        return data
    if isinstance(data, (DictConfig, ListConfig)):
        return OmegaConf.to_container(data, resolve=True)
    return data


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal under it), subclasses' first."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (a frozen install): no docstrings
            continue
        body = tree.body[0].body
        for node, after in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def declaration(cls: type[Settings], key: str) -> tuple[dataclasses.Field, Any, type[Settings]]:
    """(field, type, declaring class) of ``key``, dotted through nested groups and parts."""
    head, _, rest = key.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if head not in fields:
        raise KeyError(key)
    kind = typing.get_type_hints(cls)[head]
    if rest:
        if not _is_settings(kind):
            raise KeyError(key)
        return declaration(kind, rest)
    return fields[head], kind, cls


def accepts(f: dataclasses.Field, kind: Any) -> str:
    """What a field accepts, in words (for ``config show --explain``)."""
    meta = f.metadata
    if meta.get("choices"):
        return "one of " + ", ".join(map(str, meta["choices"]))
    if meta.get("describe"):
        return str(meta["describe"])
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(kind)
    if words is None:
        origin = typing.get_origin(kind)
        words = "a list" if origin is list else "a mapping NAME=VALUE" if (origin is dict or kind is dict) else str(kind)
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        words += f" from {low} to {high}"
    elif low is not None:
        words += f", at least {low}"
    elif high is not None:
        words += f", at most {high}"
    return words


# ----------------------------------------------------------------------------- the foundation's sections
#: the scales a config is composed at (one overlay each in the YAML parts)
SCALES = ("smoke", "small", "paper")


@dataclasses.dataclass(frozen=True)
class DataSettings(Settings):
    """``cfg.data``: which prepared identities a run reads, and at what size."""

    root: str = setting("data/synth")
    """Folder of prepared identities."""
    size: int = setting(64, low=0, high=4096)
    """Working resolution in pixels: frames, masks, landmarks and intrinsics are resized on load (0 = the
    prepared size). Beyond 4096 px it is a typo (the paper works at 512)."""
    clip_seconds: float = setting(0.0, low=0.0)
    """Few-shot clip: the first S seconds of the training half (0 = the whole half)."""


@dataclasses.dataclass(frozen=True)
class RootSettings(Settings):
    """The root keys of the config; each section (a method's, ``train``, ``run``...) is its own class."""

    scale: str = setting("smoke", choices=SCALES)
    """``smoke`` | ``small`` | ``paper``: picks the per-scale overlays of every part of the config."""
    seed: int = setting(0, low=0, high=2**32 - 1)
    """Seed of every random draw of a cell (numpy's and torch's seeds are 32-bit)."""
    device: str = setting("auto", pattern=r"auto|cpu|cuda(:\d+)?|mps", describe="auto, cpu, cuda, cuda:N or mps")
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    threads: int = setting(0, low=0, high=1024)
    """Torch CPU threads of a cell (training, rendering, scoring); 0 = torch's default (the machine's cores).
    Numbers depend on it bit for bit: protocols with a committed reference pin it."""
    method: str = setting("aenerf")
    """The registered method a cell runs (``aebench ls methods``)."""
    features: str = setting("mfcc")
    """Audio feature extractor: ``mfcc`` (the offline default) or ``wav2vec2`` (the paper's; weights from the
    local store, ``aebench weights``)."""
    data: DataSettings = group(DataSettings)
    """Which prepared identities a run reads, and at what size."""
    weights: dict[str, Any] = setting({})
    """Explicit weight files, NAME=PATH (recorded with their sha256 and marked unofficial)."""


@dataclasses.dataclass(frozen=True)
class RunFacts(Settings):
    """``cfg.run``: per-cell facts the protocol runner sets (part of every cell's config, hence of its id)."""

    protocol: str = setting("")
    """Protocol name."""
    row: str = setting("")
    """Table row label (e.g. "w/o AAA")."""
    identity: str = setting("")
    """Target identity (fine-tuned and rendered)."""
    audio: str = setting("self")
    """Driving audio: ``self``, ``<identity>`` (its test-half audio) or a path (``shared:...`` = under
    ``$AEBENCH_SHARED/data``)."""
    base_identities: list[str] = setting([])
    """Identities the base model is trained on (methods with a base model)."""
    data_sha256: dict[str, Any] = setting({})
    """What the cell's data is, not where it lies: identity -> content hash of its prepared data (the target
    and the base identities; :func:`aebench.data.identity.content_sha256`)."""
    audio_sha256: str = setting("")
    """sha256 of the driving audio when it is a file or another identity ("" for self)."""


@dataclasses.dataclass(frozen=True)
class TrainSettings(Settings):
    """``cfg.train``: training and rendering conditions shared by every row of a protocol. Where the
    AE-NeRF paper is silent the defaults are DFRF's official ones (sstzal/DFRF NeRFs/run_nerf_deform.py
    argparse defaults); ``preset=official`` replaces them with each method's own published values."""

    preset: str = setting("shared", choices=("shared", "official"))
    """``shared``: these values for every method; ``official``: each method's published values
    (``aebench/configs/presets/official.yaml``) replace them (resolved in the config)."""
    iters: int = setting(200, low=0, high=10**8)
    """Fine-tuning iterations (or from-scratch iterations for methods without a base model)."""
    pretrain_iters: int = setting(400, low=0, high=10**8)
    """Base-model iterations."""
    lr: float = setting(5.0e-4, low=0.0)
    """Adam learning rate (the paper's; DFRF's lrate)."""
    adam_betas: list[float] = setting([0.9, 0.999], neutral=[0.9, 0.999])
    """Adam's (beta1, beta2) (NeRF's; ER-NeRF trains with (0, 0.99))."""
    lr_decay_rate: float = setting(0.1)
    """Exponential decay: lr * rate ** (global step / lr_decay_steps) (NeRF's and DFRF's schedule)."""
    lr_decay_steps: int = setting(750000)
    """Steps over which the lr decays by ``lr_decay_rate`` (DFRF: lrate_decay 500 x 1500); the global step
    continues from a base model."""
    schedule: str = setting("aebench", choices=("aebench", "official"))
    """Step bookkeeping: ``aebench``, local step k of a run uses lr(g + k) and smooths from global step
    g + k, g the steps before it; ``official``, as the official loops count: the lr is set after each
    step (step k uses the lr of step k - 1, a run's first step the undecayed lr), and a fine-tune's
    first global step repeats the base's last (:meth:`aebench.engine.trainer.Trainer.set_lr`)."""
    batch_rays: int = setting(850, low=1, high=2**20)
    """Rays per iteration, all from one target frame (DFRF's N_rand)."""
    face_fraction: float = setting(0.95, low=0.0, high=1.0)
    """Share of a batch drawn inside the face box (bounding box of the head labels 1, 2); the rest uniform
    (DFRF's sample_rate)."""
    face_rect: str = setting("box", choices=("box", "official"))
    """``box``: the face share uniform in the face box, the rest uniform over the image, with replacement
    (aebench); ``official``: AD-NeRF's and DFRF's draw, rows compared with the box's x range and columns with
    its y range (a transposed rectangle), both shares without replacement, the rest outside the rectangle
    (the lines of both: ``configs/presets/official.yaml``)."""
    sampler: str = setting("hierarchical", choices=("hierarchical", "occupancy", "proposal"))
    """Training: ``hierarchical``, every stratified and importance sample is evaluated (NeRF);
    ``occupancy``, the same samples but only those in occupied cells of an occupancy grid
    (:mod:`aebench.engine.occupancy`); ``proposal``, a small density-only network on the
    stratified samples places ``n_fine`` samples, the only ones the method evaluates (mip-NeRF 360's
    proposal sampler, :mod:`aebench.engine.proposal`; the coarse networks are not trained, and
    the checkpoint renders with it: ``render_sampler`` occupancy then skips the samples it bounds as
    empty and stops rays early, hierarchical evaluates every proposed sample)."""
    render_sampler: str = setting("occupancy", choices=("hierarchical", "occupancy"), render=True)
    """Rendering: ``hierarchical`` or ``occupancy`` (only occupied samples, and a ray stops once its
    transmittance is below ``stop_eps``). Either renders any checkpoint."""
    occ_resolution: int = setting(32, low=1)
    """Occupancy-grid cells per axis over the cameras' view volume."""
    occ_threshold: float = setting(0.01, low=0.0, high=0.99)
    """A cell is empty while its density gives a coarse sample less opacity than this (nerfacc's occ_thre)."""
    occ_every: int = setting(16, low=1)
    """Training steps between occupancy-grid updates (nerfacc's every_n_step)."""
    stop_eps: float = setting(1.0e-4, low=0.0, high=1.0, render=True)
    """Early ray termination when rendering with the occupancy sampler: transmittance below which a ray stops."""
    n_coarse: int = setting(64, low=2)
    """Stratified samples per ray, training and rendering (DFRF's N_samples)."""
    n_fine: int = setting(128, low=0)
    """Extra hierarchical samples per ray, 0 = coarse only (DFRF's N_importance)."""
    perturb: bool = setting(True)
    """Jitter stratified samples while training."""
    smooth_from: int = setting(100000)
    """Global step from which AudioAttNet smooths the audio codes (DFRF's nosmo_iters)."""
    smooth_window: int = setting(8, low=1)
    """Frames AudioAttNet smooths over (smo_size)."""
    smooth_from_share: float = setting(0.5)
    """For a method trained from scratch (no base model): AudioAttNet smooths from this share of its
    iterations on (AD-NeRF: nosmo_iters 200k of N_iters 400k = 0.5); ``smooth_from`` counts global steps
    from a base model's start."""
    smooth_at_render: bool = setting(True, render=True)
    """Render with smoothed codes once training smoothed (DFRF); false renders AudioNet's codes only, as
    AD-NeRF's ``render_path`` does (``auds_val = AudNet(auds)``; ``configs/presets/official.yaml``)."""
    audio_pad: str = setting("normalised", choices=("normalised", "raw"))
    """What AudioAttNet's window holds beyond the clip's ends: ``normalised`` zero windows (the clip mean
    in raw units; aebench) or ``raw`` zero windows (the official zeros of raw DeepSpeech windows)."""
    reload_audio_optimizer: bool = setting(False, neutral=False)
    """Fine-tuning reloads the base model's Adam state of AudioNet, as DFRF does; the other parameters'
    state starts fresh (DFRF's reload of AudioAttNet's is lost to a key typo; ``baselines/README.md``)."""
    chunk: int = setting(4096, low=0, render=True)
    """Rays per forward pass when rendering images; 0 = from the free memory (CUDA; 4096 on a CPU)."""
    ckpt_every: int = setting(1000, low=1)
    """Checkpoint every N iterations (and at the end)."""
    keep_ckpts: int = setting(2)
    """Intermediate checkpoints kept."""
    log_every: int = setting(50, low=1)
    """Progress-bar / log.txt refresh interval."""
    grad_clip: float = setting(0.0, neutral=0.0)
    """Clip the gradient norm (0 = off)."""
    opacity_entropy: float = setting(0.0, neutral=0.0)
    """Weight of a regulariser that pushes each ray's field opacity (``acc``, the composited weights
    without the background's) to 0 or 1: the mean binary entropy in bits of the last pass's opacity,
    clamped to [1e-5, 1 - 1e-5], as ER-NeRF's and RAD-NeRF's ``train_step`` add it at 1e-4
    (Fictionarry/ER-NeRF nerf_triplane/utils.py, "entropy on weights_sum"). 0 = off (the papers'
    methods). An opaque field is what lets the occupancy sampler skip samples and stop rays early."""
    precision: str = setting("fp32", choices=("fp32", "tf32", "bf16"))
    """``fp32`` | ``tf32`` | ``bf16`` (the last two on CUDA only): see :mod:`aebench.engine.precision`."""
    compile: bool = setting(False)
    """``torch.compile`` the NeRF MLPs (training and rendering; the first steps pay the compile time)."""
    render_samples: list[int] = setting([], render=True, neutral=[])
    """Rendering: [n_coarse, n_fine] when they differ from training's (DFRF's test config: [32, 64]); [] = training's."""
    render_frames: int = setting(0, low=0, render=True)
    """Cap on rendered frames (0 = one per 1/fps of the driving audio)."""

    @classmethod
    def render_keys(cls) -> tuple[str, ...]:
        """The settings that act only when rendering (declared ``render=True``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("render"))
