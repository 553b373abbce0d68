"""Fixtures for the metrics tests: an empty weights store, random-weight networks saved as files."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _own_weights_store(empty_store):
    """Every metrics test sees its own empty weights store (``empty_store``, tests/conftest.py)."""
    return empty_store


@pytest.fixture(scope="session")
def alexnet_state():
    """A random torchvision AlexNet state dict (seeded)."""
    import torchvision

    torch.manual_seed(1)
    return torchvision.models.alexnet().state_dict()


@pytest.fixture(scope="session")
def alexnet_file(tmp_path_factory, alexnet_state):
    """Its feature layers saved as a file (LPIPS uses only the features)."""
    path = tmp_path_factory.mktemp("alexnet") / "random_alexnet.pth"
    torch.save({k: v for k, v in alexnet_state.items() if k.startswith("features.")}, path)
    return path


@pytest.fixture(scope="session")
def face_frames(shared_data):
    """A few real 512x512 face frames (the shared may_short.mp4), downscaled to 256 px."""
    import cv2

    from aebench.media import read_video

    frames, _ = read_video(shared_data / "clips" / "may_short.mp4", max_frames=30)
    return np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames])
