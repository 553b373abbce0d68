"""AE-NeRF through the Method API: the shared NeRF skeleton (:mod:`aebench.engine.method`)
filled with AE-NeRF's settings and network (:mod:`aebench.aenerf.model`).

Base model over the training halves of several identities, few-shot fine-tuning from it
(continuing its global step), rendering with L fixed references spread over the fine-tuning
clip; while training, L random other frames of the same clip are the references (DFRF's
scheme; the target never serves as its own reference, except in a one-frame clip).
"""

from __future__ import annotations

from aebench.engine.method import NeRFMethod
from aebench.aenerf.model import AENeRFModel, AENeRFSettings


class AENeRF(NeRFMethod):
    name = "aenerf"
    has_base_model = True
    settings_cls = AENeRFSettings
    model_cls = AENeRFModel
