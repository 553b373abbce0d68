"""The AE-NeRF network: reference features + (audio-aware) warper + AAA (or slot attention)
feeding the dual NeRF of Audio-Aligned Face Generation, with RRS and the loss of eq. 9-12.

Resolutions of points the paper leaves open (METHOD.md):

- Coarse and fine levels each have their own NeRF MLPs (F_aa, F_ai), as in NeRF/DFRF;
  the reference CNN, AudioNet, warper and aggregation are shared by both levels.
- F_aa gets [gamma(x), a, f~] into its trunk and gamma(d) at the colour layer; F_ai the same
  without a. Both predict colour, density and a parsing mask m.
- Composition per sample: overlap rays c = m_aa c_aa + m_ai c_ai, sigma = sigma_aa +
  sigma_ai (no renormalisation of m_aa + m_ai, as eq. 7 is written); rays of one NeRF only
  take that NeRF's c and sigma.
- Masks are volume-rendered with the ray's composite weights; the remaining transmittance
  counts as background, which belongs to the audio-decoupled region (m_aa -> 0, m_ai -> 1).
  L_m is the squared error of the rendered m_aa against 1[r in Omega_ar] over the rays
  F_aa renders, plus that of m_ai against 1[r in Omega_ad] over the rays F_ai renders.
- Losses are means over rays (the paper's sums up to a constant), over both levels.
- "w/o AAFG": one F_aa (no mask head, no L_m) renders every ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aenerf.engine.audio import AudioNet
from aenerf.engine.encoding import PositionalEncoding
from aenerf.engine.mlp import NeRFMLP
from aenerf.engine.references import RefEncoder, project_to_refs, sample_features
from aenerf.engine.render import render_rays
from aenerf.engine.slot_attention import SlotAggregation
from aenerf.modules.aaa import AudioAwareAggregation
from aenerf.modules.rrs import RayGroups, all_overlap, regionwise
from aenerf.modules.warper import Warper

#: the aenerf config keys that shape the network (stored in checkpoints to rebuild it)
ARCH_KEYS = ("aaa", "aafg", "warper", "n_refs", "feat_dim", "cnn_width", "cnn_layers", "token_dim", "heads",
             "agg_dim", "slot_iters", "audio_dim", "warper_width", "width", "depth", "pe_x", "pe_d")
MASK_BACKGROUNDS = {"mask_aa": 0.0, "mask_ai": 1.0}


@dataclass
class Context:
    """Per-frame conditioning: target audio code, the L references and the scene bounds."""

    a: Tensor            # (A,)
    a_ref: Tensor        # (L, A)
    maps: Tensor         # (L, C, H, W) reference feature maps
    ref_c2w: Tensor      # (L, 4, 4)
    intrinsics: Tensor   # (3,)
    near: float
    far: float


class AENeRFModel(nn.Module):
    def __init__(self, arch: dict, audio_channels: int, fine: bool = True, train_cfg=None, loss_cfg=None):
        super().__init__()
        self.arch = {k: arch[k] for k in ARCH_KEYS}
        self.audio_channels, self.fine = int(audio_channels), bool(fine)
        self.train_cfg, self.loss_cfg = train_cfg, loss_cfg
        A = arch["audio_dim"]
        self.pe_x, self.pe_d = PositionalEncoding(arch["pe_x"]), PositionalEncoding(arch["pe_d"])
        self.audio_net = AudioNet(audio_channels, A)
        self.ref_encoder = RefEncoder(arch["feat_dim"], arch["cnn_width"], arch["cnn_layers"])
        self.warper = Warper(self.pe_x.out_dim, A, arch["warper_width"]) if arch["warper"] else None
        if arch["aaa"]:
            self.aggregator = AudioAwareAggregation(A, self.ref_encoder.out_dim, arch["token_dim"], arch["heads"], arch["agg_dim"])
        else:
            self.aggregator = SlotAggregation(self.ref_encoder.out_dim, arch["token_dim"], arch["agg_dim"], iters=arch["slot_iters"])
        levels = ("coarse", "fine") if fine else ("coarse",)
        mk = lambda cond, mask: NeRFMLP(self.pe_x.out_dim, self.pe_d.out_dim, cond, arch["width"], arch["depth"], with_mask=mask)  # noqa: E731
        self.nerfs = nn.ModuleDict()
        for level in levels:
            pair = {"aa": mk(A + arch["agg_dim"], arch["aafg"])}
            if arch["aafg"]:
                pair["ai"] = mk(arch["agg_dim"], True)
            self.nerfs[level] = nn.ModuleDict(pair)

    # ----- conditioning ---------------------------------------------------------------------
    def context(self, audio: Tensor, ref_audio: Tensor, ref_images: Tensor, ref_c2w: Tensor, intrinsics: Tensor,
                near: float, far: float, maps: Tensor | None = None) -> Context:
        """``audio`` (T, C) target window, ``ref_audio`` (L, T, C), ``ref_images`` (L, H, W, 3)."""
        codes = self.audio_net(torch.cat([audio[None], ref_audio]))
        if maps is None:
            maps = self.ref_encoder(ref_images)
        return Context(codes[0], codes[1:], maps, ref_c2w, intrinsics, float(near), float(far))

    # ----- the field --------------------------------------------------------------------------
    def aggregate(self, ctx: Context, x: Tensor, ex: Tensor, d: Tensor) -> tuple[Tensor, Tensor | None]:
        """f~ (P, agg_dim) for points ``x`` (P, 3) seen along ``d`` (P, 3); and warper offsets (L, P, 2)."""
        uv, d_ref = project_to_refs(x, ctx.ref_c2w, ctx.intrinsics)
        offsets = None
        if self.warper is not None:
            offsets = self.warper(ex, ctx.a, ctx.a_ref, d, d_ref)
            uv = uv + offsets
        feats = sample_features(ctx.maps, uv).permute(1, 0, 2)  # (P, L, C)
        if self.arch["aaa"]:
            return self.aggregator(ctx.a, ctx.a_ref, feats), offsets
        return self.aggregator(feats), offsets

    def field(self, ctx: Context, groups: RayGroups | None):
        def fn(pts: Tensor, dirs: Tensor, level: str) -> dict[str, Tensor]:
            n, s = pts.shape[:2]
            x = pts.reshape(-1, 3)
            d = dirs[:, None].expand(n, s, 3).reshape(-1, 3)
            ex, ed = self.pe_x(x), self.pe_d(d)
            f, offsets = self.aggregate(ctx, x, ex, d)
            nets = self.nerfs[level]
            out: dict[str, Tensor] = {}
            if offsets is not None:
                out["aux_offset"] = offsets.pow(2).sum(-1).add(1e-12).sqrt().mean(0).reshape(n, s)
            a = ctx.a.expand(x.shape[0], -1)
            if not self.arch["aafg"]:
                r = nets["aa"](ex, ed, torch.cat([a, f], -1))
                out.update(sigma=r["sigma"].reshape(n, s), rgb=r["rgb"].reshape(n, s, 3))
                return out
            shape = lambda t, idx: t.reshape(n, s, -1)[idx].reshape(-1, t.shape[-1])  # noqa: E731
            aa = self._subset(nets["aa"], groups.through_aa, n, s, ex, ed, torch.cat([a, f], -1), shape)
            ai = self._subset(nets["ai"], groups.through_ai, n, s, ex, ed, f, shape)
            only_aa, only_ai = groups.aa_only[:, None], groups.ai_only[:, None]
            sigma = torch.where(only_aa, aa["sigma"], torch.where(only_ai, ai["sigma"], aa["sigma"] + ai["sigma"]))
            blend = aa["mask"][..., None] * aa["rgb"] + ai["mask"][..., None] * ai["rgb"]
            rgb = torch.where(only_aa[..., None], aa["rgb"], torch.where(only_ai[..., None], ai["rgb"], blend))
            out.update(sigma=sigma, rgb=rgb, mask_aa=aa["mask"], mask_ai=ai["mask"])
            return out

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

    # ----- rendering and training -------------------------------------------------------------
    def render(self, ctx: Context, rays_o: Tensor, rays_d: Tensor, bg: Tensor, groups: RayGroups | None,
               perturb: bool, generator: torch.Generator | None = None) -> dict:
        tc = self.train_cfg
        return render_rays(self.field(ctx, groups), rays_o, rays_d, ctx.near, ctx.far, bg, int(tc.n_coarse),
                           int(tc.n_fine) if self.fine else 0, perturb, generator, MASK_BACKGROUNDS)

    def render_fn(self, ctx: Context):
        """``fn(rays_o, rays_d, bg) -> rgb`` for inference: every ray through both NeRFs."""
        def fn(rays_o, rays_d, bg):
            out = self.render(ctx, rays_o, rays_d, bg, all_overlap(rays_o.shape[0], device=rays_o.device), perturb=False)
            return out["fine" if self.fine else "coarse"]["rgb"]
        return fn

    def groups_for(self, labels: Tensor, generator: torch.Generator | None) -> RayGroups:
        ar = labels == 2
        if self.arch["aafg"] and self.loss_cfg["rrs"]:
            return regionwise(labels, float(self.loss_cfg["rrs_eps"]), generator)
        return all_overlap(labels.shape[0], ar, labels.device)

    def training_step(self, batch: dict, step: int) -> tuple[Tensor, dict[str, float]]:
        g = batch.get("generator")
        ctx = self.context(batch["audio"], batch["ref_audio"], batch["ref_images"], batch["ref_c2w"],
                           batch["intrinsics"], batch["near"], batch["far"])
        groups = self.groups_for(batch["label"], g)
        out = self.render(ctx, batch["rays_o"], batch["rays_d"], batch["bg"], groups, bool(self.train_cfg.perturb), g)
        target = batch["rgb"]
        l_p = sum(F.mse_loss(o["rgb"], target) for o in out.values())
        loss, stats = l_p, {}
        if self.arch["aafg"]:
            ar = groups.audio_region.float()
            l_m = sum(_masked_mse(o["mask_aa"], ar, groups.through_aa) + _masked_mse(o["mask_ai"], 1 - ar, groups.through_ai)
                      for o in out.values())
            loss = loss + float(self.loss_cfg["lambda_m"]) * l_m
            stats["l_m"] = float(l_m.detach())
        if self.warper is not None:
            l_o = sum(o["aux_offset"].mean() for o in out.values()) / len(out)
            loss = loss + float(self.loss_cfg["lambda_o"]) * l_o
            stats["l_o"] = float(l_o.detach())
        last = out["fine" if self.fine else "coarse"]
        mse = F.mse_loss(last["rgb"].detach(), target)
        stats.update(l_p=float(l_p.detach()), psnr=float(-10 * torch.log10(mse.clamp(min=1e-10))))
        return loss, stats


def _masked_mse(pred: Tensor, target: Tensor, rows: Tensor) -> Tensor:
    if not rows.any():
        return pred.sum() * 0.0
    return F.mse_loss(pred[rows], target[rows])


__all__ = ["AENeRFModel", "Context", "ARCH_KEYS"]
