"""DFRF (Shen et al., ECCV 2022, "Learning Dynamic Facial Radiance Fields for Few-Shot Talking
Head Synthesis") on the shared NeRF skeleton: a reference-conditioned audio NeRF, trained as a
base model over several identities and then fine-tuned on a short clip.

Facts from ``sstzal/DFRF`` (``NeRFs/run_nerf_deform.py`` = RND, ``NeRFs/run_nerf_helpers_deform.py``
= HLP, ``data_util/process_data.py`` = PD; line numbers at commit 2c7bd69c):

* **References**: ``num_reference_images = 4`` (RND 695). While training, 4 random training
  frames of the same identity other than the target; when rendering, fixed training frames
  (here 4 frames evenly spread over the fine-tuning clip).
* **Reference feature extractor** (``Feature_extractor``, HLP 476-488; input RND 134-141):
  gamma_5(rgb) (33) and gamma_5(reference camera position) (33) = 66 channels; two 3x3
  convs, stride 1 (no downsampling), 64 channels, ReLU; then a linear layer to 128 channels
  (:class:`aebench.engine.references.FeatureExtractor`, shared with AE-NeRF).
* **Projection + deformation** (``make_indices``, ``Position_warp``, HLP 753-763, RND 270): a
  sample x is projected into each reference; an MLP 255 -> 128 -> 32 -> 2 (ReLU, weights
  N(0, 1e-3), zero bias) on [gamma_10(x) (63), audio code (64, detached), the feature at the
  projection (128, detached)] predicts a pixel offset clamped to [-10, 10]; the feature is
  re-sampled at the offset position; the token is [feature 128, pixel position 2] (RND 293-295).
* **Offset penalty**: ``loss = img_loss + L2loss_weight * mean(offset^2)`` (RND 1056, 272);
  ``L2loss_weight`` is 5e-9 by default (RND 705) and 5e-8 in the per-subject fine-tuning
  config that preprocessing writes (PD 379): ``offset_weight_base`` / ``offset_weight``.
* **Fine-tuning** (RND 331-349, 777, 1071-1081): ``global_step`` continues from the base model
  (lr schedule and ``nosmo_iters`` count from it); only AudioNet's Adam state is reloaded
  (RND 335, 788-789: ``train.reload_audio_optimizer``, on under the preset); the
  ``Position_warp`` is *not* loaded from the base model (only when rendering), i.e. it is
  freshly initialised for fine-tuning (:meth:`DFRFModel.reinit_for_finetune`).
* **Aggregation** (``SlotAttention``, no audio, HLP 492-569, RND 223-227): per sample, the 4
  reference tokens go through fc1 (130 -> 32, ReLU) and fc6 (32 -> 32) and are concatenated
  with themselves and gamma_10(x) (63): 225 -> fc7 -> 128; 2 slots of 128, 2 iterations;
  the flattened slots (256) condition the NeRF.
* **NeRF** (``Face_Feature_NeRF``, HLP 601-659): 8x256 MLP, skip at 4, input [gamma_10(x),
  audio code 64, aggregated 256], gamma_4(d) into a 3-layer colour branch
  (:class:`aebench.engine.mlp.NeRFMLP`); coarse 64 + fine 128 samples with separate MLPs
  sharing the extractor, warper and slot attention; loss = MSE(fine) + MSE(coarse) + penalty.
* **Audio**: AudioNet, then AudioAttNet from ``nosmo_iters`` (100k) on with 5x lr (shared:
  :mod:`aebench.engine.audio`, ``train.smooth_from``).
* Training values (``N_rand`` 850, ``sample_rate`` 0.95, lr 5e-4 decayed 0.1 over 500 x 1500
  steps, ``N_iters`` 600k): ``configs/presets/official.yaml``; they are also the shared
  defaults every method trains with at ``scale=paper``.

Deviations of the default settings (all in ``baselines/README.md``'s table, each with its effect
on the golden inputs): the suite's audio features replace DeepSpeech; slot attention starts
from learned slot means (no Gaussian sampling), without fc7's LeakyReLU, its MLP ``slot_dim``
wide; the pixel position in the token is divided by the image size; the offset clamp (10 px at
512 px) is scaled to the working size; projected positions are clamped into the image and
sampled bilinearly (the official first lookup rounds to a pixel); softplus density; one NeRF
renders head and torso over ``background.png``. ``train.preset=official`` switches every one of
these but the features and the torso to the official behaviour (``slot_init``, ``slot_in_act``,
``slot_mlp_min``, ``token``, ``offset_penalty``, ``density``); ``tests/baselines/test_golden.py``
shows the result equal to the official ``render_rays``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aebench.engine.encoding import PositionalEncoding
from aebench.engine.method import NeRFMethod
from aebench.engine.model import NeRFModel
from aebench.engine.mlp import NeRFMLP
from aebench.engine.references import FeatureExtractor, clamp_to_image, project_to_refs, reference_tokens, sample_features
from aebench.engine.settings import ReferenceSettings
from aebench.settings import TrainSettings, setting
from aebench.engine.slot_attention import SlotAggregation

REF_IMAGE_SIZE = 512  # the official clamp of 10 px is in pixels of 512x512 frames


@dataclass(frozen=True)
class DFRFSettings(ReferenceSettings):
    """``cfg.dfrf``: DFRF's sizes (paper scale = the official code's)."""

    pe_warp: int = setting(10, low=0)
    """PE frequencies of x into the deformation MLP (10)."""
    warp_hidden: list[int] = setting([128, 32])
    """Deformation MLP hidden widths ([128, 32])."""
    offset_clamp: float = setting(10.0, low=0.0)
    """|offset| limit in pixels of a 512-px frame, scaled to the working size (10)."""
    offset_weight: float = setting(5.0e-8, arch=False)
    """Offset penalty weight while fine-tuning (L2loss_weight of the per-subject config, 5e-8)."""
    offset_weight_base: float = setting(5.0e-9, arch=False)
    """Offset penalty weight while training the base model (argparse default, 5e-9)."""
    slot_dim: int = setting(128, low=1)
    """Slot width; the NeRF gets the slots flattened (n_slots * slot_dim), as the official code."""
    n_slots: int = setting(2, low=1)
    """Number of slots (2)."""
    slot_iters: int = setting(2, low=1)
    """Slot-attention iterations (2)."""
    slot_init: str = setting("learned", choices=("learned", "sampled"))
    """``learned`` per-slot means (aebench) or ``sampled``: DFRF's ``mu + sigma * randn``, drawn at
    every call, at test time too (:class:`~aebench.engine.slot_attention.SlotAggregation`)."""
    slot_in_act: str = setting("linear", choices=("linear", "leaky_relu"))
    """Activation after the slot attention's input layer (DFRF's ``fc7``): ``linear`` or ``leaky_relu`` (official)."""
    slot_mlp_min: int = setting(0, low=0)
    """The slot MLP's hidden width is max(slot_dim, this) (DFRF: 128; 0 = slot_dim)."""
    token: str = setting("continuous", choices=("continuous", "official"))
    """``continuous``: pixel position / image size in the token, bilinear first lookup at the projection,
    offset clamp scaled to the working size (aebench). ``official``: DFRF's ``gather_indices`` (RND
    254-295): (row, col) indices as ``make_indices`` computes them, clamped and rounded for the first
    lookup, warped position round(p) + offset clamped to the image and sampled bilinearly with border
    padding, the integer position (no gradient) in the token, the clamp 10 px at every size."""
    offset_penalty: str = setting("mean", choices=("mean", "depth_weighted"), arch=False)
    """``mean``: mean(offset^2) (aebench); ``depth_weighted``: the official mean over samples of
    mean(offset^2) * (1 - min(w_i z_i, 1)) with the fine pass's weights (RND 550)."""


