"""Rendering whole images in ray chunks, and writing a rendered sequence as an mp4 with the
driving audio muxed in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from aenerf.engine.rays import image_rays


@torch.inference_mode()  # no autograd state at all while rendering
def render_image(render_fn: Callable[[Tensor, Tensor, Tensor], Tensor], h: int, w: int, intrinsics: Tensor,
                 c2w: Tensor, background: Tensor, chunk: int) -> np.ndarray:
    """Render an (h, w) image: ``render_fn(rays_o, rays_d, bg_rgb) -> (N, 3)`` colours is called
    on chunks of at most ``chunk`` rays. Returns uint8 (h, w, 3)."""
    rays_o, rays_d = image_rays(h, w, intrinsics, c2w)
    bg = background.reshape(-1, 3)
    out = [render_fn(rays_o[i:i + chunk], rays_d[i:i + chunk], bg[i:i + chunk]) for i in range(0, rays_o.shape[0], chunk)]
    img = torch.cat(out).reshape(h, w, 3).clamp(0, 1)
    return (img * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def write_render(frames: Iterable[np.ndarray], n_frames: int, out: Path, fps: float, audio: np.ndarray | None,
                 audio_rate: int = 16000, desc: str = "render") -> Path:
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
