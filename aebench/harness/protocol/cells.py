"""Cell expansion: rows x targets x clip length x iterations x driving audio x seed.

Each cell's fully resolved config (protocol settings, the row's switches, the grid values,
the ``run.*`` facts and the user's overrides) hashes into the cell id (DESIGN.md, run store).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from aebench.config import config_hash, load_config
from aebench.data import list_identities
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
        clip = f"{self.clip_seconds:g}s" if self.clip_seconds else "half"
        return f"{self.row} | {self.identity} | clip {clip} | {self.iters} it | audio {self.audio} | seed {self.seed}"

    @property
    def key(self) -> str:
        """Stable human-readable key (row, identity, grid values), used by regression references."""
        return f"{self.row}|{self.identity}|{self.clip_seconds:g}|{self.iters}|{self.audio}|{self.seed}"


def _identity_names(root: Path) -> list[str]:
    return [p.name for p in list_identities(root)]


def expand_cells(protocol: Protocol, data_root: Path, overrides: list[str] = (),
                 methods: list[str] | None = None) -> list[Cell]:
    """All cells of ``protocol`` over the identities in ``data_root``."""
    available = _identity_names(data_root)
    if not available:
        raise ProtocolError(f"no prepared identities in {data_root} (prepare some with `aebench data prepare` "
                            f"or use data=synth)")
    from aebench.paths import shared_path

    for audio in protocol.grid["audio"]:
        if str(audio) != "self" and str(audio) not in available and not shared_path(str(audio)).is_file():
            raise ProtocolError(f"protocol {protocol.name}: driving audio {audio!r} is neither self, an identity in "
                                f"{data_root} ({', '.join(available)}) nor an audio file")
    targets = available if protocol.targets == "all" else list(protocol.targets)
    missing = [t for t in targets if t not in available]
    if missing:
        raise ProtocolError(f"protocol {protocol.name}: identities {missing} not in {data_root}; found: {', '.join(available)}")
    rows = [r for r in protocol.rows if methods is None or r.method in methods]
    if not rows:
        raise ProtocolError(f"protocol {protocol.name}: no row uses methods {methods}; "
                            f"its methods: {sorted({r.method for r in protocol.rows})}")
    cells = []
    for row, target in itertools.product(rows, targets):
        if protocol.base == "leave_one_out":
            base_ids = [n for n in available if n != target]
        else:
            base_ids = list(protocol.base) if isinstance(protocol.base, list) else []
        for clip, iters, audio, seed in itertools.product(*(protocol.grid[k] for k in ("clip_seconds", "iters", "audio", "seed"))):
            extra = {**protocol.settings, **row.set, "method": row.method, "data.root": str(data_root),
                     "data.clip_seconds": float(clip or 0.0), "seed": int(seed),
                     "run.protocol": protocol.name, "run.row": row.label, "run.identity": target,
                     "run.audio": str(audio), "run.base_identities": base_ids}
            if iters is not None:
                extra["train.iters"] = int(iters)
            cfg = load_config(list(overrides), extra=extra, scale=protocol.scale)
            cells.append(Cell(protocol=protocol.name, row=row.label, method=row.method, identity=target,
                              clip_seconds=float(cfg.data.clip_seconds), iters=int(cfg.train.iters),
                              audio=str(audio), seed=int(cfg.seed), cfg=cfg, cell_id=config_hash(cfg),
                              metrics=[m for m in protocol.metrics if m not in protocol.expected_missing]))
    return cells


def base_key(cfg: DictConfig) -> str:
    """Hash of the config parts that shape a base model (not the fine-tuning ones)."""
    from omegaconf import OmegaConf

    method = cfg.method
    train = {k: v for k, v in cfg.train.items() if k != "iters" and k not in TrainSettings.render_keys()}
    section = cfg.get(method)  # resolved here: its ${field.*} point into the whole config
    section = OmegaConf.to_container(section, resolve=True) if section is not None else None
    parts = {"method": method, "method_cfg": section, "train": train, "size": cfg.data.size,
             "root": cfg.data.root, "features": cfg.features, "seed": cfg.seed, "scale": cfg.scale, "threads": cfg.threads,
             "device": cfg.device,
             "identities": sorted(cfg.run.base_identities)}
    return config_hash(OmegaConf.create(parts))


#: run.* facts and settings that act only after fine-tuning: cells differing in these share one
#: fine-tuned model (see :func:`aebench.harness.protocol.runner.ensure_finetuned`)
AFTER_FINETUNE = {"run": ("audio", "protocol", "row"), "train": TrainSettings.render_keys()}


def finetune_key(cfg: DictConfig) -> str:
    """Hash of the config without the parts that act only after fine-tuning."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True)
    for section, keys in AFTER_FINETUNE.items():
        for k in keys:
            (data.get(section) or {}).pop(k, None)
    return config_hash(OmegaConf.create(data))
