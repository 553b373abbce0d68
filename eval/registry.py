"""The metric registry: every metric by name, its direction and what it needs.

Metrics sharing a ``group`` are computed together (``sync_conf`` and ``sync_dist`` come
from one SyncNet pass). The recipes live in the modules named in ``recipe``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # "higher" | "lower": which is better
    needs_gt: bool
    needs_audio: bool
    weights: tuple[str, ...] = ()  # weights-store names it needs
    group: str = ""  # metrics computed in one pass share a group
    per_frame: bool = True
    recipe: str = ""  # module documenting the recipe
    label: str = ""

    @property
    def better(self) -> str:
        return "↑" if self.direction == "higher" else "↓"


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("psnr", "higher", True, False, group="psnr", recipe="eval.image_metrics", label="PSNR"),
    Metric("ssim", "higher", True, False, group="ssim", recipe="eval.image_metrics", label="SSIM"),
    Metric("lpips", "lower", True, False, ("lpips_alexnet",), group="lpips", recipe="eval.lpips_metric",
           label="LPIPS"),
    Metric("lmd", "lower", True, False, group="lmd", recipe="eval.lmd", label="LMD"),
    Metric("sync_conf", "higher", False, True, ("syncnet",), group="sync", per_frame=False,
           recipe="eval.sync", label="LSE-C"),
    Metric("sync_dist", "lower", False, True, ("syncnet",), group="sync", per_frame=False,
           recipe="eval.sync", label="LSE-D"),
]}


def select(names: list[str] | None, have_gt: bool, have_audio: bool) -> list[Metric]:
    """The metrics to compute: all computable ones when ``names`` is None, else exactly
    ``names`` (an unknown name, or one whose inputs are absent, is an error)."""
    if names is None:
        return [m for m in METRICS.values() if (have_gt or not m.needs_gt) and (have_audio or not m.needs_audio)]
    out = []
    for n in names:
        if n not in METRICS:
            raise ValueError(f"unknown metric {n!r}; known: {', '.join(METRICS)}")
        m = METRICS[n]
        if m.needs_gt and not have_gt:
            raise ValueError(f"metric {n} needs ground truth (--gt); without it only sync_conf, sync_dist apply")
        if m.needs_audio and not have_audio:
            raise ValueError(f"metric {n} needs audio: pass --audio WAV, or a prediction video with an audio track")
        out.append(m)
    return out
