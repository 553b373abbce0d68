"""The wheel: one top-level import package, ``aebench``, holding every module of the source
folders and the package data a protocol run needs (protocols, configs, presets, the paper's
tables, the weights manifest). ``.ci/run`` installs it into a fresh environment and runs a
protocol from outside the repository."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.layout import ROOT, mirror


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("aebench-*.whl")
    return zipfile.ZipFile(path)


def test_the_only_top_level_name_is_aebench(wheel):
    tops = {n.split("/")[0] for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"aebench"}
    (top_level,) = [n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["aebench"]


def test_every_module_and_data_file_is_in_the_wheel(wheel, tmp_path):
    names = set(wheel.namelist())
    modules = {str(p.relative_to(tmp_path)) for p in mirror(tmp_path).rglob("*.py")}
    assert modules - names == set()  # a sub-package missing from pyproject's packages list would show here
    data = {f"aebench/protocols/{p.name}" for p in (ROOT / "protocols").glob("*.yaml")}
    data |= {f"aebench/paper/{p.name}" for p in (ROOT / "results" / "paper").glob("*.csv")}
    data |= {f"aebench/{p.relative_to(ROOT / 'aebench')}" for p in (ROOT / "aebench" / "configs").rglob("*.yaml")}
    data |= {"aebench/weights_manifest.json"}
    assert data - names == set()
    assert "aebench/configs/presets/official.yaml" in names


def test_entry_point_is_the_harness_cli(wheel):
    (eps,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "aebench = aebench.harness.cli:main" in wheel.read(eps).decode()
