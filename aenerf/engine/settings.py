"""Typed settings of the NeRF methods' sections (``cfg.aenerf``, ``cfg.dfrf``, ``cfg.adnerf``).

The typed-settings machinery and ``cfg.train``'s :class:`~aebench.settings.TrainSettings` are
the foundation's (:mod:`aebench.settings`); here is what every NeRF method's section has.
"""

from __future__ import annotations

import dataclasses

from aebench.settings import Settings


@dataclasses.dataclass(frozen=True)
class NeRFSettings(Settings):
    """What every NeRF method's section has: its MLP, encodings, audio encoder and references."""

    width: int
    """NeRF MLP width (W)."""
    depth: int
    """NeRF MLP depth (D); the input is re-injected at layer D // 2, the colour branch has 1 + D // 4 layers."""
    pe_x: int
    """Positional-encoding frequencies of the sample position x (multires)."""
    pe_d: int
    """Positional-encoding frequencies of the view direction d (multires_views)."""
    audio_dim: int
    """AudioNet code width (dim_aud)."""
    att_dims: int
    """Channels of the audio code that AudioAttNet's conv stack reads (32 of 64 officially)."""
    n_refs: int
    """Reference frames per sample (L); 0 for methods without references."""
    encoding: str
    """Position encoding of the NeRF field: ``frequency`` (gamma(x), the papers'), ``hashgrid`` or
    ``triplane`` (aebench's fast variants, :mod:`aebench.aenerf.engine.grid_encoding`); ``${field.encoding}``."""
    hashgrid: list[int]
    """Hash grid: levels, features per level, log2 table size, min and max resolution."""
    triplane: list[int]
    """Tri-plane: the same five, per plane."""
    fast_mlp: list[int]
    """NeRF MLP [width, depth] of the grid encodings (``width``/``depth`` act with ``frequency``)."""
    grid_lr_mult: float = dataclasses.field(metadata={"arch": False})
    """The grid tables' lr multiple."""
    density: str
    """Density activation of the NeRF MLPs: ``softplus`` (aebench) or ``relu`` (the official ReLU + 1e-6,
    :mod:`aebench.aenerf.engine.mlp`)."""


@dataclasses.dataclass(frozen=True)
class ReferenceSettings(NeRFSettings):
    """What the methods built on DFRF's reference scheme add (AE-NeRF, DFRF): the settings of
    its reference feature extractor (:class:`aebench.aenerf.engine.references.FeatureExtractor`)."""

    feat_dim: int
    """Reference feature channels (the extractor's linear layer; 128 in DFRF)."""
    cnn_width: int
    """Channels of the extractor's two 3x3 convolutions (64 in DFRF)."""
    pe_ref: int
    """PE frequencies of the reference RGB and camera position fed to the extractor (5 in DFRF)."""
