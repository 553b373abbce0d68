"""The run store's typed records: what run_store writes, it reads back, whatever version wrote it."""

import json

import pytest

from aebench.harness.protocol.records import SCHEMA, BaseRecord, CellRecord, FinetuneRecord, grid_key
from aebench.harness.protocol.run_store import read_record, write_record

V1_CELL = {  # a cell.json as aebench wrote it before the records were typed (no schema, no key)
    "protocol": "smoke",
    "cell_id": "abc",
    "row": "DFRF",
    "method": "dfrf",
    "identity": "synth_02",
    "clip_seconds": 0.0,
    "iters": 120,
    "audio": "self",
    "seed": 0,
    "scale": "smoke",
    "data_root": "data/synth",
    "size": 32,
    "base": "/s/_base/x",
    "finetuned": "/s/_finetune/y",
    "base_identities": ["synth_00"],
    "timings": {"pretrain_s": 1.0, "finetune_s": 2.0},
    "train_hours": 0.001,
    "sha256": {"pred": "00"},
    "provenance": {"code": {"version": "0.1.0"}},
}


def test_records_round_trip_with_their_schema(tmp_path):
    cell = CellRecord(
        SCHEMA,
        protocol="p",
        cell_id="c",
        row="A",
        method="dfrf",
        identity="may",
        clip_seconds=3.0,
        iters=300,
        audio="self",
        seed=1,
        key=grid_key("A", "may", 3.0, 300, "self", 1),
    )
    write_record(tmp_path, cell)
    assert json.loads((tmp_path / "cell.json").read_text())["schema"] == SCHEMA
    assert read_record(tmp_path, CellRecord) == cell and cell.grid_key == "A|may|3|300|self|1"
    for record in (
        BaseRecord(SCHEMA, checkpoint="/x", identities=["a"], pretrain_s=2.5),
        FinetuneRecord(SCHEMA, checkpoint="/y", finetune_s=1.5),
    ):
        write_record(tmp_path, record)
        assert read_record(tmp_path, type(record)) == record


def test_a_store_of_an_earlier_version_reads_and_a_later_one_is_refused(tmp_path):
    (tmp_path / "cell.json").write_text(json.dumps(V1_CELL))
    old = read_record(tmp_path, CellRecord)
    assert old.schema == 1 and old.grid_key == "DFRF|synth_02|0|120|self|0" and old.cost is None
    assert "cost" not in old.to_json()  # an absent part stays absent
    (tmp_path / "base.json").write_text(json.dumps({"checkpoint": "/c", "identities": ["a"], "pretrain_s": 3.0}))
    assert read_record(tmp_path, BaseRecord).checkpoint == "/c"
    (tmp_path / "cell.json").write_text(json.dumps({**V1_CELL, "schema": SCHEMA + 1}))
    with pytest.raises(ValueError, match=f"layout version {SCHEMA + 1}, written by a newer aebench"):
        read_record(tmp_path, CellRecord)
    (tmp_path / "cell.json").write_text(json.dumps({k: v for k, v in V1_CELL.items() if k != "row"}))
    with pytest.raises(ValueError, match="a cell record without row; a damaged record"):
        read_record(tmp_path, CellRecord)
