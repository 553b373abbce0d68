"""ER-NeRF (Li et al., ICCV 2023, "Efficient Region-Aware Neural Radiance Fields for High-Fidelity
Talking Portrait Synthesis") on the shared engine: trained per identity from scratch (no base model).

The network follows the official ``Fictionarry/ER-NeRF`` (commit 0cf72d8) ``nerf_triplane/network.py``
``NeRFNetwork``, head stage (no torso model, as for every method here):

* **Tri-plane hash encoding** (``encode_x``): three 2D hash grids over the (x, y), (y, z) and
  (x, z) planes, 12 levels of 1 feature, base resolution 64, 2^14 rows, finest 512 x bound, in
  torch-ngp's layout (:class:`~aebench.engine.grid_encoding.NGPTriPlane`); the grids span the
  training cameras' view volume (``bound``'s box).
* **Region Attention Module** (``density``): the audio code is scaled channel-wise by
  ``aud_ch_att_net(enc_x)`` (2 layers x 64), the eye feature by ``sigmoid(eye_att_net(enc_x))``
  (2 layers x 16); their norms are the ambient outputs the losses regularise.
* **Sigma net** 3 layers x 64 on [enc_x, audio, eye] -> exp density and a 64-d geometry feature;
  **colour net** 2 layers x 64 on [SH(d) (degree 4, 16 values), geometry, individual code] ->
  ``sigmoid * (1 + 2e-3) - 1e-3``; every MLP without biases (``MLP``).
* **Uncertainty** ``softplus(unc_net(enc_x.detach()))`` (2 layers x 32) and the training loss of
  ``nerf_triplane/utils.py`` ``train_step``: the per-ray MSE weighted by the uncertainty's softmax
  as the step factor grows, the uncertainty's own loss in the face box, ambient losses outside
  (audio) and inside (eye x audio) the face, the opacity entropy (1e-4), and every 16th step the
  smoothness of the ambient and uncertainty outputs under a 1e-3 jitter of the samples.
* **Individual codes**: one learned 4-d code per training frame (10000 x 4, randn x 0.1); rendering
  uses code 0, as the official test does.
* **Audio**: AudioNet to a 32-d code and AudioAttNet over the 8 frames ``[i - 4, i + 4)``
  (``att`` 2), reading all 32 channels (:mod:`aebench.engine.audio`).

Deviations (the rows of ``baselines/README.md``): the eye feature is the eye aspect ratio of the
68-point landmarks, normalised as OpenFace's AU45 is used (0 open, 1 closed: ``1 - EAR / EAR_open``
with EAR_open the training clip's median, clipped to [0, 1]) where the official reads AU45 from
OpenFace; the samples are the engine's (stratified, coarse/fine, the occupancy grid) where the
official marches its CUDA occupancy grid with at most 16 samples per ray; the face box is the
prepared masks' head box where the official takes the landmarks' box. The lip fine-tune stage
(``ernerf.lips_share`` of the iterations: LPIPS on the mouth's square and on random patches, every
other step each) needs the LPIPS AlexNet weights; without them training is refused naming the fix
(or ``ernerf.lips_share=0``, the head stage alone, as the shipped protocols' rows set it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.engine.grid_encoding import NGPTriPlane
from aebench.engine.method import NeRFMethod
from aebench.engine.model import NeRFModel, opacity_entropy
from aebench.engine.settings import NeRFSettings
from aebench.engine.sh import sh_encode
from aebench.settings import TrainSettings, setting

#: the official ``max_steps``: the eye ambient sum is divided by it (``ambient_eye / opt.max_steps``)
AMBIENT_EYE_STEPS = 16
#: the uncertainty-weighted loss keeps this share unweighted (``alpha = 0.2`` in ``train_step``)
UNC_FLOOR = 0.2
#: AdamW's default weight decay, which the official optimiser applies to the grids (their groups set none)
GRID_DECAY = 1e-2
#: the official AudioAttNet group's weight decay (``get_params``: lr_net x 5, weight_decay 1e-4)
ATT_DECAY = 1e-4
#: the ambient/uncertainty smoothness regulariser runs every this many global steps, weighted by this x step factor
SMOOTH_EVERY, SMOOTH_WEIGHT = 16, 1e-5
#: the lip stage's LPIPS weights: on the mouth's square (``0.01``) and on the random patches (``0.1``)
LPIPS_LIPS, LPIPS_PATCH = 0.01, 0.1
#: the lip stage's patches are padded to at least this side before LPIPS (``train_step`` pads the mouth's square)
LPIPS_MIN_SIDE = 32
#: lip landmarks of the 68-point scheme (``lips = slice(48, 60)``)
LIPS = slice(48, 60)
#: eye landmarks of the 68-point scheme (right, left): p1..p6 around each eye
EYES = (slice(36, 42), slice(42, 48))


@dataclass(frozen=True)
class ERNeRFSettings(NeRFSettings):
    """``cfg.ernerf``: ER-NeRF's network and loss (defaults: the official ``main.py`` and
    ``NeRFNetwork``). Its tri-plane is its network: ``field.*`` does not act on it."""

    audio_dim: int = setting(32, low=1)
    """AudioNet code width (``audio_dim`` 32)."""
    att_dims: int = setting(32, low=1)
    """Channels of the audio code AudioAttNet reads (all 32 in ER-NeRF)."""
    density: str = setting("exp", choices=("exp", "softplus"))
    """Density activation: ``exp`` (the official ``torch.exp``) or ``softplus``."""
    triplane: list[int] = setting([12, 1, 14, 64, 512])
    """Each plane's hash grid: levels, features per level, log2 table rows, base and finest resolution."""
    hidden: int = setting(64, low=1)
    """Width of the sigma net (3 layers) and colour net (2 layers)."""
    geo_feat: int = setting(64, low=1)
    """Geometry feature the sigma net passes to the colour net."""
    sh_degree: int = setting(4, low=1, high=4)
    """Spherical-harmonics degree of the view direction (degree^2 values)."""
    ind_dim: int = setting(4, low=0)
    """Individual code width (0: none)."""
    ind_num: int = setting(10000, low=1)
    """Individual codes (at least the training frames)."""
    eye: bool = setting(True)
    """Condition on the eye feature (``exp_eye``, set by the official ``-O``)."""
    unc_loss: bool = setting(True, arch=False)
    """The uncertainty-weighted loss (``unc_loss`` 1)."""
    lambda_amb: float = setting(1.0e-4, low=0.0, arch=False)
    """Weight of the ambient losses (``lambda_amb``; 0 turns both off)."""
    entropy: float = setting(1.0e-4, low=0.0, arch=False)
    """Weight of the opacity entropy in ER-NeRF's loss (1e-4)."""
    lips_share: float = setting(0.2, low=0.0, high=0.9, arch=False)
    """Share of the iterations spent in the lip fine-tune stage after the head stage (official: 25k
    after 100k); 0: the head stage alone. It needs the LPIPS AlexNet weights (``lpips_alexnet``):
    without them training is refused with the fix (a cell's id must say which stages ran)."""
    lips_patch: int = setting(32, low=2, arch=False)
    """Side of the random patches of the lip stage's every other step (``--patch_size 32``)."""
    grid_lr_mult: float = setting(10.0, low=0.0, arch=False)
    """The grids' lr = ``train.lr`` x this (official: lr 1e-2 for the grids, lr_net 1e-3 for the rest)."""


