"""AE-NeRF's own modules (METHOD.md): audio-aware warper, Audio Aware Aggregation,
Regionwise Ray Sampling. The dual NeRF and losses are in :mod:`aebench.aenerf.model`."""
