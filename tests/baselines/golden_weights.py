"""The deterministic weights of the golden render fixtures: both ``tools/golden_official.py``
(on the official modules) and ``test_golden.py`` (on aebench's, through the name mapping)
regenerate every parameter from its official name and shape, so the fixtures store outputs and
gradients only. Gradients of large parameters are compared through their norm and fixed random
projections (:func:`probes`), small ones in full."""

from __future__ import annotations

import zlib

import numpy as np

FULL_GRAD = 4096  # parameters up to this size keep their whole gradient in a fixture
N_PROBES = 3


def weight(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """float64 values of official parameter ``name``: N(0, 1/fan_in) for matrices and kernels,
    1 + N(0, 0.1) for LayerNorm scales, N(0, 0.1) otherwise (biases, slot mu and log-sigma)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if len(shape) >= 2:
        return rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[1:])), shape)
    if "norm" in name and name.endswith("weight"):
        return 1.0 + rng.normal(0.0, 0.1, shape)
    return rng.normal(0.0, 0.1, shape)


def probes(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """(N_PROBES, numel) fixed random unit vectors a gradient of ``name`` is projected on."""
    rng = np.random.default_rng([7, zlib.crc32(name.encode())])
    v = rng.normal(0.0, 1.0, (N_PROBES, int(np.prod(shape))))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def summary(name: str, grad: np.ndarray) -> dict[str, np.ndarray]:
    """What a fixture keeps of the gradient of ``name``: the whole of a small one, else its norm
    and projections."""
    g = np.asarray(grad, dtype=np.float64)
    if g.size <= FULL_GRAD:
        return {f"grad.{name}": g}
    return {f"gradnorm.{name}": np.array(np.linalg.norm(g)), f"gradproj.{name}": probes(name, g.shape) @ g.reshape(-1)}
