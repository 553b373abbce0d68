"""Configuration: YAML defaults, per-scale overlays and dotted ``key=value`` overrides.

The default tree is composed from ``aebench/configs/base.yaml`` (the root keys) and every
``aebench/configs/sections/<name>.yaml`` (mounted under ``<name>``). Each file has the shape::

    defaults: {...}          # every valid key of that part, with its default
    scales:                  # optional overlays, one per scale
      smoke: {...}
      small: {...}
      paper: {...}

Composition order: defaults -> overlay of the chosen ``scale`` -> ``extra`` (e.g. a
protocol's settings) -> with ``train.preset=official``, the method's published train values
(``configs/presets/official.yaml``) -> user overrides. Every key anywhere must exist in the defaults, so
a typo is an error naming the valid keys. A default of ``{}`` marks an open mapping (any
sub-key allowed, e.g. ``weights.syncnet=PATH``). A method of another installed package (entry point
of ``aebench.methods``) gets its section ``cfg.<name>`` as an open mapping, which the method
validates itself; only the entry points' names are read here, no plugin code is imported.

The fully resolved config dumps to YAML and hashes to a short id (:func:`config_hash`),
which identifies run cells.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONFIG_DIR = Path(__file__).parent / "configs"
#: the entry-point group through which other installed packages register methods
#: (``name = "package.module:Class"``): loaded by :mod:`aebench.harness.registry`; here only the
#: names are read (each plugin method's open config section)
METHOD_ENTRY_POINTS = "aebench.methods"
SCALES = ("smoke", "small", "paper")
#: sections that say where a protocol's jobs run (a batch system's resources), not what a cell
#: computes: every cell's config leaves them out (:func:`without_launcher_sections`), so they are in
#: no cell id and a cell finished on one partition is done on every other
LAUNCHER_SECTIONS = ("slurm",)


class ConfigError(ValueError):
    """An invalid override or config file; the message says what is valid."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice in one mapping is an error (plain
    YAML lets the last one win silently: two ``iters:`` lines would run the second)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: PyYAML's own error says so
                break
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (lines {first} and "
                    f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def strict_yaml(text: str):
    """``yaml.safe_load`` that refuses duplicate keys (see :class:`_UniqueKeyLoader`)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def _read_part(path: Path) -> tuple[dict, dict]:
    data = strict_yaml(path.read_text()) or {}
    unknown = set(data) - {"defaults", "scales"}
    if unknown:
        raise ConfigError(f"{path}: top-level keys must be 'defaults' and 'scales', got {sorted(unknown)}")
    scales = data.get("scales") or {}
    bad = set(scales) - set(SCALES)
    if bad:
        raise ConfigError(f"{path}: unknown scale(s) {sorted(bad)}; valid: {', '.join(SCALES)}")
    return data.get("defaults") or {}, scales


def _parts() -> list[tuple[str | None, Path]]:
    parts: list[tuple[str | None, Path]] = [(None, CONFIG_DIR / "base.yaml")]
    for path in sorted((CONFIG_DIR / "sections").glob("*.yaml")):
        parts.append((path.stem, path))
    return parts


def _plugin_sections() -> list[str]:
    """Names of the methods other installed packages register (their open config sections)."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=METHOD_ENTRY_POINTS)})


def default_tree(scale: str = "smoke") -> DictConfig:
    """Defaults with the overlay of ``scale`` applied (validated like any override)."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale '{scale}'; valid: {', '.join(SCALES)}")
    tree: dict[str, Any] = {}
    overlays: list[dict] = []
    for name, path in _parts():
        defaults, scales = _read_part(path)
        overlay = scales.get(scale) or {}
        if name is None:
            tree.update(defaults)
            overlays.append(overlay)
        else:
            if name in tree:
                raise ConfigError(f"section '{name}' ({path}) clashes with a root key")
            tree[name] = defaults
            overlays.append({name: overlay})
    for name in _plugin_sections():
        tree.setdefault(name, {})
    cfg = OmegaConf.create(tree)
    for overlay in overlays:
        _merge_checked(cfg, overlay, origin=f"scale '{scale}' overlay")
    cfg.scale = scale
    return cfg


def _is_open(node: Any) -> bool:
    return isinstance(node, DictConfig) and len(node) == 0


def _merge_checked(cfg: DictConfig, update: Mapping, origin: str, prefix: str = "") -> None:
    """Merge ``update`` into ``cfg`` in place, refusing keys absent from ``cfg``."""
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in cfg:
            valid = ", ".join(sorted(str(k) for k in cfg.keys()))
            where = f" under '{prefix[:-1]}'" if prefix else ""
            raise ConfigError(f"unknown config key '{path}' (from {origin}); valid keys{where}: {valid}")
        current = cfg[key]
        if isinstance(current, DictConfig) and not _is_open(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{path}' is a group of settings ({', '.join(map(str, current.keys()))}); "
                                  f"set one of its keys, e.g. {path}.{next(iter(current.keys()))}=...")
            _merge_checked(current, value, origin, prefix=f"{path}.")
        elif isinstance(current, DictConfig):  # open mapping
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{path}' is a mapping; set {path}.NAME=VALUE")
            for k, v in value.items():
                current[k] = v
        else:
            cfg[key] = _coerce(path, current, value)


def _coerce(path: str, current: Any, value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}' takes true or false, got {value!r}")
        return value
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(current, (int, float)) and not isinstance(value, (int, float)):
        raise ConfigError(f"'{path}' takes a number, got {value!r}")
    if isinstance(current, ListConfig) and not isinstance(value, list):
        value = [value]
    return value


def parse_overrides(args: Iterable[str]) -> dict:
    """Turn ``["a.b=1", "c=[x,y]"]`` into a nested dict, with values typed as YAML would."""
    flat: dict = {}
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"override '{arg}' is not of the form key=value")
        key, raw = arg.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{arg}' has an empty key")
        if "${" in raw:  # an interpolation would be resolved (or fail) later, silently or as a traceback
            raise ConfigError(f"override '{arg}': interpolations (${{...}}) are not accepted; write the value itself")
        try:
            value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
        except (yaml.YAMLError, OmegaConfBaseException) as exc:
            first = " ".join(str(exc).split("\n")[0].split())
            raise ConfigError(f"override '{arg}' is not a valid value ({first}); lists are written [a,b], "
                              f"strings with spaces or ': ' in quotes") from exc
        flat[key] = value
    return nest(flat, what="override")


def nest(flat: Mapping, what: str = "setting") -> dict:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``, the values kept as they are (a
    protocol's settings, a cell's facts: a path with ``#`` or ``: `` stays whole, never re-parsed)."""
    nested: dict = {}
    for key, value in flat.items():
        node = nested
        parts = str(key).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{what} '{key}' conflicts with another {what} of '{part}'")
        node[parts[-1]] = value
    return nested


def load_config(overrides: Sequence[str] = (), extra: Mapping | None = None, scale: str | None = None) -> DictConfig:
    """The fully resolved config.

    ``scale`` (or a ``scale=...`` override, which wins) picks the overlay; ``extra`` (a
    protocol's or method's settings, nested dict or dotted keys) applies before the overrides.
    """
    user = parse_overrides(overrides)
    extra = dict(extra or {})
    if any("." in str(k) for k in extra):
        extra = nest(extra)
    chosen = user.get("scale", extra.get("scale", scale or "smoke"))

    def compose(preset: Mapping | None) -> DictConfig:
        cfg = default_tree(str(chosen))
        _merge_checked(cfg, {k: v for k, v in extra.items() if k != "scale"}, origin="protocol/extra settings")
        if preset:  # a method's published values replace the protocol's shared ones; the user's still win
            _merge_checked(cfg, preset, origin=f"train.preset=official ({PRESETS_FILE.name})")
        _merge_checked(cfg, {k: v for k, v in user.items() if k != "scale"}, origin="command line")
        cfg.scale = str(chosen)
        return cfg

    cfg = compose(None)
    _check_ranges(cfg)
    preset = str(cfg.train.preset)
    if preset not in TRAIN_PRESETS:
        raise ConfigError(f"unknown train.preset '{preset}'; valid: {', '.join(TRAIN_PRESETS)}")
    if preset == "official":
        official = official_preset(str(cfg.method))
        if official:  # methods without training (external) have none
            cfg = compose(official)
    return cfg


#: dotted key -> smallest valid value (a user mistake like data.size=-5 is refused by name)
MINIMUM = {"seed": 0, "threads": 0, "data.size": 0, "data.clip_seconds": 0.0, "train.iters": 0, "train.pretrain_iters": 0,
           "train.lr": 0.0, "train.batch_rays": 1, "train.face_fraction": 0.0, "train.n_coarse": 2,
           "train.n_fine": 0, "train.chunk": 0, "train.ckpt_every": 1, "train.log_every": 1,
           "train.smooth_window": 1, "train.render_frames": 0,
           "slurm.gpus_per_job": 0, "slurm.cpus_per_job": 1, "slurm.mem_gb": 0.0, "slurm.time_min": 1, "slurm.poll_s": 0.1,
           "train.occ_resolution": 1, "train.occ_threshold": 0.0, "train.occ_every": 1, "train.stop_eps": 0.0}
MAXIMUM = {"train.face_fraction": 1.0, "train.occ_threshold": 0.99, "train.stop_eps": 1.0,
           "data.size": 4096,  # a working resolution beyond 4096 px is a typo (the paper works at 512)
           "seed": 2**32 - 1,  # numpy's and torch's seeds are 32-bit
           "threads": 1024, "train.iters": 10**8, "train.pretrain_iters": 10**8,
           "train.batch_rays": 2**20}  # beyond these a run cannot finish: a typo, refused before any work
#: dotted keys that take a whole number (2.7 iterations is a typo, not a setting)
WHOLE = ("seed", "threads", "data.size", "slurm.gpus_per_job", "slurm.cpus_per_job", "slurm.time_min")
#: ``device``: auto, cpu, cuda, cuda:N or mps (what torch.device accepts and a run can use)
DEVICE = r"^(auto|cpu|cuda(:\d+)?|mps)$"
#: dotted key -> its valid values
CHOICES = {"train.precision": ("fp32", "tf32", "bf16"), "train.sampler": ("hierarchical", "occupancy", "proposal"),
           "train.render_sampler": ("hierarchical", "occupancy"), "train.face_rect": ("box", "official"),
           "train.schedule": ("aebench", "official"),
           **{f"{m}.encoding": ("frequency", "hashgrid", "triplane") for m in ("field", "aenerf", "dfrf", "adnerf")},
           "train.audio_pad": ("normalised", "raw"),
           **{f"{m}.density": ("softplus", "relu") for m in ("aenerf", "dfrf", "adnerf")},
           "dfrf.slot_init": ("learned", "sampled"), "dfrf.slot_in_act": ("linear", "leaky_relu"),
           "dfrf.token": ("continuous", "official"), "dfrf.offset_penalty": ("mean", "depth_weighted"),
           "aenerf.aaa_init": ("identity", "random"), "ray.ship": ("auto", "always", "never")}


def _check_ranges(cfg: DictConfig) -> None:
    for key in WHOLE:
        v = OmegaConf.select(cfg, key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer()):
            what = "a whole number of pixels" if key == "data.size" else "a whole number"
            raise ConfigError(f"'{key}' takes {what}, got {v}")
    for key in (*MINIMUM, *MAXIMUM):
        v = OmegaConf.select(cfg, key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"'{key}' takes a number, got {v!r}")
    from aebench.settings import SettingsError, TrainSettings

    try:  # types of every train.* key (an integer where one is needed), before any work
        TrainSettings.from_dict(cfg.train, where="train")
    except SettingsError as exc:
        raise ConfigError(str(exc).replace("TrainSettings.", "train.")) from exc
    for key, low in MINIMUM.items():
        v = OmegaConf.select(cfg, key)
        if v is not None and v < low:
            raise ConfigError(f"'{key}' must be at least {low}, got {v}" + (" (0 = native size)" if key == "data.size" else ""))
    for key, high in MAXIMUM.items():
        v = OmegaConf.select(cfg, key)
        if v is not None and v > high:
            raise ConfigError(f"'{key}' must be at most {high}, got {v}")
    import re

    if not re.match(DEVICE, str(cfg.device)):
        raise ConfigError(f"'device' must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}")
    for key, valid in CHOICES.items():
        v = OmegaConf.select(cfg, key)
        if v is not None and v not in valid:
            raise ConfigError(f"'{key}' must be one of {', '.join(valid)}, got {v}")


#: train.preset values: the protocol's shared conditions, or each method's published ones
TRAIN_PRESETS = ("shared", "official")
PRESETS_FILE = CONFIG_DIR / "presets" / "official.yaml"


def official_preset(method: str) -> dict:
    """A method's published values (``configs/presets/official.yaml``): ``train.*`` and its own
    section's switches, as a nested dict; {} when it has none."""
    data = yaml.safe_load(PRESETS_FILE.read_text()) or {}
    return dict(data.get(method) or {})


def without_launcher_sections(cfg: DictConfig) -> DictConfig:
    """``cfg`` without the :data:`LAUNCHER_SECTIONS` (changed in place, and returned): what a cell's
    config holds, so that its id and its ``config.yaml`` do not depend on where its job ran."""
    for name in LAUNCHER_SECTIONS:
        cfg.pop(name, None)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    """Canonical YAML (sorted keys) of a resolved config."""
    return yaml.safe_dump(OmegaConf.to_container(cfg, resolve=True), sort_keys=True)


def config_hash(cfg: DictConfig | Mapping, length: int = 12) -> str:
    """Short stable hash of the resolved config; identifies a run cell."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    text = yaml.safe_dump(container, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def valid_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted leaf key of ``cfg`` (for help texts)."""
    keys: list[str] = []
    for k, v in cfg.items():
        path = f"{prefix}{k}"
        if isinstance(v, DictConfig) and not _is_open(v):
            keys.extend(valid_keys(v, f"{path}."))
        else:
            keys.append(path)
    return keys
