"""Golden fixtures from the official ER-NeRF code (``Fictionarry/ER-NeRF``): imports its
``nerf_triplane`` network and trainer from a checkout given by path (never copied here), runs them
in float64 on fixed seeded inputs, with every parameter set from
``tests/baselines/golden_weights.py``'s rule, and writes ``tests/baselines/golden/ernerf_*.npz``
that ``tests/baselines/test_golden_ernerf.py`` compares aebench's ``ernerf`` with.

    python tools/golden_ernerf.py --ernerf PATH/TO/Fictionarry/ER-NeRF

What runs is the official code, except three CUDA extensions this CPU cannot build, replaced by
modules installed under their names before the official code imports them:

* ``gridencoder``: a transcription of ``gridencoder/src/gridencoder.cu``'s forward (hash grid,
  ``align_corners=False``; per-level scale in float32 as ``exp2f``; out-of-box inputs give 0) with
  the official ``GridEncoder``'s constructor logic (table sizes, offsets), loop for loop over the
  corners; autograd differentiates it;
* ``shencoder``: evaluates the official ``shencoder/src/shencoder.cu`` expressions themselves
  (read from the checkout, ``outputs[k] = ...`` for k < degree^2);
* ``raymarching``: ``march_rays_train`` and ``near_far_from_aabb`` return the fixture's samples
  (the sampler is not compared: aebench samples with its own engine, a row of the deviations
  table), and ``composite_rays_train_triplane`` is a transcription of its CUDA forward (weights,
  the unweighted ambient sums, the uncertainty sum, the T < 1e-4 stop), differentiated by autograd.

Packages only the official trainer's other paths use (``tensorboardX``, ``trimesh``, ``mcubes``,
``torch_ema``, ``rich``) are replaced by empty modules when absent.

Fixtures: ``ernerf_encoders.npz`` (``encode_x``: the tri-plane, points partly outside the box;
``encoder_dir``: SH degree 4), ``ernerf_network.npz`` (``encode_audio`` on an 8-frame window at the
clip start, ``forward`` in training mode: sigma, colour, ambient outputs, uncertainty) and
``ernerf_step.npz`` (one ``Trainer.train_step`` of the head stage on a few rays at global step 5 of
8: its image, weights sum, ambient and uncertainty sums, loss and every parameter's gradient) and
``ernerf_step16.npz`` (the same at step 16 of 32, where the smoothness regulariser runs; its
``torch.rand`` jitter is recorded), and ``ernerf_lips_rect.npz`` (the lip stage's square, the official
``provider.py`` block run as written on random landmarks).
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "baselines"))
from golden_weights import summary, weight  # noqa: E402  (the weight rule the tests share)

SEED = 0
#: the one-step scene: rays, samples per ray, clip frames, the global step (not a multiple of 16, where
#: the official regulariser would run) and the official iters (step factor 5 / 8)
STEP = {"n_rays": 6, "samples": 8, "frames": 12, "index": 2, "global_step": 5, "iters": 8}
SCENE: dict[str, torch.Tensor] = {}  # the samples the raymarching replacement hands to the official code


class _Empty(types.ModuleType):
    """A stand-in for a package only unused paths of the official trainer import."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


