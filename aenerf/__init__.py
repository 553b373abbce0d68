"""The NeRF engine shared by every NeRF method, and the AE-NeRF method built on it.

- :mod:`aenerf.engine`: rays, encodings, samplers, volume rendering, ray batches, trainer,
  checkpoints, renderer, and networks DFRF/AD-NeRF reuse (see its docstring for how a method
  is built on it).
- :mod:`aenerf.modules`: AE-NeRF's audio-aware warper, Audio Aware Aggregation, Regionwise
  Ray Sampling.
- :mod:`aenerf.model`: the AE-NeRF network (dual NeRF with parsing masks, losses).
- :mod:`aenerf.method`: the Method API (``aenerf``): pretrain, finetune, render.
- :mod:`aenerf.bench`: ``aebench bench train|render``.
"""
