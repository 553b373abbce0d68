"""Rendering whole images in ray chunks, and writing a rendered sequence as an mp4 with the
driving audio muxed in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from aebench.media import AUDIO_RATE
from aebench.engine.rays import image_rays

CPU_CHUNK = 4096  # train.chunk = 0 on a CPU: memory is rarely what limits a chunk there
CHUNK_MEMORY_SHARE = 0.5  # train.chunk = 0 on CUDA: a chunk may use this share of the free memory
PROBE_RAYS = 1024  # rays of the probe render that measures a chunk's memory per ray


@torch.inference_mode()  # no autograd state at all while rendering
def render_image(
    render_fn: Callable[[Tensor, Tensor, Tensor], Tensor], h: int, w: int, intrinsics: Tensor, c2w: Tensor, background: Tensor, chunk: int
) -> np.ndarray:
    """Render an (h, w) image: ``render_fn(rays_o, rays_d, bg_rgb) -> (N, 3)`` colours is called
    on chunks of at most ``chunk`` rays. Returns uint8 (h, w, 3)."""
    rays_o, rays_d = image_rays(h, w, intrinsics, c2w)
    bg = background.reshape(-1, 3)
    out = [render_fn(rays_o[i : i + chunk], rays_d[i : i + chunk], bg[i : i + chunk]) for i in range(0, rays_o.shape[0], chunk)]
    img = torch.cat(out).reshape(h, w, 3).clamp(0, 1)
    return (img * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


@torch.inference_mode()
def auto_chunk(
    render_fn: Callable[[Tensor, Tensor, Tensor], Tensor], h: int, w: int, intrinsics: Tensor, c2w: Tensor, background: Tensor
) -> int:
    """Rays per chunk for ``train.chunk = 0``: on CUDA, a probe render of :data:`PROBE_RAYS` rays
    through the image's centre (the head: no empty space to skip) measures the peak memory per
    ray, and a chunk may take :data:`CHUNK_MEMORY_SHARE` of the free memory (a multiple of the
    probe, at least one); on a CPU :data:`CPU_CHUNK`."""
    if c2w.device.type != "cuda":
        return CPU_CHUNK
    rays_o, rays_d = image_rays(h, w, intrinsics, c2w)
    n = rays_o.shape[0]
    probe = slice(max(0, n // 2 - PROBE_RAYS // 2), min(n, n // 2 + PROBE_RAYS // 2))
    device = c2w.device
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    render_fn(rays_o[probe], rays_d[probe], background.reshape(-1, 3)[probe])
    torch.cuda.synchronize(device)
    per_ray = max(torch.cuda.max_memory_allocated(device) - base, 1) / (probe.stop - probe.start)
    free, _ = torch.cuda.mem_get_info(device)
    return max(PROBE_RAYS, int(free * CHUNK_MEMORY_SHARE / per_ray) // PROBE_RAYS * PROBE_RAYS)


def write_render(
    frames: Iterable[np.ndarray],
    n_frames: int,
    out: Path,
    fps: float,
    audio: np.ndarray | None,
    audio_rate: int = AUDIO_RATE,
    desc: str = "render",
) -> Path:
    """Stream rendered frames (with a progress bar) into an mp4 at ``fps`` with ``audio`` (for
    viewing) and, losslessly, into PNGs beside it (:func:`aebench.media.lossless_frames_dir`),
    which is what metrics read: an H.264 mp4 would cost 1-3 dB of PSNR at NeRF quality."""
    from aebench.media import PngSequence, lossless_frames_dir, write_video

    pngs = PngSequence(lossless_frames_dir(out))

    def tee():
        for img in tqdm(frames, total=n_frames, desc=desc, dynamic_ncols=True, leave=False):
            pngs.write(img)
            yield img

    video = write_video(out, tee(), fps=fps, audio=audio, audio_rate=audio_rate)
    pngs.commit()
    return video
