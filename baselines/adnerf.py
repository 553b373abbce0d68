"""AD-NeRF (Guo et al., ICCV 2021) on the shared engine: an audio-conditioned NeRF trained per
identity from scratch (no base model).

As the paper and ``YudongGuo/AD-NeRF`` (NeRFs/HeadNeRF) define it:

* AudioNet encodes each frame's audio window to a 64-d code; after ``nosmo_iters`` (200k of
  400k official iterations) AudioAttNet smooths the codes of 8 neighbouring frames and is
  optimised with 5x the learning rate (:mod:`baselines.audio_net`).
* The NeRF is the original 8x256 MLP with a skip at layer 4, input gamma(x) (10 frequencies)
  concatenated with the audio code, view directions gamma(d) (4 frequencies) into the colour
  branch; coarse 64 + fine 128 samples; Adam lr 5e-4 decayed by 0.1 over 250k steps
  (``lrate_decay`` 250 x 1000); 2048 rays per step, 95% of them inside the face box
  (``sample_rate`` 0.95).
* Colour is composited over the background image: the official ``raw2outputs`` replaces the
  last sample's colour by the background pixel (whose interval is 1e10 long); the engine's
  ``composite`` adds the left-over transmittance times the background pixel, the same image.

Deviations (deliberate, all shared with DFRF and AE-NeRF here so only the method differs):

* **No separate torso NeRF.** The official pipeline trains a second, head-pose-conditioned
  torso NeRF and composites head over torso over background. Here *one* audio-conditioned
  NeRF renders head and torso (every non-background pixel) over the identity's static
  ``background.png``; full frames are exactly ``C = sum_i w_i c_i + (1 - sum_i w_i) * B``.
  Because the camera follows the head pose, the torso moves with the head, as in AD-NeRF's
  head-only stage; evaluation compares these full frames.
* The suite's audio features (``cfg.features``, mfcc by default) replace DeepSpeech.
* Rays: ``face_fraction`` of them from the head labels (1, 2) of the prepared masks instead of
  the face bounding box; the rest uniform over the image.
* Network layout is the engine's ``NeRFMLP`` (skip input re-injected before layer 4, a
  width-256 feature layer before the colour branch, softplus density where the official code
  uses ReLU), as for every NeRF method here.
"""

from __future__ import annotations

from baselines.common import AudioNeRFMethod, AudioNeRFModel


class ADNeRFModel(AudioNeRFModel):
    """The audio-conditioned NeRF: audio code is the only conditioning."""


class ADNeRF(AudioNeRFMethod):
    name = "adnerf"
    has_base_model = False
    model_cls = ADNeRFModel

    def pretrain(self, identities, cfg, run_dir):
        return None

    def finetune(self, identity, clip, base, cfg, run_dir):
        if base is not None:
            raise ValueError("adnerf trains each identity from scratch; it has no base model")
        return super().finetune(identity, clip, None, cfg, run_dir)
