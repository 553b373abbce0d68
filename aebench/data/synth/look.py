"""One synthetic identity's appearance and voice, drawn from its own random stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Look:
    """Appearance and voice of one identity (all drawn from its own rng)."""

    radii: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    lips: tuple[float, float, float]
    shirt: tuple[float, float, float]
    hair_line: float
    f0: float
    tract: float  # formant scale (vocal tract length)


def draw_look(rng: np.random.Generator) -> Look:
    skin_base = np.array([0.92, 0.72, 0.58]) * rng.uniform(0.55, 1.05)
    skin = np.clip(skin_base + rng.normal(0, 0.04, 3), 0.15, 1.0)
    hair = np.clip(rng.uniform(0.03, 0.55) * np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7)]), 0, 1)
    lips = np.clip(np.array([0.70, 0.25, 0.28]) * rng.uniform(0.7, 1.1), 0, 1)
    shirt = rng.uniform(0.1, 0.9, 3)
    radii = (rng.uniform(0.78, 0.9), rng.uniform(0.98, 1.08), rng.uniform(0.85, 0.95))
    female = rng.random() < 0.5
    f0 = rng.uniform(180, 240) if female else rng.uniform(95, 140)
    tract = rng.uniform(1.05, 1.15) if female else rng.uniform(0.9, 1.0)
    return Look(radii, tuple(skin), tuple(hair), tuple(lips), tuple(shirt), float(rng.uniform(-0.6, -0.2)), float(f0), float(tract))
