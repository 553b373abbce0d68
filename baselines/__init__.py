"""Baselines re-implemented on the shared engine (DFRF, AD-NeRF) and `external` for any other method's renders."""
