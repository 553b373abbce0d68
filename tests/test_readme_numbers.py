"""Every README number comes from a committed file: each block between
``<!-- generated: COMMAND -->`` and ``<!-- end generated -->`` in README.md,
baselines/README.md and the documentation pages (docs/**/*.md) is what COMMAND prints now,
from committed files only. COMMAND is ``aebench ...`` (run in-process) or
``python tools/....py ...``. Editing a number in a block, or a committed file behind it,
fails this test; regenerate with ``python tools/readme_tables.py --write``."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _blocks():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from readme_tables import DOCS, blocks

    return [(doc, cmd, text) for doc in DOCS for cmd, text in blocks((ROOT / doc).read_text())]


BLOCKS = _blocks()


def test_the_readmes_and_pages_have_generated_blocks():
    docs = {doc for doc, _, _ in BLOCKS}
    assert {"README.md", "baselines/README.md", "docs/results.md", "docs/speed.md"} <= docs, docs


@pytest.mark.parametrize("doc, command, text", BLOCKS, ids=[f"{d}:{c}" for d, c, _ in BLOCKS])
def test_a_generated_block_is_what_its_command_prints(doc, command, text, monkeypatch):
    from readme_tables import run

    monkeypatch.chdir(ROOT)
    assert run(command) == text, (
        f"{doc}: the block of `{command}` differs from its output; regenerate it with python tools/readme_tables.py --write"
    )


def test_an_edited_number_fails(tmp_path):
    from readme_tables import blocks, check

    doc = (ROOT / "baselines" / "README.md").read_text()
    command, text = blocks(doc)[0]
    edited = doc.replace(text, text.replace("0.1", "0.2", 1))
    assert edited != doc
    assert check(doc, cwd=ROOT) == [] and check(edited, cwd=ROOT) == [command]


def test_a_speed_verdict_needs_two_pairs_that_agree():
    """docs/speed.md says "faster" only where two or more paired runs all say so (issue 31, item 5)."""
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from speed_tables import verdict

    assert verdict([0.5], "faster", "slower").startswith("no verdict (one pair")
    assert verdict([0.5, 0.7], "faster", "slower") == "faster in every pair (ratios 0.50 to 0.70 over 2 pairs)"
    assert verdict([1.2, 1.1, 1.3], "faster", "slower").startswith("slower in every pair")
    assert verdict([0.9, 1.1], "faster", "slower").startswith("no verdict: the pairs disagree")
