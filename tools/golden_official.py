"""Golden fixtures from the official DFRF and AD-NeRF code (DESIGN.md, "Baselines and the
official code"): imports the official modules from local checkouts given by path (their code is
never copied into this repository), runs them in float64 on fixed seeded inputs and weights, and
writes small ``.npz`` fixtures that ``tests/baselines/test_golden.py`` compares aebench with.

    python tools/golden_official.py --dfrf PATH/TO/sstzal/DFRF --adnerf PATH/TO/YudongGuo/AD-NeRF

The official modules import ``imageio`` and ``natsort`` (``pip install imageio natsort``), not
aebench dependencies. Each fixture records the official repository's commit and the seed.

Components: positional encoding (``get_embedder``), ``raw2outputs`` (volume rendering with the
background as last sample), ``sample_pdf`` (deterministic), ``AudioNet`` and ``AudioAttNet`` with
their weights; and a whole coarse + fine ``render_rays`` of each method (``*_render.npz``), built by
the official ``create_nerf`` from the official argparse defaults (small NeRF width, few samples),
every parameter set from ``tests/baselines/golden_weights.py``'s rule, in training mode (stratified
jitter, DFRF's sampled slots) from a recorded seed, then one training step's loss and gradients,
and in test mode. The official ``raw2outputs`` is wrapped to record each pass's weights and depth.
The configargparse package is needed too (``pip install imageio natsort configargparse``).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "baselines"))
from golden_weights import summary, weight  # noqa: E402  (the weight rule the tests share)

SEED = 0
DRAW_SEED = 1234  # torch.manual_seed before each render: the official draws (jitter, slot noise, pdf samples)
#: the render scene; its principal point (cx, cy), in the official convention (pixel i at i), is off
#: the image centre so that code using the centre where the official code uses the identity's (or
#: the reverse) shows: the official rays use (cx, cy), its projection into the references (W/2, H/2)
SCENE = {
    "H": 16,
    "focal": 20.0,
    "near": 0.7,
    "far": 1.3,
    "n_rays": 12,
    "n_refs": 4,
    "N_samples": 8,
    "N_importance": 8,
    "netwidth": 32,
    "cx": 9.3,
    "cy": 7.3,
}
#: the face-rectangle draws: image size, the official rect (x, y, w, h), and (N_rand, sample_rate)
#: pairs whose product is not whole (DFRF's 850 x 0.95 = 807.5, AD-NeRF's 2048 x 0.95), so that
#: int() and round() differ
FACE_RECT = {"H": 64, "W": 64, "rect": (5, 8, 49, 50), "draws": ((850, 0.95), (2048, 0.95), (10, 0.95), (13, 0.5))}


def commit_of(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return (repo / "COMMIT").read_text().strip() if (repo / "COMMIT").exists() else "unknown"


def load_module(path: Path, name: str):
    """The official module at ``path`` (its folder on sys.path for its sibling imports)."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def arrays(state: dict, prefix: str) -> dict:
    return {f"{prefix}{k}": v.detach().numpy() for k, v in state.items()}


