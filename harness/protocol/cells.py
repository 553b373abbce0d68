"""Cell expansion: rows x targets x clip length x iterations x driving audio x seed.

Each cell's fully resolved config (protocol settings, the row's switches, the grid values,
the ``run.*`` facts and the user's overrides) hashes into the cell id (DESIGN.md, run store).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from aebench.config import config_hash, id_view, load_config, without_launcher_sections
from aebench.data import list_identities
from aebench.harness.protocol.records import grid_key
from aebench.harness.protocol.spec import Protocol, ProtocolError
from aebench.settings import TrainSettings


@dataclass
class Cell:
    protocol: str
    row: str
    method: str
    identity: str
    clip_seconds: float
    iters: int
    audio: str
    seed: int
    cfg: DictConfig
    cell_id: str
    metrics: list[str]

    @property
    def label(self) -> str:
        return cell_label(self.row, self.identity, self.clip_seconds, self.iters, self.audio, self.seed)

    @property
    def key(self) -> str:
        """Stable human-readable key (row, identity, grid values), used by regression references."""
        return grid_key(self.row, self.identity, self.clip_seconds, self.iters, self.audio, self.seed)


def cell_label(row: str, identity: str, clip_seconds: float, iters: int, audio: str, seed: int) -> str:
    """How a cell is named to a person (a :class:`Cell`, or a cell folder read from its config)."""
    clip = f"{float(clip_seconds):g}s" if clip_seconds else "half"
    return f"{row} | {identity} | clip {clip} | {iters} it | audio {audio} | seed {seed}"


#: config keys in which repeats of one table entry may differ: the seed, and the identity (with
#: its base identities and where its data lay) over which an entry averages
REPEAT_KEYS = ("seed", "run.identity", "run.base_identities", "run.data_sha256", "data.root")
#: the config section launcher=ray reads from the cells it runs (``ray.ship``): how a cell reaches a
#: node, never what it computes, so it is in no cell id (a cell shipped to a node is the cell run in
#: place) and cells of one entry may differ in it (:data:`aebench.config.LAUNCHER_SECTIONS` are
#: dropped from the cells' configs altogether; this one stays for the launcher to read)
RAY_SECTION = "ray"
#: config keys that say where and how fast a cell ran, not what it computed: cells of one entry may
#: differ in them (seeds run side by side on cuda:0 and cuda:1, or with other thread counts)
RUNTIME_KEYS = ("device", "threads", RAY_SECTION)
#: the grid's axes: the config keys each sets (cells of one row differ in them only where the grid varies it)
GRID_KEYS = {"clip_seconds": ("data.clip_seconds",), "iters": ("train.iters",), "audio": ("run.audio", "run.audio_sha256")}


def _flat(tree, prefix: str = "") -> dict[str, str]:
    """Dotted key -> value (as JSON text, so lists compare) of a nested config mapping."""
    import json

    if not isinstance(tree, dict):
        return {prefix: json.dumps(tree, sort_keys=True)}
    out: dict[str, str] = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": json.dumps(v, sort_keys=True)})
    return out


def settings_apart(configs: list[dict], allowed: tuple[str, ...] = ()) -> dict[str, dict[str, int]]:
    """The settings in which ``configs`` (resolved cell configs) differ, besides
    :data:`REPEAT_KEYS` and ``allowed`` (and the keys under them): dotted key -> {value: how many
    configs hold it}. Only keys every config has are compared: a setting added to aebench after
    some cells ran is absent from theirs, which says nothing about what they computed."""
    flats = [_flat(c) for c in configs]
    keys = sorted(set.intersection(*map(set, flats))) if flats else []  # a key older cells lack is not compared
    skip = (*REPEAT_KEYS, *allowed)
    out: dict[str, dict[str, int]] = {}
    for k in keys:
        if any(k == s or k.startswith(s + ".") for s in skip):
            continue
        values = [f[k] for f in flats]
        if len(set(values)) > 1:
            out[k] = {v: values.count(v) for v in dict.fromkeys(values)}
    return out


def _identity_names(root: Path) -> list[str]:
    return [p.name for p in list_identities(root)]


def expand_cells(protocol: Protocol, data_root: Path, overrides: list[str] = (), methods: list[str] | None = None) -> list[Cell]:
    """All cells of ``protocol`` over the identities in ``data_root``."""
    available = _identity_names(data_root)
    if not available:
        raise ProtocolError(f"no prepared identities in {data_root} (prepare some with `aebench data prepare` or use data=synth)")
    from aebench.paths import shared_path

    for audio in protocol.grid["audio"]:
        if str(audio) != "self" and str(audio) not in available and not shared_path(str(audio)).is_file():
            raise ProtocolError(
                f"protocol {protocol.name}: driving audio {audio!r} is neither self, an identity in "
                f"{data_root} ({', '.join(available)}) nor an audio file"
            )
    targets = available if protocol.targets == "all" else list(protocol.targets)
    missing = [t for t in targets if t not in available]
    if missing:
        raise ProtocolError(f"protocol {protocol.name}: identities {missing} not in {data_root}; found: {', '.join(available)}")
    rows = [r for r in protocol.rows if methods is None or r.method in methods]
    if not rows:
        raise ProtocolError(
            f"protocol {protocol.name}: no row uses methods {methods}; its methods: {sorted({r.method for r in protocol.rows})}"
        )
    data_hash, audio_hash = _hashers(Path(data_root), available)
    cells = []
    for row, target in itertools.product(rows, targets):
        if protocol.base == "leave_one_out":
            base_ids = [n for n in available if n != target]
        else:
            base_ids = list(protocol.base) if isinstance(protocol.base, list) else []
        for clip, iters, audio, seed in itertools.product(*(protocol.grid[k] for k in ("clip_seconds", "iters", "audio", "seed"))):
            extra = {
                **protocol.settings,
                **row.set,
                "method": row.method,
                "data.root": str(data_root),
                "data.clip_seconds": float(clip or 0.0),
                "seed": int(seed),
                "run.protocol": protocol.name,
                "run.row": row.label,
                "run.identity": target,
                "run.audio": str(audio),
                "run.base_identities": base_ids,
                "run.data_sha256": {n: data_hash(n) for n in [target, *base_ids]},
                "run.audio_sha256": audio_hash(str(audio)),
            }
            if iters is not None:
                extra["train.iters"] = int(iters)
            cfg = without_launcher_sections(load_config(list(overrides), extra=extra, scale=protocol.scale))
            check_fits_data(protocol.name, Path(data_root) / target, float(cfg.data.clip_seconds), int(cfg.data.size))
            cells.append(
                Cell(
                    protocol=protocol.name,
                    row=row.label,
                    method=row.method,
                    identity=target,
                    clip_seconds=float(cfg.data.clip_seconds),
                    iters=int(cfg.train.iters),
                    audio=str(audio),
                    seed=int(cfg.seed),
                    cfg=cfg,
                    cell_id=cell_key(cfg),
                    metrics=[m for m in protocol.metrics if m not in protocol.expected_missing],
                )
            )
    return cells


def check_fits_data(protocol: str, identity: Path, clip_seconds: float, size: int) -> None:
    """Refuse (ProtocolError), before any work, a cell its identity cannot serve: a few-shot clip
    longer than the training half, or a working size above the prepared frames' (which would
    upsample them and fail or mislead mid-run)."""
    from aebench.data.identity import Identity, IdentityError

    ident = Identity.open(identity)
    if clip_seconds > 0:
        try:
            ident.clip(clip_seconds)
        except IdentityError as exc:
            raise ProtocolError(f"protocol {protocol}: clip_seconds {clip_seconds:g}: {exc}") from exc
    native = max(ident.size)
    if size > native:
        raise ProtocolError(
            f"protocol {protocol}: data.size {size} is above the {native} px {ident.name} was prepared "
            f"at; prepare the clips at that size (clips.size) or choose data.size <= {native}"
        )


def identity_hash(folder: Path) -> str:
    """The content hash of the prepared identity in ``folder`` (what a cell's id names it by)."""
    from aebench.data.identity import Identity

    return Identity.open(folder).content_sha256


def _hashers(data_root: Path, available: list[str]):
    """Content hashes of identities (by name) and driving audio (self, an identity, a file), each
    computed once: what a cell's id holds instead of the data's path."""
    from functools import cache

    from aebench.data.prepare import sha256_file
    from aebench.paths import shared_path

    @cache
    def data_hash(name: str) -> str:
        return identity_hash(data_root / name)

    @cache
    def audio_hash(audio: str) -> str:
        if audio == "self":
            return ""
        return data_hash(audio) if audio in available else sha256_file(shared_path(audio))

    return data_hash, audio_hash


#: the id schemes of stores written by earlier versions, newest first (:func:`legacy_folders`):
#: ``3d25c8e`` hashed every method's section into every cell's id (the settings tree before ER-NeRF);
#: ``972eef0`` also every setting, with the field's settings in each NeRF method's section
LEGACY_SCHEMES = ("3d25c8e", "972eef0")
#: sections registered after each scheme's version (absent from its configs, so from its ids)
_SECTIONS_SINCE = {"3d25c8e": ("ernerf",), "972eef0": ("ernerf",)}
#: settings declared after 972eef0 (whose ids held every setting): a config at their neutral value
#: computes what that version computed, so its id leaves them out
_SETTINGS_SINCE_972EEF0 = {"train": ("adam_betas",)}


def _id_tree(cfg: DictConfig, scheme: str | None = None) -> dict:
    """The resolved config as an id covers it: every setting but those at their neutral value
    (:func:`aebench.config.id_view`), and of the methods' sections only the cell's own method's (the
    others cannot act on it: a method added or changed re-keys none of the others' cells).
    ``scheme``: as a store written by an earlier version hashed it (:data:`LEGACY_SCHEMES`)."""
    from omegaconf import OmegaConf

    from aebench.registry import methods

    tree = OmegaConf.to_container(cfg, resolve=True)
    if scheme == "972eef0":
        tree = _legacy_tree(tree)
        for section, keys in _SETTINGS_SINCE_972EEF0.items():
            neutral = id_view({section: {k: tree[section][k] for k in keys}})[section]
            for k in keys:
                if k not in neutral:  # at its neutral value
                    tree[section].pop(k, None)
    else:
        tree = id_view(tree)
    drop = _SECTIONS_SINCE[scheme] if scheme else [m for m in methods() if m != cfg.method]
    for name in drop:
        tree.pop(name, None)
    return tree


def _without_root(cfg: DictConfig, scheme: str | None = None) -> dict:
    """The resolved config as a cell id covers it (:func:`_id_tree`), without ``data.root``: where the
    data lies is not part of what a cell computes (``run.data_sha256`` and ``run.audio_sha256`` say
    what the data is), so the same data moved keeps its results and other data at the same path
    does not reuse them. Nor is how it reached a Ray node (:data:`RAY_SECTION`)."""
    data = _id_tree(cfg, scheme)
    data.get("data", {}).pop("root", None)
    data.pop(RAY_SECTION, None)  # how the cell reached a Ray node
    return data


def cell_key(cfg: DictConfig, scheme: str | None = None) -> str:
    """A cell's id: the hash of its resolved config, its data by content (:func:`_without_root`)."""
    from omegaconf import OmegaConf

    return config_hash(OmegaConf.create(_without_root(cfg, scheme)))


def base_key(cfg: DictConfig, scheme: str | None = None) -> str:
    """Hash of the config parts that shape a base model (not the fine-tuning ones)."""
    from omegaconf import OmegaConf

    method = cfg.method
    tree = _id_tree(cfg, scheme)
    train = {k: v for k, v in tree["train"].items() if k != "iters" and k not in TrainSettings.render_keys()}
    parts = {
        "method": method,
        "method_cfg": tree.get(method),
        "train": train,
        "size": cfg.data.size,
        "data": {n: cfg.run.data_sha256.get(n) or f"{cfg.data.root}/{n}" for n in sorted(cfg.run.base_identities)},
        "features": cfg.features,
        "seed": cfg.seed,
        "scale": cfg.scale,
        "threads": cfg.threads,
        "device": cfg.device,
        "identities": sorted(cfg.run.base_identities),
    }
    if scheme != "972eef0":  # then the field's settings were in the method's section
        parts["field"] = tree["field"]
    return config_hash(OmegaConf.create(parts))


#: run.* facts and settings that act only after fine-tuning: cells differing in these share one
#: fine-tuned model (see :func:`aebench.harness.protocol.runner.ensure_finetuned`)
AFTER_FINETUNE = {"run": ("audio", "audio_sha256", "protocol", "row"), "train": TrainSettings.render_keys()}


def finetune_key(cfg: DictConfig, scheme: str | None = None) -> str:
    """Hash of the config without the parts that act only after fine-tuning."""
    from omegaconf import OmegaConf

    data = _without_root(cfg, scheme)
    for section, keys in AFTER_FINETUNE.items():
        for k in keys:
            (data.get(section) or {}).pop(k, None)
    return config_hash(OmegaConf.create(data))


#: where a NeRF method's section kept the field part's settings before the settings tree (old key ->
#: the field's key): the ids of stores written then hashed them there
_LEGACY_FIELD_KEYS = {"encoding": "encoding", "hashgrid": "hashgrid", "triplane": "triplane", "fast_mlp": "mlp", "grid_lr_mult": "lr_mult"}


def _legacy_tree(tree: dict) -> dict:
    """A resolved config (plain containers) as aebench resolved it before the settings tree: every
    setting in the id (no neutral values), and each NeRF method's section holding the five field
    settings it copied from ``field.*``."""
    import dataclasses

    from aebench.config import section_classes

    for name, cls in section_classes().items():
        shared = cls is not None and any(f.metadata.get("shared") == "field" for f in dataclasses.fields(cls))
        if shared and isinstance(tree.get(name), dict):
            tree[name] = {**tree[name], **{old: tree["field"][new] for old, new in _LEGACY_FIELD_KEYS.items()}}
    return tree


def legacy_folders(cfg: DictConfig, scheme: str = LEGACY_SCHEMES[-1]) -> dict[str, str]:
    """Where a store written by an earlier version (``scheme``, :data:`LEGACY_SCHEMES`) keeps this
    config's cell, base model and fine-tuned model (relative to its root; the same kinds of folder
    as today's, other ids): what :func:`aebench.harness.protocol.run_store.adopt_earlier` moves to
    today's names."""
    method = cfg.method
    return {
        "cell": f"{cfg.run.protocol}/{cell_key(cfg, scheme)}",
        "base": f"_base/{method}-{base_key(cfg, scheme)}",
        "finetune": f"_finetune/{method}-{finetune_key(cfg, scheme)}",
    }
