"""Plugins: a method and a metric of another installed package (``tests/plugin_pkg``), registered
through the entry-point groups ``aebench.methods`` and ``aebench.metrics``, are listed by
``aebench ls`` and run in a protocol like the built-in ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLUGIN = Path(__file__).resolve().parents[2] / "plugin_pkg"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    """The environment of a process that has the example plugin installed (pip, into a target folder)."""
    target = tmp_path_factory.mktemp("plugin_site")
    src = tmp_path_factory.mktemp("plugin_src") / "pkg"
    shutil.copytree(PLUGIN, src)  # setuptools builds in the source folder: not in the repository
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        cwd=src,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert list(target.glob("aebench_plugin_example-*.dist-info/entry_points.txt"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def aebench(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from aebench.harness.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_plugins_are_listed(plugin_env, tmp_path):
    methods = aebench(plugin_env, tmp_path, "ls", "methods")
    assert methods.returncode == 0, methods.stderr
    assert "copycat" in methods.stdout and "[plugin aebench_plugin_example.method:Copycat]" in methods.stdout
    assert "aenerf" in methods.stdout  # the built-in ones stay
    metrics = aebench(plugin_env, tmp_path, "ls", "metrics")
    assert metrics.returncode == 0 and "brightness" in metrics.stdout and "Brightness (plugin)" in metrics.stdout
    plain = aebench({k: v for k, v in plugin_env.items() if k != "PYTHONPATH"}, tmp_path, "ls", "methods")
    assert "copycat" not in plain.stdout  # only where the plugin is installed


def test_plugin_method_and_metric_run_in_a_protocol(plugin_env, tmp_path):
    spec = {
        "name": "plugged",
        "description": "a plugin method and metric beside a built-in metric",
        "metrics": ["psnr", "example"],  # "example": the plugin metric's family
        "rows": [
            {"label": "copycat", "method": "copycat"},
            {"label": "copycat darker", "method": "copycat", "set": {"copycat.darken": 40}},
        ],
        "targets": ["synth_01"],
        "base": "leave_one_out",
        "data": "synth",
        "synth": {"identities": 2, "seconds": 1.6, "size": 16, "seed": 0},
        "settings": {"data.size": 16, "train.render_frames": 4},
    }
    (tmp_path / "plugged.yaml").write_text(yaml.safe_dump(spec))
    run = aebench(plugin_env, tmp_path, "run", "protocol=plugged.yaml", "--runs", "runs")
    assert run.returncode == 0, run.stdout + run.stderr
    cells = {
        json.loads((d / "cell.json").read_text())["row"]: json.loads((d / "metrics.json").read_text())["summary"]
        for d in (tmp_path / "runs" / "plugged").iterdir()
        if (d / "done").exists()
    }
    assert set(cells) == {"copycat", "copycat darker"}
    assert cells["copycat"]["psnr"] > cells["copycat darker"]["psnr"]  # the plugin read its own section
    assert cells["copycat"]["brightness"] > cells["copycat darker"]["brightness"] + 30
    table = aebench(plugin_env, tmp_path, "tables", "plugged.yaml", "--runs", "runs")
    assert table.returncode == 0 and "Brightness (plugin) (ours)" in table.stdout, table.stdout + table.stderr
