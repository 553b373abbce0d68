"""The NeRF engine shared by every NeRF method, and the AE-NeRF method built on it.

- :mod:`aebench.engine`: rays, encodings, samplers, volume rendering, ray batches, trainer,
  checkpoints, renderer, and networks DFRF/AD-NeRF reuse (see its docstring for how a method
  is built on it).
- :mod:`aebench.aenerf.modules`: AE-NeRF's audio-aware warper, Audio Aware Aggregation, Regionwise
  Ray Sampling.
- :mod:`aebench.aenerf.model`: the AE-NeRF network (dual NeRF with parsing masks, losses).
- :mod:`aebench.aenerf.method`: the Method API (``aenerf``): pretrain, finetune, render.
- :mod:`aebench.harness.cli.bench_methods`: ``aebench bench train|render``.
"""

if __name__ != "aebench.aenerf":  # one import namespace: the folder is the package aebench.aenerf
    raise ImportError(
        f"'{__name__}' is not an import name: the aenerf/ folder imports as aebench.aenerf "
        "(e.g. `from aebench.engine import volume`) once aebench is installed (pip install -e .)"
    )
