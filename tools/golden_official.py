"""Golden fixtures from the official DFRF and AD-NeRF code (DESIGN.md, "Baselines and the
official code"): imports the official modules from local checkouts given by path (their code is
never copied into this repository), runs them in float64 on fixed seeded inputs and weights, and
writes small ``.npz`` fixtures that ``tests/baselines/test_golden.py`` compares aebench with.

    python tools/golden_official.py --dfrf PATH/TO/sstzal/DFRF --adnerf PATH/TO/YudongGuo/AD-NeRF

The official modules import ``imageio`` and ``natsort`` (``pip install imageio natsort``), not
aebench dependencies. Each fixture records the official repository's commit and the seed.

Components: positional encoding (``get_embedder``), ``raw2outputs`` (volume rendering with the
background as last sample), ``sample_pdf`` (deterministic), ``AudioNet`` and ``AudioAttNet`` with
their weights.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 0


def commit_of(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
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
    np.savez(out / f"{tag}_raw2outputs.npz", raw=raw.numpy(), z_vals=z.numpy(), rays_d=rays_d.numpy(), bc_rgb=bc.numpy(),
             rgb_map=rgb_map.numpy(), acc_map=acc_map.numpy(), weights=weights.numpy(), depth_map=depth_map.numpy(), **meta)

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
    np.savez(out / f"{tag}_audio.npz", windows=windows.numpy(), codes_in=codes.numpy(), audionet_out=a.numpy(),
             attnet_out=smoothed.numpy(), **arrays(audnet.state_dict(), "audionet."),
             **arrays(attnet.state_dict(), "attnet."), **meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dfrf", type=Path, required=True, help="checkout of sstzal/DFRF")
    ap.add_argument("--adnerf", type=Path, required=True, help="checkout of YudongGuo/AD-NeRF")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "baselines" / "golden")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    args.out.mkdir(parents=True, exist_ok=True)
    dfrf = args.dfrf / "NeRFs"
    fixtures_of(load_module(dfrf / "run_nerf_helpers_deform.py", "run_nerf_helpers_deform"),
                load_module(dfrf / "run_nerf_deform.py", "dfrf_run_nerf_deform"), "dfrf", commit_of(args.dfrf), args.out)
    head = args.adnerf / "NeRFs" / "HeadNeRF"
    sys.modules.pop("run_nerf_helpers", None)
    fixtures_of(load_module(head / "run_nerf_helpers.py", "run_nerf_helpers"),
                load_module(head / "run_nerf.py", "adnerf_run_nerf"), "adnerf", commit_of(args.adnerf), args.out)
    for f in sorted(args.out.glob("*.npz")):
        print(f, f.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
