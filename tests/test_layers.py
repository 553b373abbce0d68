"""The layers point down (DESIGN.md, "Layout and layers"): the import-linter contracts of
``pyproject.toml`` hold on the package as the wheel lays it out, and would catch an import
that points up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.layout import ROOT, mirror


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' installs import-linter")
    return subprocess.run(
        [str(exe), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
        timeout=300,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return mirror(tmp_path_factory.mktemp("installed"))


def test_contracts_hold(tree):
    res = lint_imports(tree)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Contracts: 4 kept, 0 broken" in res.stdout


@pytest.mark.parametrize(
    "module,bad",
    [
        ("aebench/media.py", "from aebench.harness.cli import main"),  # foundation -> CLI
        ("aebench/eval/frames.py", "from aebench.engine import rays"),  # metrics -> methods
        ("aebench/baselines/dfrf.py", "from aebench.eval.registry import METRICS"),  # methods -> metrics
        ("aebench/harness/protocol/cells.py", "from aebench.harness.report import tables"),  # runner -> reports
        ("aebench/engine/volume.py", "from aebench.aenerf.modules import aaa"),  # engine -> AE-NeRF's modules
        ("aebench/engine/method.py", "from aebench.baselines import dfrf"),  # engine -> a baseline
        ("aebench/baselines/adnerf.py", "from aebench.aenerf import model"),  # a baseline -> AE-NeRF
        ("aebench/data/prepare.py", "from aebench.engine import rays"),  # foundation -> engine
        ("aebench/harness/report/results.py", "from aebench.harness.report import plots"),  # results -> plots (a circle)
    ],
)
def test_an_import_that_points_up_is_caught(tree, tmp_path, module, bad):
    broken = tmp_path / "broken"
    shutil.copytree(tree, broken)
    with open(broken / module, "a") as fh:
        fh.write(f"\n{bad}  # injected by the test\n")
    res = lint_imports(broken)
    assert res.returncode != 0 and "BROKEN" in res.stdout, res.stdout