class MLP(nn.Module):
    """ER-NeRF's ``MLP``: ``layers`` bias-free linear layers with ReLU between them."""

    def __init__(self, dim_in: int, dim_out: int, hidden: int, layers: int):
        super().__init__()
        dims = [dim_in] + [hidden] * (layers - 1) + [dim_out]
        self.net = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i < len(self.net) - 1:
                x = F.relu(x)
        return x


def eye_aspect_ratio(landmarks: Tensor) -> Tensor:
    """(..., 68, 2) landmarks -> (...) mean over both eyes of (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)."""
    ratios = []
    for eye in EYES:
        p = landmarks[..., eye, :]
        vertical = (p[..., 1, :] - p[..., 5, :]).norm(dim=-1) + (p[..., 2, :] - p[..., 4, :]).norm(dim=-1)
        ratios.append(vertical / (2.0 * (p[..., 0, :] - p[..., 3, :]).norm(dim=-1).clamp_min(1e-6)))
    return torch.stack(ratios, -1).mean(-1)


class ERNeRFModel(NeRFModel):
    """ER-NeRF's ``NeRFNetwork`` (head) on the engine's samplers; ``refs`` carry the frame's eye
    feature and individual code (:meth:`at_frame`)."""

    def __init__(self, settings: ERNeRFSettings, audio_channels: int, train: TrainSettings):
        super().__init__(settings, audio_channels, train)
        s = settings
        self.pos = NGPTriPlane(*s.triplane)
        d_in = self.pos.out_dim
        self.sigma_net = MLP(d_in + s.audio_dim + int(s.eye), 1 + s.geo_feat, s.hidden, 3)
        self.color_net = MLP(s.sh_degree**2 + s.geo_feat + s.ind_dim, 3, s.hidden, 2)
        self.unc_net = MLP(d_in, 1, 32, 2)
        self.aud_ch_att_net = MLP(d_in, s.audio_dim, 64, 2)
        self.eye_att_net = MLP(d_in, 1, 16, 2)
        self.individual_codes = nn.Parameter(torch.randn(s.ind_num, s.ind_dim) * 0.1) if s.ind_dim else None
        #: the training clip's median eye aspect ratio (eyes open), kept in checkpoints
        self.register_buffer("ear_open", torch.tensor(0.0))

    @property
    def fast(self) -> bool:
        return True  # a grid encoding: set_scene_box places it over the training cameras

    def param_groups(self) -> list[dict]:
        """The engine's groups with the grids at ``grid_lr_mult`` and the official AdamW weight
        decays (``get_params``: the grids' groups set none, so AdamW's default applies)."""
        groups = super().param_groups()
        for g in groups:
            if g.get("name") == "att_net":
                g["decoupled_decay"] = ATT_DECAY
            elif g.get("name") == "grid":
                g.update(lr_mult=self.settings.grid_lr_mult, decoupled_decay=GRID_DECAY)
        return groups

    # ----- per-frame conditioning --------------------------------------------------------
    def fit_statistics(self, views: list) -> None:
        frames = max(v.n for v in views)
        if self.settings.ind_dim and frames > self.settings.ind_num:
            raise ValueError(f"ernerf.ind_num ({self.settings.ind_num}) must be at least the training frames ({frames})")
        if self.settings.eye:
            if any(v.landmarks is None for v in views):
                raise ValueError("ernerf.eye needs the identity's landmarks (landmarks.npy)")
            ear = torch.cat([eye_aspect_ratio(v.landmarks.float()) for v in views])
            self.ear_open.fill_(float(ear.median()))

    def eye_feature(self, landmarks: Tensor) -> Tensor:
        """The AU45-like blink value in [0, 1] (0 open, 1 closed) of (68, 2) landmarks."""
        return (1.0 - eye_aspect_ratio(landmarks.float()) / self.ear_open.clamp_min(1e-6)).clamp(0.0, 1.0)

    def at_frame(self, refs, landmarks: Tensor | None, index: int | None, generator: torch.Generator | None = None) -> dict:
        eye = None
        if self.settings.eye:
            if landmarks is None:
                raise ValueError("ernerf.eye needs the frame's landmarks")
            eye = self.eye_feature(landmarks).reshape(1)
            if index is not None and generator is not None:  # training: the official jitter of +-0.05
                eye = eye + (torch.rand(1, generator=generator, device=generator.device).to(eye) - 0.5) / 10
        code = None
        if self.individual_codes is not None:
            code = self.individual_codes[index if index is not None else 0]
        return {"eye": eye, "ind": code}

    # ----- the field ---------------------------------------------------------------------
    def density_parts(self, enc_x: Tensor, code: Tensor, eye: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sigma (P,), geometry (P, G), audio ambient |att| (P,) and eye attention (P,) of (P, D) features."""
        aud_att = self.aud_ch_att_net(enc_x)
        parts = [enc_x, code.expand(enc_x.shape[0], -1) * aud_att]
        eye_att = torch.sigmoid(self.eye_att_net(enc_x))
        if eye is not None:
            parts.append(eye.reshape(1, 1) * eye_att)
        h = self.sigma_net(torch.cat(parts, -1))
        sigma = torch.exp(h[:, 0]) if self.settings.density == "exp" else F.softplus(h[:, 0])
        return sigma, h[:, 1:], aud_att.norm(dim=-1), eye_att[:, 0]

    def field(self, code: Tensor, refs, groups):
        frame = refs or {}
        eye, ind = frame.get("eye"), frame.get("ind")
        unc = self.training and self.settings.unc_loss and torch.is_grad_enabled()

        if self.training:  # what the every-16th-step regulariser of image_loss evaluates again
            self._conditioning = (code, eye)

        def fn(points: Tensor, dirs: Tensor, level: str, rays: Tensor | None = None) -> dict:
            n, s = points.shape[:2]
            enc_x = self.pos(points.reshape(-1, 3))
            sigma, geo, amb_aud, amb_eye = self.density_parts(enc_x, code, eye)
            d = dirs[:, None].expand(n, s, 3).reshape(-1, 3)
            h = [sh_encode(d, self.settings.sh_degree), geo]
            if ind is not None:
                h.append(ind.expand(enc_x.shape[0], -1))
            rgb = torch.sigmoid(self.color_net(torch.cat(h, -1))) * (1 + 2e-3) - 1e-3
            out = {"sigma": sigma.reshape(n, s), "rgb": rgb.reshape(n, s, 3)}
            if self.training:
                out["sum_amb_aud"] = amb_aud.reshape(n, s)
                out["sum_amb_eye"] = amb_eye.reshape(n, s)
            if unc:
                out["unc"] = F.softplus(self.unc_net(enc_x.detach()))[:, 0].reshape(n, s)
            return out

        return fn

    # ----- the loss ----------------------------------------------------------------------
    def image_loss(self, out: dict, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """ER-NeRF's ``train_step`` on each level's rays, summed: the head stage's (``finetune_lips``
        off), or in the lip stage (``phase`` "lips") its MSE and LPIPS without the uncertainty terms
        and the regulariser."""
        if self.phase == "lips":
            return self.lips_loss(out, batch, step)
        s = self.settings
        factor = min((self.global_step(step) + 1) / max(self.train_cfg.iters, 1), 1.0)  # step_factor
        face = face_mask(batch)
        total, stats = 0.0, {}
        for o in out.values():
            err = o["rgb"] - batch["rgb"]
            per_ray = (err**2).mean(-1)
            if s.unc_loss and "unc" in o:
                unc = o["unc"]
                weight = F.softmax(unc, dim=-1) * unc.shape[0]
                per_ray = per_ray * (UNC_FLOOR + (1 - UNC_FLOOR) * ((1 - factor) + factor * weight.detach()).clamp(0, 10))
                beta = unc + 1
                l_u = (err.norm(dim=-1).detach() / (2 * beta**2) + torch.log(beta) ** 2 / 2) * face
                per_ray = per_ray + factor * l_u + 1e-3 * factor * unc * (~face)
                stats["unc"] = unc.detach().mean()
            loss = per_ray.mean() + s.entropy * opacity_entropy(o["acc"])
            if s.lambda_amb > 0 and "sum_amb_aud" in o:
                amb = factor * s.lambda_amb
                aud = o["sum_amb_aud"]
                loss = loss + amb * (aud * (~face)).mean()
                if s.eye:
                    loss = loss + amb * ((o["sum_amb_eye"] / AMBIENT_EYE_STEPS) * aud.detach() * face).mean()
            total = total + loss
        if (self.global_step(step) + 1) % SMOOTH_EVERY == 0 and self.training:
            last = out["fine"] if "fine" in out else out["coarse"]
            points = batch["rays_o"][:, None] + batch["rays_d"][:, None] * last["z"][:, :-1, None]  # the field's samples
            code, eye = self._conditioning
            reg = self.smoothness(points.reshape(-1, 3).detach(), code.detach(), eye, batch.get("generator"))
            stats["l_smooth"] = reg.detach()
            total = total + factor * SMOOTH_WEIGHT * reg
        return total, stats

    def lips_loss(self, out: dict, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The lip stage's step (``flip_finetune_lips``): per-ray MSE, opacity entropy, ambient
        losses, and LPIPS on the batch's patches: 0.01 on the mouth's square (padded to 32) or 0.1
        on the random patches, every other step."""
        s = self.settings
        factor = min((self.global_step(step) + 1) / max(self.train_cfg.iters, 1), 1.0)
        face = face_mask(batch)
        k, h, w = batch["patches"]
        total, stats = 0.0, {}
        for o in out.values():
            loss = ((o["rgb"] - batch["rgb"]) ** 2).mean(-1).mean() + s.entropy * opacity_entropy(o["acc"])
            pred = o["rgb"].reshape(k, h, w, 3).permute(0, 3, 1, 2) * 2 - 1
            gt = batch["rgb"].reshape(k, h, w, 3).permute(0, 3, 1, 2) * 2 - 1
            # padded to 32 as the official pads the lip square (its patches are 32 already; smaller
            # ones, at small working sizes, would be too small for AlexNet)
            pad_h, pad_w = max(0, (LPIPS_MIN_SIDE - h + 1) // 2), max(0, (LPIPS_MIN_SIDE - w + 1) // 2)
            pred, gt = (F.pad(x, (pad_w, pad_w, pad_h, pad_h)) for x in (pred, gt))
            l_lpips = lips_network()(pred, gt).mean()
            loss = loss + (LPIPS_LIPS if batch["lips"] else LPIPS_PATCH) * l_lpips
            stats["l_lpips"] = l_lpips.detach()
            if s.lambda_amb > 0 and "sum_amb_aud" in o:
                amb, aud = factor * s.lambda_amb, o["sum_amb_aud"]
                loss = loss + amb * (aud * (~face)).mean()
                if s.eye:
                    loss = loss + amb * ((o["sum_amb_eye"] / AMBIENT_EYE_STEPS) * aud.detach() * face).mean()
            total = total + loss
        return total, stats

    def _ambient(self, points: Tensor, code: Tensor, eye: Tensor | None) -> dict[str, Tensor]:
        """The uncertainty, audio ambient and eye attention (P,) at points (P, 3)."""
        enc_x = self.pos(points)
        out = {"amb_aud": self.aud_ch_att_net(enc_x).norm(dim=-1), "amb_eye": torch.sigmoid(self.eye_att_net(enc_x))[:, 0]}
        out["unc"] = F.softplus(self.unc_net(enc_x.detach()))[:, 0]
        return out

    def smoothness(self, points: Tensor, code: Tensor, eye: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """ER-NeRF's regulariser (``train_step``, every 16th step): the MSE between the uncertainty
        and ambient outputs at the samples and at the samples moved by U(-1e-3, 1e-3) per axis
        (gradients through the moved ones)."""
        s = self.settings
        with torch.no_grad():
            raw = self._ambient(points, code, eye)
        moved = self._ambient(points + jitter(points, generator), code, eye)
        keys = (["unc"] if s.unc_loss else []) + (["amb_aud"] + (["amb_eye"] if s.eye else []) if s.lambda_amb > 0 else [])
        return sum((F.mse_loss(moved[k], raw[k]) for k in keys), points.new_zeros(()))


def jitter(points: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(-1e-3, 1e-3) per coordinate of (P, 3) points (the regulariser's ``xyz_delta``)."""
    u = torch.rand(points.shape, generator=generator, device=points.device, dtype=points.dtype)
    return (u * 2 - 1) * 1e-3


def face_mask(batch: dict) -> Tensor:
    """(N,) True for the batch's rays inside the target frame's face box (inclusive pixel bounds)."""
    x0, y0, x1, y1 = batch["views"].face_box[batch["frame_index"]]
    px = batch["uv"] - 0.5
    return (px[:, 0] >= x0) & (px[:, 0] <= x1) & (px[:, 1] >= y0) & (px[:, 1] <= y1)


@lru_cache(maxsize=1)
def lips_network() -> nn.Module | None:
    """The LPIPS (AlexNet) network of the lip stage from the weights store, frozen; None when its
    weights are absent."""
    from aebench.lpips_net import lpips_from_store
    from aebench.weights import WeightsMissing

    try:
        net = lpips_from_store()
    except WeightsMissing:
        return None
    return net.requires_grad_(False)


def lips_square(landmarks: Tensor, h: int, w: int) -> tuple[int, int, int, int]:
    """The official lip rectangle of (68, 2) pixel landmarks: the lips' box (points 48-59) made
    square about its centre (half side = the longer side // 2), clipped to the image;
    (x0, x1, y0, y1) with exclusive ends."""
    lips = landmarks[LIPS]
    x0, x1 = int(lips[:, 0].min()), int(lips[:, 0].max())
    y0, y1 = int(lips[:, 1].min()), int(lips[:, 1].max())
    cx, cy, half = (x0 + x1) // 2, (y0 + y1) // 2, max(x1 - x0, y1 - y0) // 2
    return max(0, cx - half), min(w, cx + half), max(0, cy - half), min(h, cy + half)


class ERNeRF(NeRFMethod):
    name = "ernerf"
    has_base_model = False
    settings_cls = ERNeRFSettings
    model_cls = ERNeRFModel
    #: side of the lip stage's random patches (``ernerf.lips_patch``, set by :meth:`finetune`)
    lips_patch: int = 32

    def finetune(self, identity, clip, base, cfg, run_dir):
        """The head stage, then (``ernerf.lips_share`` of the iterations, when the LPIPS weights are
        present) the lip stage from the head's weights, continuing its global step."""
        from aebench.weights import fix_command

        s, train = self.settings(cfg), self.train_settings(cfg)
        lips = round(s.lips_share * train.iters) if base is None else 0
        if lips == 0:
            return super().finetune(identity, clip, base, cfg, run_dir)
        run_dir = Path(run_dir)
        if lips_network() is None:  # refused, not skipped: the cell's id says a lip stage ran
            raise ValueError(
                f"ernerf: the lip fine-tune stage ({lips} of {train.iters} iterations, ernerf.lips_share={s.lips_share}) needs "
                f"the LPIPS AlexNet weights, absent: {fix_command('lpips_alexnet')}; or set ernerf.lips_share=0 to train "
                "the head stage alone (what the shipped protocols' ER-NeRF rows do)"
            )
        self.lips_patch = s.lips_patch  # read by batch_fn in the lip stage
        head = self._train([clip], cfg, run_dir / "head", None, "finetune", iters=train.iters - lips)
        return self._train([clip], cfg, run_dir, head, "lips", iters=lips)

    def batch_fn(self, views: list, train: TrainSettings, n_refs: int, phase: str = "finetune"):
        """In the lip stage, every other step (from the first) all pixels of the target frame's lip
        square, the others ``train.batch_rays // lips_patch^2`` random patches (at least one)."""
        if phase != "lips":
            return super().batch_fn(views, train, n_refs, phase)
        from aebench.engine.views import pixel_batch

        def fn(step: int, g: torch.Generator) -> dict:
            dev = g.device
            v = views[int(torch.randint(len(views), (1,), generator=g, device=dev))]
            frame = int(torch.randint(v.n, (1,), generator=g, device=dev))
            h, w = v.hw
            x0, x1, y0, y1 = lips_square(v.landmarks[frame].float(), h, w)
            square = step % 2 == 0 and x1 > x0 and y1 > y0  # a mouth outside the image: a patch step instead
            if square:
                ys, xs = torch.meshgrid(torch.arange(y0, y1, device=dev), torch.arange(x0, x1, device=dev), indexing="ij")
                patches = (1, y1 - y0, x1 - x0)
            else:
                p = min(self.lips_patch, h - 1, w - 1)
                k = max(1, train.batch_rays // p**2)
                top = torch.randint(0, h - p, (k,), generator=g, device=dev)
                left = torch.randint(0, w - p, (k,), generator=g, device=dev)
                dy, dx = torch.meshgrid(torch.arange(p, device=dev), torch.arange(p, device=dev), indexing="ij")
                ys, xs = top[:, None, None] + dy, left[:, None, None] + dx
                patches = (k, p, p)
            batch = pixel_batch(v, frame, xs.reshape(-1), ys.reshape(-1))
            batch.update(views=v, frame_index=frame, generator=g, refs=None, patches=patches, lips=square)
            return batch

        return fn
