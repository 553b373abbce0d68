"""Typed settings of the NeRF methods' sections (``cfg.aenerf``, ``cfg.dfrf``, ``cfg.adnerf``)
and of the field encoding they share (``cfg.field``).

The typed-settings machinery and ``cfg.train``'s :class:`~aebench.settings.TrainSettings` are
the foundation's (:mod:`aebench.settings`); here is what every NeRF method's section has. The
defaults are the paper scale's (the official code's sizes); the smaller scales' sizes are the
overlays of ``aebench/configs/sections/<method>.yaml``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aebench.settings import Settings, setting, shared_part

ENCODINGS = ("frequency", "hashgrid", "triplane")


@dataclasses.dataclass(frozen=True)
class FieldSettings(Settings):
    """``cfg.field``: the NeRF fields' position encoding, shared by every NeRF method (one setting
    switches every row of a protocol: equal footing). ``frequency`` is the papers' positional
    encoding and MLP (each method's ``width``/``depth``); ``hashgrid`` and ``triplane`` are aebench's
    fast variants (:mod:`aebench.engine.grid_encoding`), not the papers' methods: the grid
    features replace gamma(x) as the NeRF MLP's position input and the MLP is the small one of ``mlp``."""

    encoding: str = setting("frequency", choices=ENCODINGS)
    """Position encoding of the NeRF field: ``frequency`` (gamma(x), the papers'), ``hashgrid`` or ``triplane``."""
    hashgrid: list[int] = setting([16, 2, 19, 16, 2048])
    """Hash grid: levels, features per level, log2 table size, min and max resolution (Instant-NGP's)."""
    triplane: list[int] = setting([12, 1, 14, 64, 512])
    """Tri-plane: the same five, per plane (ER-NeRF's encode_x: 12 levels of 1 feature, 64 to 512, 2^14)."""
    mlp: list[int] = setting([64, 3])
    """The grid encodings' NeRF MLP: width, depth (ER-NeRF's sigma net: 3 layers of 64)."""
    lr_mult: float = setting(20.0, arch=False)
    """The grid tables' lr = ``train.lr`` x this (Instant-NGP and ER-NeRF train tables at 1e-2)."""


#: where an earlier version's checkpoints kept the field settings: old key -> FieldSettings key
_FLAT_FIELD_KEYS = {"encoding": "encoding", "hashgrid": "hashgrid", "triplane": "triplane", "fast_mlp": "mlp", "grid_lr_mult": "lr_mult"}


@dataclasses.dataclass(frozen=True)
class NeRFSettings(Settings):
    """What every NeRF method's section has: its MLP, encodings, audio encoder and references."""

    width: int = setting(256, low=1)
    """NeRF MLP width (W)."""
    depth: int = setting(8, low=1)
    """NeRF MLP depth (D); the input is re-injected at layer D // 2, the colour branch has 1 + D // 4 layers."""
    pe_x: int = setting(10, low=0)
    """Positional-encoding frequencies of the sample position x (multires)."""
    pe_d: int = setting(4, low=0)
    """Positional-encoding frequencies of the view direction d (multires_views)."""
    audio_dim: int = setting(64, low=1)
    """AudioNet code width (dim_aud)."""
    att_dims: int = setting(32, low=1)
    """Channels of the audio code that AudioAttNet's conv stack reads (32 of 64 officially)."""
    n_refs: int = setting(0)
    """Reference frames per sample (L); 0 for methods without references."""
    density: str = setting("softplus", choices=("softplus", "relu"))
    """Density activation of the NeRF MLPs: ``softplus`` (aebench) or ``relu`` (the official ReLU + 1e-6,
    :mod:`aebench.engine.mlp`)."""
    field: FieldSettings = shared_part(FieldSettings, "field")
    """The position encoding, read from ``cfg.field`` (:class:`FieldSettings`)."""

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Checkpoints before the ``field`` part kept its five settings flat in the method's."""
        if "field" not in data and "encoding" in data:
            data["field"] = {new: data.pop(old) for old, new in _FLAT_FIELD_KEYS.items() if old in data}
        return data


@dataclasses.dataclass(frozen=True)
class ReferenceSettings(NeRFSettings):
    """What the methods built on DFRF's reference scheme add (AE-NeRF, DFRF): the settings of
    its reference feature extractor (:class:`aebench.engine.references.FeatureExtractor`)."""

    n_refs: int = setting(4)
    feat_dim: int = setting(128, low=1)
    """Reference feature channels (the extractor's linear layer; 128 in DFRF)."""
    cnn_width: int = setting(64, low=1)
    """Channels of the extractor's two 3x3 convolutions (64 in DFRF)."""
    pe_ref: int = setting(5, low=0)
    """PE frequencies of the reference RGB and camera position fed to the extractor (5 in DFRF)."""