class PositionWarp(nn.Module):
    """Offset (du, dv) of a projected position from [gamma(x), audio, reference feature]."""

    def __init__(self, in_dim: int, hidden: tuple[int, int] = (128, 32)):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Linear(hidden[1], 2)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DFRF's init: weights N(0, 1e-3), zero biases (HLP 755-758)."""
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 1e-3)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, clamp: float) -> Tensor:
        return self.mlp(x).clamp(-clamp, clamp)


@dataclass
class DFRFReferences:
    maps: Tensor  # (L, C, H, W)
    c2w: Tensor  # (L, 4, 4)
    intrinsics: Tensor  # (3,)


class DFRFModel(NeRFModel):
    uses_references = True

    def __init__(self, settings: DFRFSettings, audio_channels: int, train: TrainSettings):
        super().__init__(settings, audio_channels, train)
        s = settings
        self.features = FeatureExtractor(s.pe_ref, s.cnn_width, s.feat_dim)
        self.pe_warp = PositionalEncoding(s.pe_warp)
        self.warp = PositionWarp(self.pe_warp.out_dim + s.audio_dim + s.feat_dim, tuple(s.warp_hidden))
        tok = s.feat_dim + 2
        self.rel = nn.Sequential(nn.Linear(tok, 32), nn.ReLU(), nn.Linear(32, 32))  # fc1, fc6
        self.slots = SlotAggregation(
            tok + self.pe_x.out_dim + 32,
            s.slot_dim,
            None,
            s.n_slots,
            s.slot_iters,
            init=s.slot_init,
            in_act=s.slot_in_act,
            mlp_width=max(s.slot_dim, s.slot_mlp_min),
        )
        self.noise: torch.Generator | None = None  # the slots' noise (slot_init sampled) while rendering a batch
        cond = s.audio_dim + self.slots.out_dim
        width, depth = self.mlp_size()
        self.coarse = NeRFMLP(self.pos.out_dim, self.pe_d.out_dim, cond, width, depth, density=s.density)
        self.fine = NeRFMLP(self.pos.out_dim, self.pe_d.out_dim, cond, width, depth, density=s.density)

    def references(self, images: Tensor, c2w: Tensor, intrinsics: Tensor, codes: Tensor | None) -> DFRFReferences:
        return DFRFReferences(self.features(images, c2w), c2w, intrinsics)

    def render(self, code, refs, rays_o, rays_d, bg, near, far, groups, perturb, generator=None, stop_eps=0.0, samples=None) -> dict:
        """As the skeleton's; the batch's generator also draws the sampled slots' noise (``slot_init``)."""
        self.noise = generator
        try:
            return super().render(code, refs, rays_o, rays_d, bg, near, far, groups, perturb, generator, stop_eps, samples)
        finally:
            self.noise = None

    def _warp_input(self, pts: Tensor, audio: Tensor, first: Tensor) -> Tensor:
        l, p = first.shape[:2]
        return torch.cat([self.pe_warp(pts)[None].expand(l, p, -1), audio.detach().expand(l, p, -1), first.detach()], -1)

    def aggregate(self, pts: Tensor, audio: Tensor, refs: DFRFReferences) -> tuple[Tensor, Tensor]:
        """(P, 3) points -> (P, n_slots slot_dim) aggregated features and (L, P, 2) offsets."""
        h, w = refs.maps.shape[-2:]
        uv, _ = project_to_refs(pts, refs.c2w, refs.intrinsics)
        if self.settings.token == "official":
            tokens, offset = self._official_tokens(pts, audio, refs, uv)
        else:
            uv = clamp_to_image(uv, h, w)
            first = sample_features(refs.maps, uv)  # (L, P, C)
            offset = self.warp(self._warp_input(pts, audio, first), self.settings.offset_clamp * w / REF_IMAGE_SIZE)
            tokens = reference_tokens(refs.maps, clamp_to_image(uv + offset, h, w))  # (L, P, C + 2)
        l, p = uv.shape[:2]
        tokens = torch.cat([tokens, self.pe_x(pts)[None].expand(l, p, -1), self.rel(tokens)], -1).transpose(0, 1)
        return self.slots(tokens, self.noise), offset

    def _official_tokens(self, pts: Tensor, audio: Tensor, refs: DFRFReferences, uv: Tensor) -> tuple[Tensor, Tensor]:
        """DFRF's ``gather_indices`` (RND 254-295, ``make_indices`` HLP 584-598) on (L, P, 2) projections.

        The official projection into the references uses a fixed intrinsic with the principal
        point (W/2, H/2) (RND 750-752), not the identity's (cx, cy), which only its rays use:
        (row, col) = (H/2 + f y/z, W/2 + f x/z), its pixel i at coordinate i. In aebench's
        coordinates (u = f x/z + cx, pixel i at i + 0.5): row = v - cy + H/2, col = u - cx + W/2
        (= (v - 0.5, u - 0.5) when cx, cy = W/2 + 0.5, H/2 + 0.5). Returns tokens (L, P, C + 2) and
        offsets (L, P, 2) in (row, col)."""
        maps = refs.maps
        l, c, h, w = maps.shape
        cx, cy = refs.intrinsics[1], refs.intrinsics[2]
        rc = torch.stack([uv[..., 1] - cy + h / 2, uv[..., 0] - cx + w / 2], -1)
        zero, hi = rc.new_zeros(2), rc.new_tensor([h - 1.0, w - 1.0])
        rc = torch.round(torch.maximum(torch.minimum(rc, hi), zero))  # make_indices' clamp, then the round
        idx = rc.long()
        first = maps.permute(0, 2, 3, 1)[torch.arange(l, device=maps.device)[:, None], idx[..., 0], idx[..., 1]]
        offset = self.warp(self._warp_input(pts, audio, first), self.settings.offset_clamp)
        rc = torch.maximum(torch.minimum(rc + offset, hi), zero)
        # grid_sample at (col, row) normalised by H on both axes, border padding (RND 276-291)
        at = torch.stack([(rc[..., 1] + 0.5) * w / h, rc[..., 0] + 0.5], -1)
        feats = sample_features(maps, at, padding="border")
        return torch.cat([feats, rc.detach().trunc()], -1), offset

    def field(self, code: Tensor, refs: DFRFReferences, groups):
        nets = {"coarse": self.coarse, "fine": self.fine}

        def features(points: Tensor, dirs: Tensor, rays: Tensor | None = None) -> dict[str, Tensor]:
            """What both levels share per sample: the slots (N, S, n_slots slot_dim) and offsets (N, S, L, 2)."""
            n, s = points.shape[:2]
            agg, offset = self.aggregate(points.reshape(-1, 3), code, refs)
            return {"agg": agg.reshape(n, s, -1), "offset": offset.transpose(0, 1).reshape(n, s, *offset.shape[::2])}

        def fn(points: Tensor, dirs: Tensor, level: str, rays: Tensor | None = None, features: dict[str, Tensor] | None = None) -> dict:
            n, s = points.shape[:2]
            feats = features if features is not None else features_of(points, dirs, rays)
            flat = points.reshape(-1, 3)
            d = self.pe_d(dirs)[:, None].expand(n, s, -1).reshape(n * s, -1)
            agg = feats["agg"].reshape(n * s, -1)
            out = nets[level](self.pos(flat), d, torch.cat([code.expand(n * s, -1), agg], -1))
            return {"sigma": out["sigma"].reshape(n, s), "rgb": out["rgb"].reshape(n, s, 3), "aux_offset": feats["offset"]}

        features_of = features
        if self.settings.slot_init == "learned":  # sampled slots draw new noise at every pass, as DFRF's
            fn.features = features
        return fn

    def extra_loss(self, out: dict, groups) -> tuple[Tensor, dict]:
        last = out["fine"] if "fine" in out else out["coarse"]
        s = self.settings
        if s.offset_penalty == "depth_weighted":  # RND 550: per sample, weighted by 1 - min(w z, 1)
            per = torch.mean(last["aux_offset"] ** 2, dim=(-2, -1))  # (N, S)
            pen = torch.mean(per * (1 - torch.clamp((last["weights"] * last["z"]).detach(), max=1.0)))
        else:
            pen = torch.mean(last["aux_offset"] ** 2)
        weight = s.offset_weight if self.phase == "finetune" else s.offset_weight_base
        return float(weight) * pen, {"offset_px2": pen.detach()}

    def reinit_for_finetune(self) -> None:
        """The official fine-tune builds a fresh Position_warp (RND 220, 340-341)."""
        self.warp.reset_parameters()


class DFRF(NeRFMethod):
    name = "dfrf"
    has_base_model = True
    settings_cls = DFRFSettings
    model_cls = DFRFModel
