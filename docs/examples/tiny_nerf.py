"""TinyNeRF: an audio-conditioned NeRF with one MLP for both sampling levels (the walk-through
of docs/extending.md; tests/test_walkthrough.py registers it and trains it).

Everything the method is lives in this module: its settings (each declared once, with its
default, range and meaning), its network and its method class. Registering it is one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from aebench.engine.method import NeRFMethod
from aebench.engine.model import NeRFModel
from aebench.engine.mlp import NeRFMLP
from aebench.engine.settings import NeRFSettings
from aebench.settings import TrainSettings, setting


@dataclass(frozen=True)
class TinySettings(NeRFSettings):
    """``cfg.tiny``: the shared NeRF sizes, smaller by default, and one switch of its own."""

    width: int = setting(32, low=1)
    depth: int = setting(2, low=1)
    share_levels: bool = setting(True)
    """One MLP for the coarse and the fine samples; false gives each level its own (as NeRF)."""


class TinyModel(NeRFModel):
    def __init__(self, settings: TinySettings, audio_channels: int, train: TrainSettings):
        super().__init__(settings, audio_channels, train)
        s = settings
        width, depth = self.mlp_size()

        def mlp() -> NeRFMLP:
            return NeRFMLP(self.pos.out_dim, self.pe_d.out_dim, s.audio_dim, width, depth, density=s.density)

        self.coarse = mlp()
        self.fine = self.coarse if s.share_levels else mlp()

    def field(self, code: Tensor, refs, groups):
        nets = {"coarse": self.coarse, "fine": self.fine}

        def fn(points: Tensor, dirs: Tensor, level: str, rays: Tensor | None = None) -> dict:
            n, s = points.shape[:2]  # points (N, S, 3), dirs (N, 3)
            d = self.pe_d(dirs)[:, None].expand(n, s, -1)
            return nets[level](self.pos(points), d, code.expand(n, s, -1))

        return fn


class Tiny(NeRFMethod):
    name = "tiny"
    has_base_model = False
    settings_cls = TinySettings
    model_cls = TinyModel