def fixtures_of(helpers, runner, tag: str, commit: str, out: Path) -> None:
    g = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    meta = {"official_repo": tag, "official_commit": np.array(commit), "seed": np.array(SEED)}

    # positional encoding (get_embedder) of x, d and DFRF's warp/reference inputs
    x = torch.from_numpy(g.uniform(-1.5, 1.5, (64, 3)))
    pe = {"x": x.numpy()}
    for multires in (2, 4, 5, 6, 10):
        embed, dim = helpers.get_embedder(multires, 0)
        pe[f"embed_{multires}"] = embed(x).numpy()
    np.savez(out / f"{tag}_pe.npz", **pe, **meta)

    # raw2outputs: last sample = the background colour, last interval 1e10
    n, s = 32, 24
    raw = torch.from_numpy(g.normal(0, 2, (n, s, 4)))
    z = torch.from_numpy(np.sort(g.uniform(2.0, 6.0, (n, s)), -1))
    rays_d = torch.from_numpy(g.normal(0, 1, (n, 3)))
    bc = torch.from_numpy(g.uniform(0, 1, (n, 3)))
    rgb_map, _, acc_map, weights, depth_map = runner.raw2outputs(raw, z, rays_d, bc)[:5]  # AD-NeRF returns 5, DFRF 6
    np.savez(
        out / f"{tag}_raw2outputs.npz",
        raw=raw.numpy(),
        z_vals=z.numpy(),
        rays_d=rays_d.numpy(),
        bc_rgb=bc.numpy(),
        rgb_map=rgb_map.numpy(),
        acc_map=acc_map.numpy(),
        weights=weights.numpy(),
        depth_map=depth_map.numpy(),
        **meta,
    )

    # sample_pdf, deterministic (rendering) samples
    mids = 0.5 * (z[:, 1:] + z[:, :-1])
    w = torch.from_numpy(g.uniform(0, 1, (n, s - 2)))
    samples = helpers.sample_pdf(mids, w, 16, det=True)
    np.savez(out / f"{tag}_sample_pdf.npz", bins=mids.numpy(), weights=w.numpy(), samples=samples.numpy(), **meta)

    # AudioNet (16 x 29 DeepSpeech windows -> 64) and AudioAttNet (8 codes, first 32 channels)
    audnet = helpers.AudioNet(64, 16)
    attnet = helpers.AudioAttNet(32, 8)
    windows = torch.from_numpy(g.normal(0, 1, (6, 16, 29)))
    codes = torch.from_numpy(g.normal(0, 1, (8, 64)))
    with torch.no_grad():
        a = audnet(windows)
        smoothed = attnet(codes)
    np.savez(
        out / f"{tag}_audio.npz",
        windows=windows.numpy(),
        codes_in=codes.numpy(),
        audionet_out=a.numpy(),
        attnet_out=smoothed.numpy(),
        **arrays(audnet.state_dict(), "audionet."),
        **arrays(attnet.state_dict(), "attnet."),
        **meta,
    )


def look_at_poses(g: np.random.Generator, n: int, dist: float = 1.0) -> np.ndarray:
    """(n, 3, 4) official (OpenGL: x right, y up, looking down -z) camera-to-world poses at ``dist``
    from the origin, slightly rotated, all looking at the origin."""
    from scipy.spatial.transform import Rotation

    out = np.zeros((n, 3, 4))
    for i in range(n):
        rot = Rotation.from_rotvec(g.uniform(-0.15, 0.15, 3)).as_matrix()
        out[i, :, :3] = rot
        out[i, :, 3] = rot @ np.array([0.0, 0.0, dist])
    return out


def set_weights(named: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Parameter]:
    """Every parameter of the official modules from the shared rule; returns them by fixture name."""
    params = {}
    for prefix, module in named.items():
        for name, p in module.named_parameters():
            key = f"{prefix}.{name}"
            with torch.no_grad():
                p.copy_(torch.from_numpy(weight(key, tuple(p.shape), SEED)))
            params[key] = p
    return params


class Recorder:
    """Wraps the official ``raw2outputs`` and keeps each call's weights and depth."""

    def __init__(self, runner):
        self.runner, self.original, self.calls = runner, runner.raw2outputs, []

    def __enter__(self):
        def wrapped(*a, **k):
            out = self.original(*a, **k)
            self.calls.append({"weights": out[3].detach().numpy().copy(), "depth": out[4].detach().numpy().copy()})
            return out

        self.runner.raw2outputs = wrapped
        return self

    def __exit__(self, *exc):
        self.runner.raw2outputs = self.original


