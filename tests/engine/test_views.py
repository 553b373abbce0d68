"""Ray batches: the official transposed face rectangle (``train.face_rect=official``)."""

import numpy as np
import torch

from aebench.engine.views import Views, face_boxes, sample_rays


def _views(h=12, w=20):
    masks = torch.zeros(1, h, w, dtype=torch.uint8)
    masks[0, 2:6, 3:9] = 1  # head rows 2-5, columns 3-8: box x0=3, y0=2, x1=8, y1=5
    return Views(
        name="v",
        frames=torch.zeros(1, h, w, 3, dtype=torch.uint8),
        masks=masks,
        poses=torch.eye(4)[None],
        intrinsics=torch.tensor([10.0, w / 2, h / 2]),
        background=torch.zeros(h, w, 3),
        near=1.0,
        far=2.0,
        audio=None,
        indices=np.arange(1),
        face_box=face_boxes(masks),
    )


def test_official_rectangle_is_transposed_and_drawn_without_replacement():
    v = _views()
    g = torch.Generator().manual_seed(0)
    b = sample_rays(v, 0, 40, 0.5, g, "official")
    rows = (b["uv"][:, 1] - 0.5).long()
    cols = (b["uv"][:, 0] - 0.5).long()
    inside = (rows >= 3) & (rows <= 8) & (cols >= 2) & (cols <= 5)  # rows in [x0, x1], columns in [y0, y1]
    assert inside[:20].all() and not inside[20:].any()  # face rays first, the rest outside
    pix = rows * 20 + cols
    assert len(set(pix[:20].tolist())) == 20 and len(set(pix[20:].tolist())) == 20  # no replacement
    box = sample_rays(v, 0, 40, 0.5, torch.Generator().manual_seed(0), "box")
    r, c = (box["uv"][:20, 1] - 0.5).long(), (box["uv"][:20, 0] - 0.5).long()
    assert ((r >= 2) & (r <= 5) & (c >= 3) & (c <= 8)).all()  # the true box
