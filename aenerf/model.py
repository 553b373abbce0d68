"""The AE-NeRF network and its settings: DFRF's reference features + (audio-aware) warper +
AAA (or slot attention) feeding the dual NeRF of Audio-Aligned Face Generation, with RRS and
the loss of eq. 9-12. Training, rendering and checkpoints are the shared skeleton's
(:mod:`aebench.engine.method`).

Resolutions of points the paper leaves open (METHOD.md; all in ``baselines/README.md``'s
deviations table):

- Audio: AudioNet codes smoothed by AudioAttNet from ``train.smooth_from`` on (the paper's
  "wav2vec 2.0 features with temporal smoothing"; AD-NeRF/DFRF's smoother, shared here). The
  target and the L references are encoded by the same AudioEncoder.
- References: DFRF's feature extractor and token (sampled feature + pixel position), the
  projection clamped into the image as DFRF does (AE-NeRF builds on DFRF's reference scheme).
- Coarse and fine levels each have their own NeRF MLPs (F_aa, F_ai), as in NeRF/DFRF;
  the reference CNN, AudioNet, warper and aggregation are shared by both levels.
- F_aa gets [gamma(x), a, f~] into its trunk and gamma(d) at the colour layer; F_ai the same
  without a. Both predict colour, density and a parsing mask m.
- Composition per sample: overlap rays c = m_aa c_aa + m_ai c_ai, sigma = sigma_aa +
  sigma_ai (no renormalisation of m_aa + m_ai, as eq. 7 is written); rays of one NeRF only
  take that NeRF's c and sigma.
- Masks are volume-rendered with the ray's composite weights; the background (the last
  sample, :mod:`aebench.engine.volume`) belongs to the audio-decoupled region (m_aa = 0,
  m_ai = 1). L_m is the squared error of the rendered m_aa against 1[r in Omega_ar] over the
  rays F_aa renders, plus that of m_ai against 1[r in Omega_ad] over the rays F_ai renders.
- Losses are means over rays (the paper's sums up to a constant), over both levels.
- "w/o AAFG": one F_aa (no mask head, no L_m) renders every ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.engine.model import NeRFModel
from aebench.engine.mlp import NeRFMLP
from aebench.engine.references import FeatureExtractor, clamp_to_image, project_to_refs, reference_tokens
from aebench.engine.settings import ReferenceSettings
from aebench.settings import TrainSettings, setting
from aebench.engine.slot_attention import SlotAggregation
from aebench.aenerf.modules.aaa import AudioAwareAggregation
from aebench.aenerf.modules.rrs import RayGroups, all_overlap, regionwise
from aebench.aenerf.modules.warper import Warper, offset_norm


@dataclass(frozen=True)
class AENeRFSettings(ReferenceSettings):
    """``cfg.aenerf``: AE-NeRF's sizes and ablation switches."""

    aaa: bool = setting(True)
    """Audio Aware Aggregation; false = slot attention ignoring audio (Table 4 "w/o AAA")."""
    aaa_init: str = setting("identity", choices=("identity", "random"))
    """AAA's W_Q, W_K at initialisation (the paper states none): ``identity`` (attention starts by
    audio similarity, Fig. 5's hypothesis) | ``random`` (PyTorch's default ``nn.Linear`` init)."""
    aafg: bool = setting(True)
    """Dual NeRF (F_aa + F_ai); false = one audio-associated NeRF for the whole face ("w/o AAFG")."""
    warper: bool = setting(True)
    """Audio-aware warper; false = plain projection into the references ("w/o Warper")."""
    rrs: bool = setting(True, arch=False)
    """Regionwise Ray Sampling; false = every ray through both NeRFs ("w/o RRS")."""
    rrs_eps: float = setting(0.4, low=0.0, high=1.0, arch=False)
    """RRS overlap fraction eps (0.4 in the paper)."""
    token_dim: int = setting(128, low=1)
    """AAA token width (and attention width d; 128 in the paper)."""
    heads: int = setting(4, low=1)
    """AAA attention heads."""
    agg_dim: int = setting(128, low=1)
    """Aggregated feature f~ width."""
    slot_iters: int = setting(3, low=1)
    """Slot-attention iterations (w/o AAA)."""
    warper_width: int = setting(128, low=1)
    """Warper hidden width (3 FC layers)."""
    lambda_m: float = setting(1.0e-3, arch=False)
    """Parsing-mask loss weight (1e-3)."""
    lambda_o: float = setting(5.0e-8, arch=False)
    """Warper offset loss weight (5e-8)."""