def grid_module() -> types.ModuleType:
    mod = types.ModuleType("gridencoder")
    primes = (1, 2654435761, 805459861)

    class GridEncoder(nn.Module):
        def __init__(self, input_dim=3, num_levels=16, level_dim=2, per_level_scale=2, base_resolution=16, log2_hashmap_size=19,
                     desired_resolution=None, gridtype="hash", align_corners=False):  # fmt: skip
            super().__init__()
            assert gridtype == "hash" and not align_corners
            if desired_resolution is not None:
                per_level_scale = np.exp2(np.log2(desired_resolution / base_resolution) / (num_levels - 1))
            self.input_dim, self.num_levels, self.level_dim = input_dim, num_levels, level_dim
            self.per_level_scale, self.base_resolution = per_level_scale, base_resolution
            self.output_dim = num_levels * level_dim
            offsets, offset = [], 0
            for i in range(num_levels):
                resolution = int(np.ceil(base_resolution * per_level_scale**i))
                params = min(2**log2_hashmap_size, (resolution + 1) ** input_dim)
                params = int(np.ceil(params / 8) * 8)
                offsets.append(offset)
                offset += params
            offsets.append(offset)
            self.offsets = offsets
            self.embeddings = nn.Parameter(torch.empty(offset, level_dim).uniform_(-1e-4, 1e-4))

        def forward(self, inputs, bound=1):
            inputs = (inputs + bound) / (2 * bound)
            prefix = list(inputs.shape[:-1])
            x = inputs.reshape(-1, self.input_dim)
            s = np.float32(np.log2(self.per_level_scale))
            outs = []
            for level in range(self.num_levels):
                hashmap_size = self.offsets[level + 1] - self.offsets[level]
                scale = float(np.exp2(np.float32(level) * s, dtype=np.float32) * np.float32(self.base_resolution) - np.float32(1.0))
                resolution = int(np.ceil(np.float32(scale))) + 1
                pos = x * scale + 0.5
                pos_grid = torch.floor(pos).long()
                frac = pos - pos_grid
                result = 0.0
                for idx in range(1 << self.input_dim):
                    w = torch.ones_like(x[:, 0])
                    local = []
                    for d in range(self.input_dim):
                        if idx & (1 << d) == 0:
                            w = w * (1 - frac[:, d])
                            local.append(pos_grid[:, d])
                        else:
                            w = w * frac[:, d]
                            local.append(pos_grid[:, d] + 1)
                    stride, index, d = 1, torch.zeros_like(local[0]), 0
                    while d < self.input_dim and stride <= hashmap_size:
                        index = index + local[d] * stride
                        stride *= resolution + 1
                        d += 1
                    if stride > hashmap_size:
                        index = torch.zeros_like(local[0])
                        for d in range(self.input_dim):
                            index = index ^ ((local[d] * primes[d]) & 0xFFFFFFFF)
                    index = index % hashmap_size
                    result = result + w[:, None] * self.embeddings[self.offsets[level] + index]
                oob = ((x < 0) | (x > 1)).any(-1, keepdim=True)
                outs.append(torch.where(oob, torch.zeros_like(result), result))
            return torch.cat(outs, -1).reshape(prefix + [self.output_dim])

    mod.GridEncoder = GridEncoder
    return mod


def sh_module(official: Path) -> types.ModuleType:
    source = (official / "shencoder" / "src" / "shencoder.cu").read_text()
    formulas: dict[int, str] = {}
    for k, expr in re.findall(r"outputs\[(\d+)\]\s*=\s*([^;]+);", source):
        if int(k) not in formulas:  # the forward's block comes first (the backward writes dy_dx)
            formulas[int(k)] = re.sub(r"(\d+\.\d*(?:e-?\d+)?)f\b", r"\1", expr)
    mod = types.ModuleType("shencoder")

    class SHEncoder(nn.Module):
        def __init__(self, input_dim=3, degree=4):
            super().__init__()
            self.input_dim, self.degree, self.output_dim = input_dim, degree, degree**2

        def forward(self, inputs, size=1):
            inputs = inputs / size
            prefix = list(inputs.shape[:-1])
            x, y, z = inputs.reshape(-1, 3).unbind(-1)
            env = {"x": x, "y": y, "z": z, "xy": x * y, "xz": x * z, "yz": y * z, "x2": x * x, "y2": y * y, "z2": z * z}
            env.update(xyz=env["xy"] * z, x4=env["x2"] ** 2, y4=env["y2"] ** 2, z4=env["z2"] ** 2)
            out = [eval(formulas[k], {}, env) for k in range(self.output_dim)]  # noqa: S307 (the official formulas)
            out = [o if torch.is_tensor(o) else torch.full_like(x, o) for o in out]
            return torch.stack(out, -1).reshape(prefix + [self.output_dim])

    mod.SHEncoder = SHEncoder
    return mod


