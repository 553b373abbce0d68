"""Grid encodings of a position for the fast fields (issue 21): the multiresolution hash
encoding of Instant-NGP and ER-NeRF's tri-plane of 2D hash grids. Pure PyTorch (CPU and CUDA).

:class:`HashGrid` (Mueller et al. 2022, "Instant Neural Graphics Primitives with a Multiresolution
Hash Encoding", section 3): ``levels`` grids with resolutions N_l = floor(N_min b^l),
b = exp((ln N_max - ln N_min) / (L - 1)); each holds ``features`` learned values per vertex in a
table of at most T = 2^log2_table entries. A point in the box is scaled to each level's grid,
the values at the 2^d vertices of its cell are interpolated (d-linear) and the L results are
concatenated (L F outputs). A level whose (N_l + 1)^d vertices fit the table indexes them
directly (collision-free); the others use the paper's spatial hash
h(x) = (XOR_i x_i pi_i) mod T with pi = (1, 2654435761, 805459861). Each level's table holds
min(T, (N_l + 1)^d) entries (the layout of torch-ngp's ``gridencoder``), so the parameters are
``F * sum_l min(T, (N_l + 1)^d)`` values (:meth:`HashGrid.table_entries`). Values start
uniform in [-1e-4, 1e-4] (the paper).

:class:`TriPlane` (ER-NeRF, Li et al. ICCV 2023; ``Fictionarry/ER-NeRF`` nerf_triplane/network.py
``encode_x``): three 2D hash grids over the (x, y), (y, z) and (x, z) planes, their features
concatenated in that order (ER-NeRF uses 12 levels of 1 feature from 64 to 512 x bound, T = 2^14).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PRIMES = (1, 2654435761, 805459861)
INIT_RANGE = 1e-4


def level_resolutions(levels: int, min_res: int, max_res: int) -> list[int]:
    """N_l = floor(N_min * b^l) with b = exp((ln N_max - ln N_min) / (L - 1))."""
    if levels == 1:
        return [int(min_res)]
    b = math.exp((math.log(max_res) - math.log(min_res)) / (levels - 1))
    return [int(math.floor(min_res * b ** lv + 1e-9)) for lv in range(levels)]


class HashGrid(nn.Module):
    """(..., in_dim) positions inside the box (``[-bound, bound]^in_dim`` until :meth:`set_box`)
    -> (..., levels * features); points outside take the values at the box's faces."""

    def __init__(self, in_dim: int = 3, levels: int = 16, features: int = 2, log2_table: int = 19,
                 min_res: int = 16, max_res: int = 2048, bound: float = 1.0):
        super().__init__()
        if in_dim > len(PRIMES):
            raise ValueError(f"HashGrid takes at most {len(PRIMES)} input dimensions, got {in_dim}")
        self.in_dim, self.levels, self.features = in_dim, levels, features
        self.table_size = 2 ** int(log2_table)
        self.resolutions = level_resolutions(levels, min_res, max_res)
        sizes = [min(self.table_size, (r + 1) ** in_dim) for r in self.resolutions]
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        self.register_buffer("res", torch.tensor(self.resolutions, dtype=torch.long), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.long), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets[:-1], dtype=torch.long), persistent=False)
        self.register_buffer("direct", torch.tensor([(r + 1) ** in_dim <= self.table_size for r in self.resolutions]),
                             persistent=False)
        corners = torch.stack(torch.meshgrid(*[torch.arange(2)] * in_dim, indexing="ij"), -1).reshape(-1, in_dim)
        self.register_buffer("corners", corners, persistent=False)  # (2^d, d)
        self.register_buffer("primes", torch.tensor(PRIMES[:in_dim], dtype=torch.long), persistent=False)
        self.register_buffer("box", torch.tensor([[-float(bound)] * in_dim, [float(bound)] * in_dim]))  # (2, d), saved
        self.table = nn.Parameter(torch.empty(offsets[-1], features).uniform_(-INIT_RANGE, INIT_RANGE))

    @property
    def out_dim(self) -> int:
        return self.levels * self.features

    def set_box(self, box: Tensor) -> None:
        """The (2, in_dim) min/max corners the grid spans."""
        self.box.copy_(box.to(self.box))

    def table_entries(self) -> int:
        """sum_l min(T, (N_l + 1)^d): the table rows (times ``features`` = the parameters)."""
        return int(self.sizes.sum())

    def vertex_index(self, vertex: Tensor) -> Tensor:
        """Table rows of integer grid vertices (..., L, d) (level l's vertices in [0, N_l]) -> (..., L)."""
        res1 = (self.res + 1)[:, None]  # (L, 1)
        strides = res1 ** torch.arange(self.in_dim, device=vertex.device)  # (L, d)
        direct = (vertex * strides).sum(-1)
        hashed = vertex[..., 0] * self.primes[0]
        for i in range(1, self.in_dim):
            hashed = hashed ^ (vertex[..., i] * self.primes[i])
        local = torch.where(self.direct, direct, hashed & (self.table_size - 1))
        return self.offsets + local % self.sizes

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1]
        lo, hi = self.box.to(x.dtype)
        u = ((x.reshape(-1, self.in_dim) - lo) / (hi - lo)).clamp(0.0, 1.0)  # (P, d) in [0, 1]
        pos = u[:, None, :] * self.res[:, None].to(u.dtype)  # (P, L, d)
        cell = torch.minimum(pos.floor().long(), (self.res - 1)[:, None])  # the top face stays in the last cell
        frac = pos - cell.to(u.dtype)
        out = 0.0
        for corner in self.corners:  # 2^d corners: weight prod(frac or 1 - frac)
            w = torch.where(corner.bool(), frac, 1 - frac).prod(-1)  # (P, L)
            out = out + w[..., None] * self.table[self.vertex_index(cell + corner)]  # (P, L, F)
        return out.reshape(*shape, self.out_dim)


class TriPlane(nn.Module):
    """(..., 3) -> (..., 3 levels features): 2D hash grids on (x, y), (y, z), (x, z), concatenated."""

    PLANES = ((0, 1), (1, 2), (0, 2))

    def __init__(self, levels: int = 12, features: int = 1, log2_table: int = 14, min_res: int = 64,
                 max_res: int = 512, bound: float = 1.0):
        super().__init__()
        self.planes = nn.ModuleList(HashGrid(2, levels, features, log2_table, min_res, max_res, bound)
                                    for _ in self.PLANES)

    @property
    def out_dim(self) -> int:
        return sum(p.out_dim for p in self.planes)

    def table_entries(self) -> int:
        return sum(p.table_entries() for p in self.planes)

    def set_box(self, box: Tensor) -> None:
        """The (2, 3) box; each plane spans its two axes of it."""
        for grid, axes in zip(self.planes, self.PLANES):
            grid.set_box(box[:, list(axes)])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([grid(x[..., list(axes)]) for grid, axes in zip(self.planes, self.PLANES)], -1)
