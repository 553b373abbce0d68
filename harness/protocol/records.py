"""The run store's records, typed: a cell's ``cell.json``, a base model's ``base.json`` and a
fine-tuned model's ``finetune.json``.

Only :mod:`aebench.harness.protocol.run_store` writes and reads them (``write_record``,
``read_record``); everything else receives these objects. Each record carries ``schema``, the
version of its layout. Version 1 is a record written before the records were typed (no
``schema`` field): the same fields, some of the oldest ones absent, read with the defaults below.
A record of a later version than this aebench knows is refused with a message, never guessed at.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: the layout version these classes write
SCHEMA = 2
#: field metadata of a part an older record may lack: None when absent, and left out of the file then
OPTIONAL = {"optional": True}


class RecordError(ValueError):
    """A record that cannot be read (a damaged file, a newer layout)."""


def grid_key(row: str, identity: str, clip_seconds: float, iters: int | None, audio: str, seed: int) -> str:
    """A cell's grid point as text (row, identity, clip seconds, iterations, driving audio, seed): the
    key of regression references and of a table's entries, written the same way everywhere."""
    return f"{row}|{identity}|{float(clip_seconds):g}|{iters}|{audio}|{seed}"


@dataclass(frozen=True)
class Record:
    """What the three records share: their file name, their schema, and how they read."""

    FILE: ClassVar[str] = ""
    WHAT: ClassVar[str] = ""
    schema: int

    @classmethod
    def from_json(cls, data: Any, where: str):
        """A record from its file's JSON, any version this aebench reads."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: a {cls.WHAT} is a JSON object, got {type(data).__name__}")
        version = data.get("schema", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RecordError(f"{where}: schema {version!r} is not a layout version")
        if version > SCHEMA:
            raise RecordError(
                f"{where}: a {cls.WHAT} of layout version {version}, written by a newer aebench "
                f"(this one reads versions 1 to {SCHEMA}); upgrade aebench to read this store"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name != "schema"
        ]
        missing = [n for n in required if n not in data]
        if missing:
            raise RecordError(f"{where}: a {cls.WHAT} without {', '.join(missing)}; a damaged record: delete its folder and run again")
        return cls(**{**{k: v for k, v in data.items() if k in names}, "schema": version})

    def to_json(self) -> dict:
        """The record as its file holds it (an absent optional part left out)."""
        absent = {f.name for f in dataclasses.fields(self) if f.metadata.get("optional") and getattr(self, f.name) is None}
        return {**{k: v for k, v in dataclasses.asdict(self).items() if k not in absent}, "schema": SCHEMA}


@dataclass(frozen=True)
class BaseRecord(Record):
    """``base.json``: a trained base model."""

    FILE: ClassVar[str] = "base.json"
    WHAT: ClassVar[str] = "base model record"
    checkpoint: str
    identities: list[str] = field(default_factory=list)
    pretrain_s: float = 0.0
    peak_memory: dict | None = field(default=None, metadata=OPTIONAL)
    provenance: dict | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class FinetuneRecord(Record):
    """``finetune.json``: a fine-tuned model."""

    FILE: ClassVar[str] = "finetune.json"
    WHAT: ClassVar[str] = "fine-tuned model record"
    checkpoint: str
    finetune_s: float = 0.0
    peak_memory: dict | None = field(default=None, metadata=OPTIONAL)
    provenance: dict | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class CellRecord(Record):
    """``cell.json``: what a finished cell ran and what it cost (its metrics are ``metrics.json``)."""

    FILE: ClassVar[str] = "cell.json"
    WHAT: ClassVar[str] = "cell record"
    protocol: str
    cell_id: str
    row: str
    method: str
    identity: str
    clip_seconds: float
    iters: int | None
    audio: str
    seed: int
    scale: str = ""
    data_root: str = ""
    size: int = 0
    base: str | None = None  # the base model's folder (None: the method has none)
    finetuned: str = ""  # the fine-tuned model's folder
    base_identities: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # seconds per stage: pretrain_s, finetune_s, render_s, eval_s
    train_hours: float = 0.0
    cost: dict | None = field(default=None, metadata=OPTIONAL)  # train_s, render_fps, peak_mem (runner.cell_cost)
    peak_memory: dict | None = field(default=None, metadata=OPTIONAL)
    sha256: dict | None = field(default=None, metadata=OPTIONAL)  # what was scored (prediction and ground-truth frames)
    provenance: dict | None = field(default=None, metadata=OPTIONAL)
    trained_with: dict | None = field(default=None, metadata=OPTIONAL)  # the base and fine-tuned models' provenance
    key: str = ""  # the grid point (grid_key); version 1 records of the oldest kind lack it

    @property
    def grid_key(self) -> str:
        return self.key or grid_key(self.row, self.identity, self.clip_seconds, self.iters, self.audio, self.seed)
