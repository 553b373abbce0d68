"""The Method API every talking-head method implements, and the method registry.

A method is looked up by name (``aenerf``, ``dfrf``, ``adnerf``, ``external``); the
registry maps names to ``module:Class`` so that importing the harness does not import
torch or any method's code.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from aebench.data import Identity

#: name -> "module:Class"; a method registers itself by adding a line here.
METHODS: dict[str, str] = {
    "aenerf": "aenerf.method:AENeRF",
    "dfrf": "baselines.dfrf:DFRF",
    "adnerf": "baselines.adnerf:ADNeRF",
    "external": "baselines.external:External",
}


class Method(ABC):
    """A talking-head method: optional multi-identity base model, few-shot fine-tuning,
    and rendering of an identity's test poses driven by any audio.

    Checkpoints are directories the method writes and reads; the harness only passes
    their paths around. ``cfg`` is the fully resolved config (:mod:`aebench.config`);
    each method reads its own section (``cfg.<name>``) plus the shared ones.
    """

    name: str = ""
    #: True when the method trains a shared multi-identity base model (AE-NeRF, DFRF).
    has_base_model: bool = False

    @abstractmethod
    def pretrain(self, identities: list[Identity], cfg: DictConfig, run_dir: Path) -> Path | None:
        """Train the base model over several identities; None for methods without one."""

    @abstractmethod
    def finetune(self, identity: Identity, clip: Identity, base: Path | None, cfg: DictConfig, run_dir: Path) -> Path:
        """Fine-tune (or train from scratch when ``base`` is None) on ``clip``, a view of
        ``identity``'s training half. Returns the checkpoint directory."""

    @abstractmethod
    def render(self, checkpoint: Path, identity: Identity, driving_audio: np.ndarray, cfg: DictConfig, out: Path) -> Path:
        """Render ``identity``'s test poses driven by ``driving_audio`` (16 kHz mono float)
        into the mp4 ``out`` (audio muxed in) and return its path.

        The video has one frame per 1/fps of audio; poses come from the test half in order,
        mirrored back and forth when the audio is longer than the test half."""


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"unknown method '{name}'; registered: {', '.join(sorted(METHODS))}")
    module, cls = METHODS[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise KeyError(f"method '{name}' is registered as {METHODS[name]} but cannot be imported: {exc}") from exc
    return getattr(mod, cls)


def get_method(name: str) -> Method:
    return method_class(name)()


def driving_pose_indices(n_test: int, n_frames: int) -> np.ndarray:
    """Indices into the test half for ``n_frames`` rendered frames: in order, then mirrored
    back and forth (as AD-NeRF does for driving audio longer than the pose track)."""
    if n_test <= 0:
        raise ValueError("identity has no test frames")
    if n_test == 1:
        return np.zeros(n_frames, dtype=np.int64)
    period = 2 * n_test - 2
    k = np.arange(n_frames) % period
    return np.where(k < n_test, k, period - k).astype(np.int64)
