"""The Method API every talking-head method implements (DESIGN.md, "Methods").

Methods are looked up by name in the registry (:mod:`aebench.registry`);
a method in another package registers through the ``aebench.methods`` entry-point group.
Here is only what every method and the harness share: the interface, the test poses a
render follows and the span of driving audio it covers (:func:`render_span`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
from omegaconf import DictConfig

from aebench.data import Identity
from aebench.settings import Settings


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
    #: its config section ``cfg.<name>``: every setting declared once, as a field of this class
    #: (:mod:`aebench.settings`); None = an open mapping the method validates itself
    settings_cls: ClassVar[type[Settings] | None] = None

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


def render_span(identity: Identity, driving_audio: np.ndarray, cap: int = 0) -> tuple[int, np.ndarray]:
    """(frame count, audio) of a render of ``identity`` driven by ``driving_audio``: one frame
    per 1/fps of audio, at most ``cap`` (``train.render_frames``; 0 = no cap), and the samples
    those frames cover (muxed with the video and scored with it). Every method, the protocol
    runner and ``external`` count a render this way."""
    n = identity.frames_for_audio(len(driving_audio), cap)
    return n, driving_audio[: identity.samples_for_frames(n)]
