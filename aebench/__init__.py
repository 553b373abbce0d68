"""aebench: benchmark and evaluation suite for few-shot, audio-driven NeRF talking heads.

One import namespace (DESIGN.md, "Layout and layers"): the foundation here (media, paths,
config and typed settings, prepared identities and audio features, the weights store, the
Method API), the methods (:mod:`aebench.aenerf`, :mod:`aebench.baselines`), the metrics
(:mod:`aebench.eval`) and the harness above them (:mod:`aebench.harness`).
"""

__version__ = "0.1.0"