def raymarching_module() -> types.ModuleType:
    mod = types.ModuleType("raymarching")

    def near_far_from_aabb(rays_o, rays_d, aabb, min_near=0.05):
        return SCENE["nears"], SCENE["fars"]

    def march_rays_train(*args, **kwargs):
        return SCENE["xyzs"], SCENE["dirs"], SCENE["deltas"], SCENE["rays"]

    def composite_rays_train_triplane(sigmas, rgbs, amb_aud, amb_eye, uncertainty, deltas, rays, t_thresh=1e-4):
        n = rays.shape[0]
        uncertainty = uncertainty.reshape(-1)
        ws, a_aud, a_eye, unc, depth, image = ([None] * n for _ in range(6))
        for r in range(n):
            index, offset, steps = (int(v) for v in rays[r])
            t = 1.0
            acc = {"ws": 0.0, "aud": 0.0, "eye": 0.0, "unc": 0.0, "d": 0.0, "img": 0.0}
            for s in range(offset, offset + steps):
                alpha = 1.0 - torch.exp(-sigmas[s] * deltas[s, 0])
                w = alpha * t
                acc["img"] = acc["img"] + w * rgbs[s]
                acc["d"] = acc["d"] + w * deltas[s, 1]
                acc["ws"] = acc["ws"] + w
                acc["aud"] = acc["aud"] + amb_aud[s]
                acc["eye"] = acc["eye"] + amb_eye[s]
                acc["unc"] = acc["unc"] + w * uncertainty[s]
                t = t * (1.0 - alpha)
                if t < t_thresh:
                    break
            ws[index], a_aud[index], a_eye[index], unc[index], depth[index], image[index] = (
                acc[k] for k in ("ws", "aud", "eye", "unc", "d", "img")
            )
        return tuple(torch.stack(v) for v in (ws, a_aud, a_eye, unc, depth, image))

    mod.near_far_from_aabb, mod.march_rays_train = near_far_from_aabb, march_rays_train
    mod.composite_rays_train_triplane = composite_rays_train_triplane
    return mod


def install(official: Path) -> None:
    import importlib.util

    sys.modules.update(gridencoder=grid_module(), shencoder=sh_module(official), raymarching=raymarching_module())
    for name in ("tensorboardX", "trimesh", "mcubes", "torch_ema", "rich", "rich.console"):
        if importlib.util.find_spec(name.split(".")[0]) is None:
            sys.modules[name] = _Empty(name)
    sys.path.insert(0, str(official))


def options(**over) -> Namespace:
    """The official ``main.py`` defaults with ``-O`` (exp_eye) and ``cuda_ray``, head stage."""
    opt = dict(
        bound=1.0, min_near=0.05, density_thresh=10, density_thresh_torso=0.01, exp_eye=True, test_train=False, smooth_lips=False,
        torso=False, cuda_ray=True, ind_num=10000, ind_dim=4, ind_dim_torso=8, train_camera=False, emb=False, asr_model="deepspeech",
        att=2, unc_loss=1, amb_aud_loss=1, amb_eye_loss=1, lambda_amb=1e-4, iters=200000, max_steps=16, patch_size=1,
        finetune_lips=False, color_space="srgb", fp16=False, torso_shrink=0.8, dt_gamma=1 / 256,
    )  # fmt: skip
    opt.update(over)
    return Namespace(**opt)


def set_weights(model: nn.Module) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(weight(name, tuple(p.shape), SEED)))