def render_fixture(runner, tag: str, commit: str, out: Path) -> None:
    """One official coarse + fine render_rays (train mode, then test mode) and one step's gradients."""
    sc = SCENE
    h = w = sc["H"]
    g = np.random.default_rng(SEED + 1)
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "--basedir",
            tmp,
            "--expname",
            "golden",
            "--N_samples",
            str(sc["N_samples"]),
            "--N_importance",
            str(sc["N_importance"]),
            "--netwidth",
            str(sc["netwidth"]),
            "--netwidth_fine",
            str(sc["netwidth"]),
            "--no_reload",
        ]
        if tag == "dfrf":
            argv += ["--N_rand", str(sc["n_rays"])]
        args = runner.config_parser().parse_args(argv)
        (Path(tmp) / "golden").mkdir()
        made = runner.create_nerf(args)
    kw = made[0]
    focal = sc["focal"]
    pose = look_at_poses(g, 1)[0]
    rows, cols = g.integers(0, h, sc["n_rays"]), g.integers(0, w, sc["n_rays"])
    rays_o, rays_d = runner.get_rays(h, w, focal, torch.from_numpy(pose), sc["cx"], sc["cy"])
    rays_o, rays_d = rays_o[rows, cols].double(), rays_d[rows, cols].double()
    viewdirs = rays_d / torch.norm(rays_d, dim=-1, keepdim=True)
    n = sc["n_rays"]
    batch = torch.cat([rays_o, rays_d, sc["near"] * torch.ones(n, 1), sc["far"] * torch.ones(n, 1), viewdirs], -1)
    bc_rgb = torch.from_numpy(g.uniform(0, 1, (n, 3)))
    target = torch.from_numpy(g.uniform(0, 1, (n, 3)))
    aud = torch.from_numpy(g.normal(0, 1, 64)).requires_grad_(True)
    data = {
        "pose": pose,
        "rows": rows,
        "cols": cols,
        "rays_o": rays_o.numpy(),
        "rays_d": rays_d.numpy(),
        "bc_rgb": bc_rgb.numpy(),
        "target": target.numpy(),
        "aud": aud.detach().numpy(),
        "draw_seed": np.array(DRAW_SEED),
        **{k: np.array(v) for k, v in sc.items()},
    }
    if tag == "dfrf":
        models = made[-1]
        named = {
            "coarse": models["model"].nerf_model,
            "fine": models["model_fine"].nerf_model,
            "slot": models["attention_model"],
            "features": models["feature_extractor"],
            "warp": kw["position_warp_model"],
        }
        ref_poses = torch.from_numpy(look_at_poses(g, sc["n_refs"]))
        images = torch.from_numpy(g.uniform(0, 1, (sc["n_refs"], h, w, 3)))
        intrinsic = torch.tensor([[focal, 0.0, w / 2], [0.0, focal, h / 2], [0.0, 0.0, 1.0]])  # RND 750-752
        data.update(ref_poses=ref_poses.numpy(), ref_images=images.numpy(), L2loss_weight=np.array(5e-8))
    else:
        named = {"coarse": kw["network_fn"], "fine": kw["network_fine"]}
    params = set_weights(named)
    keep = ("network_fn", "network_query_fn", "N_samples", "N_importance", "network_fine", "white_bkgd", "raw_noise_std") + (
        ("training", "position_warp_model") if tag == "dfrf" else ()
    )

    def render(train_mode: bool):
        k = {key: kw[key] for key in keep}
        k["perturb"] = 1.0 if train_mode else 0.0
        extra = {}
        if tag == "dfrf":
            k["training"] = train_mode
            # the reference features exactly as render_dynamic_face_new builds them (RND 133-141)
            emb, ln = kw["attention_embed_fn"], kw["attention_embed_ln"]
            vp = torch.broadcast_to(emb(ref_poses[..., 3])[:, None, None], images.shape[:-1] + (ln,))
            feats = kw["feature_extractor"](torch.cat((emb(images), vp), -1).permute(0, 3, 1, 2), ln)
            extra = {"attention_poses": ref_poses, "intrinsic": intrinsic, "images_features": feats, "lip_rect": None}
        torch.manual_seed(DRAW_SEED)
        with Recorder(runner) as rec:
            res = runner.render_rays(batch, bc_rgb, aud, **k, **extra)
        ret, trans = res if tag == "dfrf" else (res, None)
        return ret, trans, rec.calls

    for mode in ("train", "test"):
        ret, trans, calls = render(mode == "train")
        data[f"{mode}.rgb_fine"], data[f"{mode}.rgb_coarse"] = ret["rgb_map"].detach().numpy(), ret["rgb0"].detach().numpy()
        data[f"{mode}.acc_fine"] = ret["acc_map"].detach().numpy()
        for level, call in zip(("coarse", "fine"), calls):
            data[f"{mode}.weights_{level}"], data[f"{mode}.depth_{level}"] = call["weights"], call["depth"]
        if mode == "train":
            mse = lambda a: torch.mean((a - target) ** 2)  # noqa: E731  (img2mse)
            loss = mse(ret["rgb_map"]) + mse(ret["rgb0"])
            if trans is not None:  # RND 1054-1061: img_loss + L2loss_weight * loss_translation + img_loss0
                loss = loss + 5e-8 * trans
                data["train.loss_translation"] = trans.detach().numpy()
            data["train.loss"] = loss.detach().numpy()
            loss.backward()
            for key, p in {**params, "aud": aud}.items():
                if p.grad is not None:
                    data.update(summary(key, p.grad.numpy()))
            data["param_names"] = np.array(sorted(params))
            data["param_shapes"] = np.array([",".join(map(str, params[k].shape)) for k in sorted(params)])
    np.savez_compressed(out / f"{tag}_render.npz", **data, official_repo=tag, official_commit=np.array(commit), seed=np.array(SEED))


