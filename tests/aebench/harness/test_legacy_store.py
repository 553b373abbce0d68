"""A store written before the settings tree: its finished work is found under today's ids, not redone.

The old ids are what aebench at commits 972eef0 and 3d25c8e computed itself (each fixture records
how), so the test compares today's reading of an old store with the old code's own naming."""

import json
from pathlib import Path

import pytest

from aebench.harness.protocol.cells import LEGACY_SCHEMES, expand_cells, identity_hash, legacy_folders
from aebench.harness.protocol.launchers import launch
from aebench.harness.protocol.records import SCHEMA, CellRecord
from aebench.harness.protocol.run_store import base_folder, cell_folder, finetune_folder, read_record, rebase
from aebench.harness.protocol.spec import load_protocol
from aebench.registry import REGISTERED as METHODS

FIXTURES = Path(__file__).parent / "fixtures"
#: the methods of the smoke protocol's rows at 972eef0 and 3d25c8e
METHODS_THEN = ("aenerf", "dfrf", "adnerf")


@pytest.fixture(scope="module")
def smoke_corpus(tmp_path_factory) -> Path:
    from aebench.data.synth import make_corpus

    out = tmp_path_factory.mktemp("smoke_corpus")
    make_corpus(out, identities=3, seconds=4.0, size=32, seed=0)
    return out


@pytest.mark.parametrize("scheme", LEGACY_SCHEMES)
def test_the_old_codes_ids_are_reproduced(smoke_corpus, scheme):
    fixture = json.loads((FIXTURES / f"legacy_ids_{scheme}.json").read_text())
    assert fixture["commit"] == scheme
    assert {p.name: identity_hash(p) for p in sorted(smoke_corpus.iterdir()) if (p / "meta.json").exists()} == fixture["corpus_sha256"]
    for overrides in ([], ["field.encoding=hashgrid", "train.opacity_entropy=1e-4"]):
        for c in expand_cells(load_protocol("smoke", scale="smoke"), smoke_corpus, overrides):
            if c.method not in METHODS_THEN:  # a row added since: the old code had no such cell
                continue
            old = fixture["folders"][f"smoke{'+' + ','.join(overrides) if overrides else ''}|{c.key}"]
            folders = legacy_folders(c.cfg, scheme)
            assert folders["cell"] == f"smoke/{old['cell']}" and folders["finetune"] == old["finetune"]
            assert old["base"] in (None, folders["base"])
            assert folders["cell"] != f"smoke/{c.cell_id}"  # today's ids differ: the adoption below is needed


def _age(store: Path, cells) -> dict[str, str]:
    """Rename a store's folders to the names the old code gave them (and their records' paths and ids)."""
    moves = {}
    for c in cells:
        old, new = (
            legacy_folders(c.cfg),
            {"cell": f"{c.protocol}/{c.cell_id}", "base": base_folder(c.cfg), "finetune": finetune_folder(c.cfg)},
        )
        for kind in ("base", "finetune", "cell"):
            src, dst = store / new[kind], store / old[kind]
            if src.exists() and str(src) not in moves:
                src.rename(dst)
                moves[str(src)] = str(dst)
    for dst in moves.values():
        rebase(Path(dst), moves)
    for c in cells:
        folder = store / legacy_folders(c.cfg)["cell"]
        record = json.loads((folder / "cell.json").read_text())
        record.pop("schema")  # written before the records were typed, too
        (folder / "cell.json").write_text(json.dumps({**record, "cell_id": folder.name}))
    return moves


def test_an_old_stores_finished_cells_are_adopted_not_run_again(tmp_path, monkeypatch):
    from tests.aebench.harness.test_protocol import write_protocol

    from aebench.data.synth import make_corpus

    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    make_corpus(tmp_path / "corpus", identities=3, seconds=2.0, size=16, seed=0)
    corpus = tmp_path / "corpus"
    cells = expand_cells(load_protocol(write_protocol(tmp_path)), corpus)
    store = tmp_path / "runs"
    assert [o.status for o in launch(cells, store, progress=False)] == ["done"] * len(cells)
    before = {c.cell_id: json.loads((cell_folder(store, c) / "metrics.json").read_text())["summary"] for c in cells}
    moves = _age(store, cells)
    assert moves and not any(cell_folder(store, c).exists() for c in cells)
    counter = tmp_path / "counter.txt"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))
    assert [o.status for o in launch(cells, store, progress=False)] == ["skipped"] * len(cells)  # found, not redone
    assert not counter.exists()  # no model trained again
    for c in cells:
        record = read_record(cell_folder(store, c), CellRecord)
        assert record.cell_id == c.cell_id and record.schema == SCHEMA  # rewritten in today's layout
        assert Path(record.finetuned) == store / finetune_folder(c.cfg) and Path(record.base) == store / base_folder(c.cfg)
        assert json.loads((cell_folder(store, c) / "metrics.json").read_text())["summary"] == before[c.cell_id]
        assert "adopted from a store written by an earlier version" in (cell_folder(store, c) / "log.txt").read_text()
    base_record = json.loads((store / base_folder(cells[0].cfg) / "base.json").read_text())
    assert base_record["checkpoint"].startswith(str(store / base_folder(cells[0].cfg)))


def test_a_cell_id_covers_its_own_methods_section_only(smoke_corpus):
    """Another method's settings cannot act on a cell: changing them (or adding a method) re-keys
    only that method's cells."""
    plain = {c.key: c.cell_id for c in expand_cells(load_protocol("smoke", scale="smoke"), smoke_corpus, [])}
    changed = {c.key: c.cell_id for c in expand_cells(load_protocol("smoke", scale="smoke"), smoke_corpus, ["ernerf.hidden=16"])}
    assert {k for k in plain if plain[k] != changed[k]} == {k for k in plain if k.startswith("ER-NeRF|")}
