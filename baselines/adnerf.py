"""AD-NeRF (Guo et al., ICCV 2021) on the shared engine: an audio-conditioned NeRF trained per
identity from scratch (no base model).

As the paper and ``YudongGuo/AD-NeRF`` (NeRFs/HeadNeRF) define it:

* AudioNet encodes each frame's audio window to a 64-d code; after ``nosmo_iters`` (200k of
  400k official iterations; here ``train.smooth_from_share`` 0.5 of its iterations, as it
  trains from scratch) AudioAttNet smooths the
  codes of 8 neighbouring frames and is optimised with 5x the learning rate
  (:mod:`aebench.engine.audio`).
* The NeRF is the original 8x256 MLP with a skip at layer 4, input gamma(x) (10 frequencies)
  concatenated with the audio code, view directions gamma(d) (4 frequencies) into a 3-layer
  colour branch (:class:`aebench.engine.mlp.NeRFMLP`); coarse 64 + fine 128 samples. Its own
  training values (Adam lr 5e-4 decayed by 0.1 over ``lrate_decay`` 250 x 1000 steps; 2048
  rays per step, ``sample_rate`` 0.95 inside the face box; ``run_nerf.py`` 525-610) are the
  ``train.preset=official`` values (``configs/presets/official.yaml``); in a protocol it
  trains under the shared ``train.*`` like every other row.
* Colour is composited over the background image exactly as the official ``raw2outputs``
  (``NeRFs/HeadNeRF/run_nerf.py`` 335-384): the last sample's colour is the background pixel
  and absorbs the transmittance left (:mod:`aebench.engine.volume`).

Deviations (deliberate, all shared with DFRF and AE-NeRF here so only the method differs):

* **No separate torso NeRF.** The official pipeline trains a second, head-pose-conditioned
  torso NeRF and composites head over torso over background. Here *one* audio-conditioned
  NeRF renders head and torso (every non-background pixel) over the identity's static
  ``background.png``; full frames are exactly ``C = sum_i w_i c_i + (1 - sum_i w_i) * B``.
  Because the camera follows the head pose, the torso moves with the head, as in AD-NeRF's
  head-only stage; evaluation compares these full frames.
* The suite's audio features (``cfg.features``, mfcc by default) replace DeepSpeech.
* The face box is the bounding box of the head labels (1, 2) of the prepared masks (the
  official one comes from the face-parsing/landmark rectangle).
* Softplus density where the official code uses ReLU + 1e-6 (:mod:`aebench.engine.mlp`), as for
  every NeRF method here (``adnerf.density: relu`` under the preset).
* Renders smoothed codes once training smoothed, as DFRF; the official ``render_path`` renders
  AudioNet's codes only (``train.smooth_at_render: false`` under the preset).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from aebench.engine.method import NeRFMethod
from aebench.engine.model import NeRFModel
from aebench.engine.mlp import NeRFMLP
from aebench.engine.settings import NeRFSettings
from aebench.settings import TrainSettings


@dataclass(frozen=True)
class ADNeRFSettings(NeRFSettings):
    """``cfg.adnerf``: AD-NeRF's sizes (paper scale = the official HeadNeRF's). ``n_refs`` is 0."""


class ADNeRFModel(NeRFModel):
    """The audio-conditioned NeRF: the audio code is the only conditioning."""

    def __init__(self, settings: ADNeRFSettings, audio_channels: int, train: TrainSettings):
        super().__init__(settings, audio_channels, train)
        s = settings
        width, depth = self.mlp_size()
        self.coarse = NeRFMLP(self.pos.out_dim, self.pe_d.out_dim, s.audio_dim, width, depth, density=s.density)
        self.fine = NeRFMLP(self.pos.out_dim, self.pe_d.out_dim, s.audio_dim, width, depth, density=s.density)

    def field(self, code: Tensor, refs, groups):
        nets = {"coarse": self.coarse, "fine": self.fine}

        def fn(points: Tensor, dirs: Tensor, level: str, rays: Tensor | None = None) -> dict:
            n, s = points.shape[:2]
            d = self.pe_d(dirs)[:, None].expand(n, s, -1)
            return nets[level](self.pos(points), d, code.expand(n, s, -1))

        return fn


class ADNeRF(NeRFMethod):
    name = "adnerf"
    has_base_model = False
    settings_cls = ADNeRFSettings
    model_cls = ADNeRFModel