def lr_block(source: Path) -> str:
    """The official loop's ``update learning rate`` block (DFRF run_nerf_deform.py 1071-1081, AD-NeRF
    run_nerf.py 915-925), dedented: it is executed as written on stand-in optimizers."""
    import textwrap

    lines = source.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "update learning rate" in line)
    stop = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("#####"))
    return textwrap.dedent("\n".join(lines[start + 1 : stop]))


def lr_fixture(runner, source: Path, tag: str, commit: str, out: Path, base_step: int) -> None:
    """The lr each of the three official optimizers (NeRF, AudioNet, AudioAttNet) steps with at the
    first local steps of a run that starts at ``global_step = base_step`` (the step a base
    checkpoint saved; 0 from scratch): step 0 with the optimizers as built (Adam at ``args.lrate``;
    AudioNet's, when a base model is given, with the lr saved in its reloaded state, i.e. the one the
    base's last update set), step k > 0 with what the update block set after step k - 1."""
    args = runner.config_parser().parse_args([])
    block = lr_block(source)
    make = lambda: torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=args.lrate)  # noqa: E731  (RND 303, 781-784)
    opt, aud, att = make(), make(), make()
    if base_step > 0:  # the base's last iteration ran the block at its global step, and saved AudioNet's state
        ns = {"args": args, "global_step": base_step, "optimizer": make(), "optimizer_Aud": make(), "optimizer_AudAtt": make()}
        exec(block, ns)  # noqa: S102  (the official lines, run as written)
        aud.load_state_dict(ns["optimizer_Aud"].state_dict())
    rows = []
    for k in range(6):
        rows.append([opt.param_groups[0]["lr"], aud.param_groups[0]["lr"], att.param_groups[0]["lr"]])
        exec(block, {"args": args, "global_step": base_step + k, "optimizer": opt, "optimizer_Aud": aud, "optimizer_AudAtt": att})
    np.savez(
        out / f"{tag}_lr_from_{base_step}.npz",
        lr=np.array(rows),
        base_step=np.array(base_step),
        lrate=np.array(args.lrate),
        lrate_decay=np.array(args.lrate_decay),
        official_repo=tag,
        official_commit=np.array(commit),
        seed=np.array(SEED),
    )


