"""Configuration: the settings tree, per-scale overlays and dotted ``key=value`` overrides.

Every setting is declared once, as a field of a settings dataclass (:mod:`aebench.settings`):
its type, default, valid values and docstring. The default tree is composed from those
classes: the root keys (:class:`~aebench.settings.RootSettings`), the foundation's sections
(``train``, ``run``, ``prepare``), the sections other layers register (entry points
``aebench.sections``: the field encoding, the launchers) and one per registered method (its
``settings_cls``; :mod:`aebench.registry`). The YAML files keep only what varies::

    aebench/configs/base.yaml              scales: {smoke: {...}, small: {...}, paper: {...}}  (root keys)
    aebench/configs/sections/<name>.yaml   scales: {...}  (section <name>)
    aebench/configs/presets/official.yaml  each method's published values (train.preset=official)

Composition order: defaults -> overlay of the chosen ``scale`` -> ``extra`` (e.g. a
protocol's settings) -> with ``train.preset=official``, the method's published values -> user
overrides. Every key anywhere must be declared, so a typo is an error naming the valid keys;
the composed tree is then validated against the declarations (types, ranges, choices). A
setting of type ``dict`` is an open mapping (any sub-key, e.g. ``weights.syncnet=PATH``), as is
the section of a method that declares no settings class. :func:`resolve` also says where each
value was set (``aebench config show --explain KEY``).

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

from aebench.settings import SCALES, RootSettings, RunFacts, Settings, SettingsError, TrainSettings

CONFIG_DIR = Path(__file__).parent / "configs"
#: sections that say where a protocol's jobs run (a batch system's resources), not what a cell
#: computes: every cell's config leaves them out (:func:`without_launcher_sections`), so they are in
#: no cell id and a cell finished on one partition is done on every other
LAUNCHER_SECTIONS = ("slurm",)
#: where a value came from, for ``--explain``: dotted key -> origin
Origins = dict[str, str]


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
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (lines {first} and {key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def strict_yaml(text: str):
    """``yaml.safe_load`` that refuses duplicate keys (see :class:`_UniqueKeyLoader`)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def _read_part(path: Path) -> dict:
    """A part's per-scale overlays."""
    data = strict_yaml(path.read_text()) or {}
    if "defaults" in data:
        raise ConfigError(
            f"{path}: defaults are declared in the settings classes (aebench/settings.py), not in YAML; a part holds only 'scales'"
        )
    unknown = set(data) - {"scales"}
    if unknown:
        raise ConfigError(f"{path}: the only top-level key is 'scales', got {sorted(unknown)}")
    scales = data.get("scales") or {}
    bad = set(scales) - set(SCALES)
    if bad:
        raise ConfigError(f"{path}: unknown scale(s) {sorted(bad)}; valid: {', '.join(SCALES)}")
    return scales


def _parts() -> list[tuple[str | None, Path]]:
    parts: list[tuple[str | None, Path]] = [(None, CONFIG_DIR / "base.yaml")]
    for path in sorted((CONFIG_DIR / "sections").glob("*.yaml")):
        parts.append((path.stem, path))
    return parts


def section_classes() -> dict[str, type[Settings] | None]:
    """Every section of the tree: name -> its settings class (None: an open mapping)."""
    from aebench.data.prepare import PrepareSettings
    from aebench.registry import load_target, method_class, methods, sections

    found: dict[str, type[Settings] | None] = {"train": TrainSettings, "run": RunFacts, "prepare": PrepareSettings}
    for name, target in sections().items():
        found[name] = load_target(target)
    for name in methods():
        try:
            found[name] = method_class(name).settings_cls
        except KeyError:  # a plugin that cannot be imported: an open section (``aebench ls methods`` says why)
            found[name] = None
    return found