def train_step(trainer_cls, model: nn.Module, data: dict, global_step: int, iters: int) -> dict[str, np.ndarray]:
    """The official ``Trainer.train_step`` at ``global_step`` of ``iters``: its outputs, loss and
    gradients, and the ``torch.rand`` draws it made (the regulariser's jitter at a multiple of 16)."""
    trainer = trainer_cls.__new__(trainer_cls)
    model.opt.iters = iters
    trainer.opt, trainer.model, trainer.global_step = model.opt, model, global_step
    trainer.criterion, trainer.flip_finetune_lips, trainer.log_ptr = torch.nn.MSELoss(reduction="none"), False, None
    outputs, draws = {}, []
    render, rand = model.render, torch.rand

    def recording_render(*a, **k):
        outputs.update(render(*a, **k))
        return outputs

    def recording_rand(*a, **k):
        draws.append(rand(*a, **k))
        return draws[-1]

    model.render, torch.rand = recording_render, recording_rand
    try:
        model.zero_grad()
        pred, _, loss = trainer.train_step({k: v.clone() if torch.is_tensor(v) else v for k, v in data.items()})
        loss.backward()
    finally:
        model.render, torch.rand = render, rand
        del model.render
    grads = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            grads.update(summary(name, p.grad.numpy()))
    out = {k: outputs[k].detach().numpy().reshape(-1) for k in ("weights_sum", "ambient_aud", "ambient_eye", "uncertainty")}
    jitter = {"jitter": draws[0].numpy() * 2e-3 - 1e-3} if draws else {}  # (rand * 2 - 1) * 1e-3
    return dict(global_step=np.array(global_step), iters=np.array(iters), image=pred.detach().numpy()[0], loss=loss.detach().numpy(),
                **out, **jitter, **grads)  # fmt: skip


def lips_rect_fixture(official: Path, out: Path, meta: dict) -> None:
    """The official lip rectangle (``provider.py``: the ``finetune_lips`` block, run as written) of
    random landmarks, some near the image's edges, in square and oblong images."""
    import textwrap

    source = (official / "nerf_triplane" / "provider.py").read_text()
    start = source.index("lips = slice(48, 60)")
    end = source.index("self.lips_rect.append([xmin, xmax, ymin, ymax])") + len("self.lips_rect.append([xmin, xmax, ymin, ymax])")
    line_start = source.rindex("\n", 0, start) + 1
    block = textwrap.dedent(source[line_start:end])
    g = np.random.default_rng(SEED)
    sizes, marks, rects = [], [], []
    for h, w in ((64, 64), (48, 64), (64, 40)):
        for _ in range(6):
            centre = g.uniform([-4, -4], [w + 4, h + 4])  # (x, y), some mouths past the edges
            lms = np.zeros((68, 2))
            lms[48:60] = centre + g.normal(0, [6, 3], (12, 2))
            ns = {"lms": lms, "self": Namespace(H=h, W=w, lips_rect=[])}
            exec(block, ns)  # noqa: S102 (the official block)
            sizes.append((h, w))
            marks.append(lms)
            rects.append(ns["self"].lips_rect[0])
    np.savez(out / "ernerf_lips_rect.npz", sizes=np.array(sizes), landmarks=np.array(marks), rects=np.array(rects), **meta)