def rect_block(source: Path) -> str:
    """The official train loop's face-rectangle draw (``if args.sample_rate > 0:`` up to its
    ``else:``; DFRF run_nerf_deform.py 1003-1022, AD-NeRF run_nerf.py 848-866), dedented."""
    import textwrap

    lines = source.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "if args.sample_rate > 0:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    stop = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "else:" and len(lines[i]) - len(lines[i].lstrip()) == indent)
    return textwrap.dedent("\n".join(lines[start:stop]))


def face_rect_fixture(source: Path, tag: str, commit: str, out: Path) -> None:
    """The official draw of ``N_rand`` rays with ``sample_rate`` of them in the face rectangle, run
    as written: how many it takes inside and which pixels count as inside."""
    import types

    block = rect_block(source)
    fr = FACE_RECT
    coords = torch.stack(
        torch.meshgrid(torch.linspace(0, fr["H"] - 1, fr["H"]), torch.linspace(0, fr["W"] - 1, fr["W"]), indexing="ij"), -1
    ).reshape(-1, 2)  # as the loop builds it (RND 999-1002)
    data = {"H": np.array(fr["H"]), "W": np.array(fr["W"]), "rect": np.array(fr["rect"])}
    for k, (n_rand, rate) in enumerate(fr["draws"]):
        np.random.seed(SEED + k)
        ns = {
            "args": types.SimpleNamespace(sample_rate=rate),
            "coords": coords,
            "rect": np.array(fr["rect"]),
            "N_rand": n_rand,
            "np": np,
            "torch": torch,
        }
        exec(block, ns)  # noqa: S102  (the official lines, run as written)
        data[f"draw{k}.n_rand"], data[f"draw{k}.rate"] = np.array(n_rand), np.array(rate)
        data[f"draw{k}.rect_num"], data[f"draw{k}.norect_num"] = np.array(ns["rect_num"]), np.array(ns["norect_num"])
        data[f"draw{k}.inside"] = ns["rect_inds"].numpy().reshape(fr["H"], fr["W"])
        data[f"draw{k}.select_coords"] = ns["select_coords"].numpy()
    np.savez_compressed(out / f"{tag}_face_rect.npz", **data, official_repo=tag, official_commit=np.array(commit), seed=np.array(SEED))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dfrf", type=Path, required=True, help="checkout of sstzal/DFRF")
    ap.add_argument("--adnerf", type=Path, required=True, help="checkout of YudongGuo/AD-NeRF")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "baselines" / "golden")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    args.out.mkdir(parents=True, exist_ok=True)
    dfrf = args.dfrf / "NeRFs"
    runner = load_module(dfrf / "run_nerf_deform.py", "dfrf_run_nerf_deform")
    fixtures_of(load_module(dfrf / "run_nerf_helpers_deform.py", "run_nerf_helpers_deform"), runner, "dfrf", commit_of(args.dfrf), args.out)
    render_fixture(runner, "dfrf", commit_of(args.dfrf), args.out)
    for base_step in (0, 299999):  # from scratch; fine-tuning 300000_head.tar (it saved global_step 299999)
        lr_fixture(runner, dfrf / "run_nerf_deform.py", "dfrf", commit_of(args.dfrf), args.out, base_step)
    face_rect_fixture(dfrf / "run_nerf_deform.py", "dfrf", commit_of(args.dfrf), args.out)
    head = args.adnerf / "NeRFs" / "HeadNeRF"
    sys.modules.pop("run_nerf_helpers", None)
    runner = load_module(head / "run_nerf.py", "adnerf_run_nerf")
    fixtures_of(load_module(head / "run_nerf_helpers.py", "run_nerf_helpers"), runner, "adnerf", commit_of(args.adnerf), args.out)
    render_fixture(runner, "adnerf", commit_of(args.adnerf), args.out)
    lr_fixture(runner, head / "run_nerf.py", "adnerf", commit_of(args.adnerf), args.out, 0)
    face_rect_fixture(head / "run_nerf.py", "adnerf", commit_of(args.adnerf), args.out)
    for f in sorted(args.out.glob("*.npz")):
        print(f, f.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
