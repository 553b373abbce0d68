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


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """Every test sees its own empty weights store (never the user's)."""
    store = tmp_path / "weights_store"
    store.mkdir()
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(store))
    import torch

    torch.set_num_threads(2)
    return store


@pytest.fixture(scope="session")
def syncnet_file(tmp_path_factory):
    """A random-weight SyncNet state dict, saved in the legacy (non-zip) torch format like the original."""
    import torch
    from syncnet_python import SyncNetModel

    torch.manual_seed(0)
    model = SyncNetModel().eval()
    path = tmp_path_factory.mktemp("syncnet") / "random_syncnet.model"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    return path