def default_tree(scale: str = "smoke", origins: Origins | None = None) -> DictConfig:
    """Defaults with the overlay of ``scale`` applied (validated like any override)."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale '{scale}'; valid: {', '.join(SCALES)}")
    classes = section_classes()
    tree: dict[str, Any] = RootSettings.defaults()
    for name, cls in classes.items():
        if name in tree:
            raise ConfigError(f"section '{name}' clashes with a root key")
        tree[name] = cls.defaults() if cls is not None else {}
    cfg = OmegaConf.create(tree)
    for name, path in _parts():
        overlay = _read_part(path).get(scale) or {}
        if name is not None and name not in classes:
            raise ConfigError(f"{path}: no section '{name}' is declared (sections: {', '.join(sorted(classes))})")
        rel = path.relative_to(CONFIG_DIR.parent.parent) if path.is_relative_to(CONFIG_DIR.parent.parent) else path
        _merge_checked(cfg, overlay if name is None else {name: overlay}, origin=f"scale '{scale}' overlay ({rel})", origins=origins)
    cfg.scale = scale
    return cfg


def _is_open(node: Any) -> bool:
    return isinstance(node, DictConfig) and len(node) == 0


def _merge_checked(cfg: DictConfig, update: Mapping, origin: str, prefix: str = "", origins: Origins | None = None) -> None:
    """Merge ``update`` into ``cfg`` in place, refusing keys absent from ``cfg``; ``origins``
    records where each value came from."""
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in cfg:
            valid = ", ".join(sorted(str(k) for k in cfg.keys()))
            where = f" under '{prefix[:-1]}'" if prefix else ""
            raise ConfigError(f"unknown config key '{path}' (from {origin}); valid keys{where}: {valid}")
        current = cfg[key]
        if isinstance(current, DictConfig) and not _is_open(current):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"'{path}' is a group of settings ({', '.join(map(str, current.keys()))}); "
                    f"set one of its keys, e.g. {path}.{next(iter(current.keys()))}=..."
                )
            _merge_checked(current, value, origin, prefix=f"{path}.", origins=origins)
            continue
        if isinstance(current, DictConfig):  # open mapping
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{path}' is a mapping; set {path}.NAME=VALUE")
            for k, v in value.items():
                current[k] = v
        else:
            cfg[key] = _coerce(path, current, value)
        if origins is not None:
            origins[path] = origin


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
            raise ConfigError(
                f"override '{arg}' is not a valid value ({first}); lists are written [a,b], strings with spaces or ': ' in quotes"
            ) from exc
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
    return resolve(overrides, extra, scale)[0]


def resolve(overrides: Sequence[str] = (), extra: Mapping | None = None, scale: str | None = None) -> tuple[DictConfig, Origins]:
    """:func:`load_config`, and where each value that is not its default was set."""
    user = parse_overrides(overrides)
    extra = dict(extra or {})
    if any("." in str(k) for k in extra):
        extra = nest(extra)
    chosen = user.get("scale", extra.get("scale", scale or "smoke"))

    def compose(preset: Mapping | None) -> tuple[DictConfig, Origins]:
        origins: Origins = {}
        cfg = default_tree(str(chosen), origins)
        _merge_checked(cfg, {k: v for k, v in extra.items() if k != "scale"}, origin="protocol/extra settings", origins=origins)
        if preset:  # a method's published values replace the protocol's shared ones; the user's still win
            _merge_checked(cfg, preset, origin=f"train.preset=official ({PRESETS_FILE.name})", origins=origins)
        _merge_checked(cfg, {k: v for k, v in user.items() if k != "scale"}, origin="command line", origins=origins)
        cfg.scale = str(chosen)
        if "scale" in user or "scale" in extra or scale:
            origins["scale"] = "command line" if "scale" in user else "protocol/extra settings" if "scale" in extra else "caller"
        return cfg, origins

    cfg, origins = compose(None)
    _validate(cfg)
    if cfg.train.preset == "official":
        official = official_preset(str(cfg.method))
        if official:  # methods without training (external) have none
            cfg, origins = compose(official)
            _validate(cfg)
    return cfg, origins


def _validate(cfg: DictConfig) -> None:
    """The composed tree against the declarations: types, ranges, choices, patterns."""
    try:
        RootSettings.from_tree(cfg)
        for name, cls in section_classes().items():
            if cls is not None:
                cls.from_tree(cfg, name)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


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


def explain(key: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """What ``key`` is (``aebench config show --explain KEY``): its declaration (class, what it
    accepts, default, docstring) and, for ``overrides``, its value and where that was set."""
    import dataclasses

    from aebench.settings import accepts, declaration, field_docs

    cfg, origins = resolve(overrides)
    classes = section_classes()
    head, _, rest = key.partition(".")
    if head in classes and rest:
        owner, sub = classes[head], rest
    elif head in RootSettings.keys():
        owner, sub = RootSettings, key
    else:
        raise ConfigError(f"unknown config key '{key}'; valid keys: {', '.join(valid_keys(cfg))}")
    value = OmegaConf.select(cfg, key, default=None)
    if owner is None:  # an open section (a method that declares no settings class)
        return {
            "key": key,
            "declared": f"an open section of method '{head}' (it validates its keys itself)",
            "accepts": "any value",
            "default": None,
            "value": value,
            "set_by": origins.get(key, "default"),
            "doc": "",
        }
    try:
        f, kind, cls = declaration(owner, sub)
    except KeyError:
        node = cfg.get(head) if owner is not RootSettings else cfg
        keys = valid_keys(node, f"{head}." if owner is not RootSettings else "") if isinstance(node, DictConfig) else []
        raise ConfigError(f"unknown config key '{key}'; valid keys: {', '.join(keys)}") from None
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(default, Settings):
        default = default.to_dict()
    return {
        "key": key,
        "declared": f"{cls.__module__}.{cls.__qualname__}.{f.name}",
        "accepts": accepts(f, kind),
        "default": default,
        "value": value,
        "set_by": origins.get(key, "default"),
        "doc": field_docs(cls).get(f.name, ""),
    }


def id_view(tree: Mapping) -> dict:
    """``tree`` (a resolved config as plain containers) without the settings at their declared
    neutral value (:func:`aebench.settings.setting`): what a cell id hashes, so a setting added
    with a neutral default leaves every stored id as it was."""
    import dataclasses

    def strip(node: Mapping, cls: type[Settings] | None) -> dict:
        out = dict(node)
        if cls is None:
            return out
        for f in dataclasses.fields(cls):
            if f.name not in out:
                continue
            if "neutral" in f.metadata and out[f.name] == f.metadata["neutral"]:
                del out[f.name]
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if isinstance(default, Settings) and isinstance(out[f.name], Mapping):
                out[f.name] = strip(out[f.name], type(default))
        return out

    classes = section_classes()
    out = strip(tree, RootSettings)
    for name, cls in classes.items():
        if isinstance(out.get(name), Mapping):
            out[name] = strip(out[name], cls)
    return out
