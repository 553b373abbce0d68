"""The package as the wheel lays it out, built from ``pyproject.toml``'s ``package-dir`` mapping
(the source folders ``aenerf/``, ``baselines/``, ``eval/`` ... placed under ``aebench/``), for the
tests that read the code as installed (the import-linter contracts)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def package_dirs() -> dict[str, Path]:
    """Import package -> its source folder."""
    return {pkg: ROOT / src for pkg, src in pyproject()["tool"]["setuptools"]["package-dir"].items()}


def mirror(dest: Path) -> Path:
    """Copy every module to where the wheel puts it, under ``dest``; returns ``dest``."""
    for pkg, src in sorted(package_dirs().items(), key=lambda kv: kv[0].count(".")):
        target = dest.joinpath(*pkg.split("."))
        for f in src.rglob("*.py"):
            rel = f.relative_to(src)
            if "__pycache__" in rel.parts:
                continue
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out)
    return dest
