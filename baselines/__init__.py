"""Baselines re-implemented on the shared engine (DFRF, AD-NeRF) and `external` for any other method's renders."""

if __name__ != "aebench.baselines":  # one import namespace: the folder is the package aebench.baselines
    raise ImportError(
        f"'{__name__}' is not an import name: the baselines/ folder imports as aebench.baselines "
        "(e.g. `from aebench.baselines.dfrf import DFRF`) once aebench is installed (pip install -e .)"
    )