def commit_of(repo: Path) -> str:
    return (repo / "COMMIT").read_text().strip() if (repo / "COMMIT").exists() else "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ernerf", type=Path, required=True, help="checkout of Fictionarry/ER-NeRF (a COMMIT file names its commit)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "baselines" / "golden")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    install(args.ernerf)
    from nerf_triplane.network import NeRFNetwork
    from nerf_triplane.utils import Trainer, get_audio_features

    g = np.random.default_rng(SEED)
    torch.manual_seed(SEED)  # the official step's own draws (the regulariser's jitter) repeat from run to run
    meta = {"official_repo": "ernerf", "official_commit": np.array(commit_of(args.ernerf)), "seed": np.array(SEED)}
    st = STEP
    model = NeRFNetwork(options(iters=st["iters"])).double()
    set_weights(model)
    model.train()

    # encoders: the tri-plane (points partly outside [-1, 1]) and SH of unit directions
    x = torch.from_numpy(g.uniform(-1.1, 1.1, (96, 3)))
    d = torch.from_numpy(g.normal(0, 1, (96, 3)))
    d = d / d.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        np.savez(args.out / "ernerf_encoders.npz", x=x.numpy(), d=d.numpy(), enc_x=model.encode_x(x, 1.0).numpy(),
                 enc_d=model.encoder_dir(d).numpy(), **meta)  # fmt: skip

    # the network: audio window at the clip start (zero-padded), forward in training mode
    feats = torch.from_numpy(g.normal(0, 1, (st["frames"], 29, 16)))
    auds = get_audio_features(feats, 2, st["index"])  # [8, 29, 16]
    eye = torch.tensor([[0.3]])
    with torch.no_grad():
        enc_a = model.encode_audio(auds)
        code = model.individual_codes[[st["index"]]]
        sigma, color, amb_aud, amb_eye, unc = model(x, d, enc_a, code, eye)
    np.savez(args.out / "ernerf_network.npz", x=x.numpy(), d=d.numpy(), feats=feats.numpy(), index=np.array(st["index"]),
             eye=eye.numpy(), enc_a=enc_a.numpy(), sigma=sigma.numpy(), color=color.numpy(), amb_aud=amb_aud.numpy(),
             amb_eye=amb_eye.numpy(), uncertainty=unc.numpy(), **meta)  # fmt: skip

    # one train_step: rays through the box, fixed samples (xyz = o + t d, delta = the next t - t)
    n, s = st["n_rays"], st["samples"]
    rays_o = torch.from_numpy(np.tile([0.0, 0.0, 2.0], (n, 1)) + g.normal(0, 0.05, (n, 3)))
    target = torch.from_numpy(g.uniform(-0.3, 0.3, (n, 3)) + np.array([0.0, 0.0, -2.0]))
    rays_d = target - rays_o
    rays_d = rays_d / rays_d.norm(dim=-1, keepdim=True)
    t = torch.from_numpy(np.sort(g.uniform(1.3, 2.7, (n, s + 1)), -1))  # s samples and the far end
    SCENE.update(
        nears=t[:, 0].clone(), fars=t[:, -1].clone(),
        xyzs=(rays_o[:, None] + rays_d[:, None] * t[:, :s, None]).reshape(-1, 3), dirs=rays_d[:, None].expand(n, s, 3).reshape(-1, 3),
        deltas=torch.stack([t[:, 1:] - t[:, :-1], t[:, :s]], -1).reshape(-1, 2),
        rays=torch.tensor([[i, i * s, s] for i in range(n)], dtype=torch.int32),
    )  # fmt: skip
    face = torch.tensor([True, True, False, True, False, True])
    data = {
        "rays_o": rays_o[None], "rays_d": rays_d[None], "bg_coords": torch.zeros(1, n, 2), "poses": torch.eye(4)[None],
        "face_mask": face[None], "eye_mask": face[None], "lhalf_mask": face[None], "eye": eye.clone(), "auds": auds,
        "index": [st["index"]], "images": torch.from_numpy(g.uniform(0, 1, (1, n, 3))),
        "bg_color": torch.from_numpy(g.uniform(0, 1, (1, n, 3))),
    }  # fmt: skip
    scene = dict(rays_o=rays_o.numpy(), rays_d=rays_d.numpy(), t=t.numpy(), face=face.numpy(), images=data["images"].numpy()[0],
                 bg=data["bg_color"].numpy()[0], eye=eye.numpy(), feats=feats.numpy(), index=np.array(st["index"]))  # fmt: skip
    for name, global_step, iters in (("step", st["global_step"], st["iters"]), ("step16", 16, 32)):
        fix = train_step(Trainer, model, data, global_step, iters)
        np.savez(args.out / f"ernerf_{name}.npz", **scene, **fix, **meta)
    lips_rect_fixture(args.ernerf, args.out, meta)
    for f in sorted(args.out.glob("ernerf_*.npz")):
        print(f, f.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
