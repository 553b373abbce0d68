"""Shared fixtures: the real clips folder and a small synthetic corpus built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from aebench.paths import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``$AEBENCH_SHARED/data`` with the real clips; tests using it skip when it is absent."""
    root = shared_data_dir()
    if not (root / "clips").is_dir():
        pytest.skip(f"real clips not found at {root} (set AEBENCH_SHARED to the shared folder)")
    return root


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A tiny synthetic corpus (2 identities, 4 s, 32 px) shared by the whole test session."""
    from aebench.data.synth import make_corpus

    out = tmp_path_factory.mktemp("synth")
    make_corpus(out, identities=2, seconds=4.0, size=32, seed=0)
    return out