@dataclass
class References:
    """The L references of one frame set: feature maps, poses, intrinsics, audio codes."""

    maps: Tensor  # (L, C, H, W)
    c2w: Tensor  # (L, 4, 4)
    intrinsics: Tensor  # (3,)
    codes: Tensor  # (L, A)


class AENeRFModel(NeRFModel):
    uses_references = True
    uses_ref_audio = True
    mask_backgrounds = {"mask_aa": 0.0, "mask_ai": 1.0}

    def __init__(self, settings: AENeRFSettings, audio_channels: int, train: TrainSettings):
        super().__init__(settings, audio_channels, train)
        s = settings
        a_dim = s.audio_dim
        self.ref_encoder = FeatureExtractor(s.pe_ref, s.cnn_width, s.feat_dim)
        tok = s.feat_dim + 2
        self.warper = Warper(self.pe_x.out_dim, a_dim, s.warper_width) if s.warper else None
        if s.aaa:
            self.aggregator = AudioAwareAggregation(a_dim, tok, s.token_dim, s.heads, s.agg_dim, init=s.aaa_init)
        else:
            self.aggregator = SlotAggregation(tok, s.token_dim, s.agg_dim, iters=s.slot_iters)

        width, depth = self.mlp_size()

        def mlp(cond: int, mask: bool) -> NeRFMLP:
            return NeRFMLP(self.pos.out_dim, self.pe_d.out_dim, cond, width, depth, with_mask=mask, density=s.density)

        self.nerfs = nn.ModuleDict()
        for level in ("coarse", "fine"):
            pair = {"aa": mlp(a_dim + s.agg_dim, s.aafg)}
            if s.aafg:
                pair["ai"] = mlp(s.agg_dim, True)
            self.nerfs[level] = nn.ModuleDict(pair)

    # ----- conditioning ---------------------------------------------------------------------
    def references(self, images: Tensor, c2w: Tensor, intrinsics: Tensor, codes: Tensor | None) -> References:
        return References(self.ref_encoder(images, c2w), c2w, intrinsics, codes)

    def aggregate(self, code: Tensor, refs: References, x: Tensor, ex: Tensor, d: Tensor) -> tuple[Tensor, Tensor | None]:
        """f~ (P, agg_dim) for points ``x`` (P, 3) seen along ``d`` (P, 3); and warper offsets (L, P, 2)."""
        uv, d_ref = project_to_refs(x, refs.c2w, refs.intrinsics)
        offsets = None
        if self.warper is not None:
            offsets = self.warper(ex, code, refs.codes, d, d_ref)
            uv = uv + offsets
        h, w = refs.maps.shape[-2:]
        tokens = reference_tokens(refs.maps, clamp_to_image(uv, h, w)).permute(1, 0, 2)  # (P, L, C + 2)
        if self.settings.aaa:
            return self.aggregator(code, refs.codes, tokens), offsets
        return self.aggregator(tokens), offsets

    # ----- the field --------------------------------------------------------------------------
    def field(self, code: Tensor, refs: References, groups: RayGroups | None):
        agg_dim = self.settings.agg_dim

        def features(pts: Tensor, dirs: Tensor, rays: Tensor | None = None) -> dict[str, Tensor]:
            """What both levels share per sample: f~ (N, S, agg_dim) and the warper's mean offset (N, S)."""
            n, s = pts.shape[:2]
            x = pts.reshape(-1, 3)
            d = dirs[:, None].expand(n, s, 3).reshape(-1, 3)
            f, offsets = self.aggregate(code, refs, x, self.pe_x(x), d)
            out = {"f": f.reshape(n, s, agg_dim)}
            if offsets is not None:
                out["offset"] = offset_norm(offsets).reshape(n, s)
            return out

        def fn(
            pts: Tensor, dirs: Tensor, level: str, rays: Tensor | None = None, features: dict[str, Tensor] | None = None
        ) -> dict[str, Tensor]:
            n, s = pts.shape[:2]
            feats = features if features is not None else fn.features(pts, dirs, rays)
            x = pts.reshape(-1, 3)
            d = dirs[:, None].expand(n, s, 3).reshape(-1, 3)
            ex, ed = self.pos(x), self.pe_d(d)  # the field's position input (gamma(x) or a grid encoding)
            f = feats["f"].reshape(-1, agg_dim)
            nets = self.nerfs[level]
            out: dict[str, Tensor] = {}
            if "offset" in feats:
                out["aux_offset"] = feats["offset"]
            a = code.expand(x.shape[0], -1)
            if not self.settings.aafg:
                r = nets["aa"](ex, ed, torch.cat([a, f], -1))
                out.update(sigma=r["sigma"].reshape(n, s), rgb=r["rgb"].reshape(n, s, 3))
                return out
            g = all_overlap(n, device=pts.device) if groups is None else groups if rays is None else groups.take(rays)
            shape = lambda t, idx: t.reshape(n, s, -1)[idx].reshape(-1, t.shape[-1])  # noqa: E731
            aa = self._subset(nets["aa"], g.through_aa, n, s, ex, ed, torch.cat([a, f], -1), shape)
            ai = self._subset(nets["ai"], g.through_ai, n, s, ex, ed, f, shape)
            only_aa, only_ai = g.aa_only[:, None], g.ai_only[:, None]
            sigma = torch.where(only_aa, aa["sigma"], torch.where(only_ai, ai["sigma"], aa["sigma"] + ai["sigma"]))
            blend = aa["mask"][..., None] * aa["rgb"] + ai["mask"][..., None] * ai["rgb"]
            rgb = torch.where(only_aa[..., None], aa["rgb"], torch.where(only_ai[..., None], ai["rgb"], blend))
            out.update(sigma=sigma, rgb=rgb, mask_aa=aa["mask"], mask_ai=ai["mask"])
            return out

        fn.features = features
        return fn

    @staticmethod
    def _subset(net, rays: Tensor, n, s, ex, ed, cond, shape) -> dict[str, Tensor]:
        """Run ``net`` only on the samples of the selected rays; zeros elsewhere."""
        idx = rays.nonzero()[:, 0]
        r = net(shape(ex, idx), shape(ed, idx), shape(cond, idx))
        full = {}
        for key, v in r.items():
            v = v.reshape(idx.numel(), s, *v.shape[1:])
            full[key] = torch.zeros(n, s, *v.shape[2:], dtype=v.dtype, device=v.device).index_copy(0, idx, v)
        return full

    # ----- training -------------------------------------------------------------------------
    def ray_groups(self, labels: Tensor | None, generator: torch.Generator | None) -> RayGroups | None:
        if labels is None:  # inference: every ray through both NeRFs
            return None
        if self.settings.aafg and self.settings.rrs:
            return regionwise(labels, self.settings.rrs_eps, generator)
        return all_overlap(labels.shape[0], labels == 2, labels.device)

    def extra_loss(self, out: dict, groups: RayGroups | None) -> tuple[Tensor | float, dict[str, Tensor]]:
        loss, stats = 0.0, {}
        if self.settings.aafg:
            ar = groups.audio_region.float()
            l_m = sum(
                _masked_mse(o["mask_aa"], ar, groups.through_aa) + _masked_mse(o["mask_ai"], 1 - ar, groups.through_ai)
                for o in out.values()
            )
            loss = loss + self.settings.lambda_m * l_m
            stats["l_m"] = l_m.detach()
        if self.warper is not None:
            l_o = sum(o["aux_offset"].mean() for o in out.values()) / len(out)
            loss = loss + self.settings.lambda_o * l_o
            stats["l_o"] = l_o.detach()
        return loss, stats


def _masked_mse(pred: Tensor, target: Tensor, rows: Tensor) -> Tensor:
    if not rows.any():
        return pred.sum() * 0.0
    return F.mse_loss(pred[rows], target[rows])


__all__ = ["AENeRFModel", "AENeRFSettings", "References"]
