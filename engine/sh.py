"""Real spherical harmonics of a unit direction up to band 3 (16 values): ER-NeRF's view-direction
encoding (``get_encoder('spherical_harmonics')``, degree 4: torch-ngp's ``shencoder``, whose
basis is the real SH of Sloan's "Efficient Spherical Harmonic Evaluation" with the signs and order
of ``Fictionarry/ER-NeRF`` shencoder/src/shencoder.cu).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_PI = math.pi
_C0 = 0.5 / math.sqrt(_PI)
_C1 = math.sqrt(3.0) / (2.0 * math.sqrt(_PI))
_C2 = (math.sqrt(15.0) / (2.0 * math.sqrt(_PI)), math.sqrt(5.0) / (4.0 * math.sqrt(_PI)), math.sqrt(15.0) / (4.0 * math.sqrt(_PI)))
_C3 = (
    math.sqrt(70.0) / (8.0 * math.sqrt(_PI)),
    math.sqrt(105.0) / (2.0 * math.sqrt(_PI)),
    math.sqrt(42.0) / (8.0 * math.sqrt(_PI)),
    math.sqrt(7.0) / (4.0 * math.sqrt(_PI)),
    math.sqrt(105.0) / (4.0 * math.sqrt(_PI)),
)


def sh_encode(d: Tensor, degree: int = 4) -> Tensor:
    """(..., 3) unit directions -> (..., degree^2) for degree 1 to 4 (bands 0 to degree - 1)."""
    if not 1 <= degree <= 4:
        raise ValueError(f"sh_encode supports degree 1 to 4, got {degree}")
    x, y, z = d.unbind(-1)
    out = [torch.full_like(x, _C0)]
    if degree > 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree > 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [_C2[0] * x * y, -_C2[0] * y * z, _C2[1] * (3.0 * zz - 1.0), -_C2[0] * x * z, _C2[2] * (xx - yy)]
    if degree > 3:
        out += [
            _C3[0] * y * (yy - 3.0 * xx),
            _C3[1] * x * y * z,
            _C3[2] * y * (1.0 - 5.0 * zz),
            _C3[3] * z * (5.0 * zz - 3.0),
            _C3[2] * x * (1.0 - 5.0 * zz),
            _C3[4] * z * (xx - yy),
            _C3[0] * x * (3.0 * yy - xx),
        ]
    return torch.stack(out, -1)
