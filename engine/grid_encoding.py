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

How a level is evaluated (the values are the same either way, to float rounding): a level whose
vertices fit the table, and every 2D level, is read as a dense texture of its (N_l + 1)^d vertex
values (for a direct level the table slice itself; for a hashed 2D level gathered from the table
once per call, (N_l + 1)^2 rows, far fewer than the points' corners) and interpolated by
``torch.nn.functional.grid_sample`` (align_corners, border: the vertex grid spans [-1, 1] at every
level), one optimised kernel instead of 2^d gathers per point; hashed 3D levels gather their 2^d
corners per point (a dense texture of them would outgrow the table by far).
"""

from __future__ import annotations

import math

import numpy as np

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PRIMES = (1, 2654435761, 805459861)
INIT_RANGE = 1e-4


def level_resolutions(levels: int, min_res: int, max_res: int) -> list[int]:
    """N_l = floor(N_min * b^l) with b = exp((ln N_max - ln N_min) / (L - 1))."""
    if levels == 1:
        return [int(min_res)]
    b = math.exp((math.log(max_res) - math.log(min_res)) / (levels - 1))
    return [int(math.floor(min_res * b**lv + 1e-9)) for lv in range(levels)]


class _Grid(nn.Module):
    """What both grid layouts share: ``levels`` x ``features`` outputs over a saved (2, d) ``box``."""

    levels: int
    features: int
    box: Tensor

    @property
    def out_dim(self) -> int:
        return self.levels * self.features

    def set_box(self, box: Tensor) -> None:
        """The (2, in_dim) min/max corners the grid spans (mapped to [0, 1])."""
        self.box.copy_(box.to(self.box))


class HashGrid(_Grid):
    """(..., in_dim) positions inside the box (``[-bound, bound]^in_dim`` until :meth:`set_box`)
    -> (..., levels * features); points outside take the values at the box's faces."""

    def __init__(
        self,
        in_dim: int = 3,
        levels: int = 16,
        features: int = 2,
        log2_table: int = 19,
        min_res: int = 16,
        max_res: int = 2048,
        bound: float = 1.0,
    ):
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
        self.level_fits = [(r + 1) ** in_dim <= self.table_size for r in self.resolutions]
        self.register_buffer("direct", torch.tensor(self.level_fits), persistent=False)
        corners = torch.stack(torch.meshgrid(*[torch.arange(2)] * in_dim, indexing="ij"), -1).reshape(-1, in_dim)
        self.register_buffer("corners", corners, persistent=False)  # (2^d, d)
        self.register_buffer("primes", torch.tensor(PRIMES[:in_dim], dtype=torch.long), persistent=False)
        self.register_buffer("box", torch.tensor([[-float(bound)] * in_dim, [float(bound)] * in_dim]))  # (2, d), saved
        self.table = nn.Parameter(torch.empty(offsets[-1], features).uniform_(-INIT_RANGE, INIT_RANGE))
        # host-side lists for the forward's control flow (level_fits above too): reading the device
        # buffers there would synchronise with a GPU once per level and call
        self.level_offsets = offsets[:-1]
        self.textured = [fits or in_dim == 2 for fits in self.level_fits]  # see the module docstring
        self.gathered_levels = [lv for lv, t in enumerate(self.textured) if not t]
        self.register_buffer("gathered", torch.tensor(self.gathered_levels, dtype=torch.long), persistent=False)
        for lv in range(levels):
            if self.textured[lv] and not self.level_fits[lv]:
                self.register_buffer(f"texel_rows_{lv}", self._texel_rows(lv), persistent=False)

    def table_entries(self) -> int:
        """sum_l min(T, (N_l + 1)^d): the table rows (times ``features`` = the parameters)."""
        return int(self.sizes.sum())

    def vertex_index(self, vertex: Tensor, levels: Tensor | None = None) -> Tensor:
        """Table rows of integer grid vertices (..., L', d) of levels ``levels`` (L',) (default all L;
        level l's vertices in [0, N_l]) -> (..., L')."""
        levels = torch.arange(self.levels, device=vertex.device) if levels is None else levels
        res1 = (self.res[levels] + 1)[:, None]  # (L', 1)
        strides = res1 ** torch.arange(self.in_dim, device=vertex.device)  # (L', d)
        direct = (vertex * strides).sum(-1)
        hashed = vertex[..., 0] * self.primes[0]
        for i in range(1, self.in_dim):
            hashed = hashed ^ (vertex[..., i] * self.primes[i])
        local = torch.where(self.direct[levels], direct, hashed & (self.table_size - 1))
        return self.offsets[levels] + local % self.sizes[levels]

    def _texel_rows(self, level: int) -> Tensor:
        """Table rows of level ``level``'s vertices laid out as its texture ((N + 1,) * d, the last
        axis the first coordinate, as grid_sample reads (x, y[, z]))."""
        r1 = self.resolutions[level] + 1
        axes = torch.meshgrid(*[torch.arange(r1)] * self.in_dim, indexing="ij")
        vertex = torch.stack(axes[::-1], -1).reshape(-1, 1, self.in_dim)
        return self.vertex_index(vertex, torch.tensor([level]))[:, 0].reshape((r1,) * self.in_dim)

    def texture(self, level: int) -> Tensor:
        """Level ``level``'s vertex values as a grid_sample input (1, F, (N + 1,) * d)."""
        r1 = self.resolutions[level] + 1
        if self.level_fits[level]:  # the direct layout is already x-fastest
            start = self.level_offsets[level]
            values = self.table[start : start + r1**self.in_dim]
        else:
            values = self.table[getattr(self, f"texel_rows_{level}").reshape(-1)]
        return values.t().reshape((1, self.features) + (r1,) * self.in_dim)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1]
        lo, hi = self.box.to(x.dtype)
        u = ((x.reshape(-1, self.in_dim) - lo) / (hi - lo)).clamp(0.0, 1.0)  # (P, d) in [0, 1]
        out: list[Tensor | None] = [None] * self.levels
        where = (2.0 * u - 1.0).reshape((1,) * self.in_dim + u.shape)  # (1, 1[, 1], P, d) in [-1, 1]
        for lv in range(self.levels):
            if self.textured[lv]:
                val = F.grid_sample(
                    self.texture(lv).to(u.dtype), where, mode="bilinear", padding_mode="border", align_corners=True
                )  # (1, F, 1[, 1], P)
                out[lv] = val.reshape(self.features, -1).t()
        if self.gathered_levels:
            for lv, val in zip(self.gathered_levels, self._gather(u, self.gathered).unbind(1)):
                out[lv] = val
        return torch.cat(out, -1).reshape(*shape, self.out_dim)

    def _gather(self, u: Tensor, levels: Tensor) -> Tensor:
        """Levels ``levels`` (L',) at points ``u`` (P, d) in [0, 1] from their 2^d corner rows -> (P, L', F)."""
        res = self.res[levels]
        pos = u[:, None, :] * res[:, None].to(u.dtype)  # (P, L', d)
        cell = torch.minimum(pos.floor().long(), (res - 1)[:, None])  # the top face stays in the last cell
        frac = pos - cell.to(u.dtype)
        out = 0.0
        for corner in self.corners:  # 2^d corners: weight prod(frac or 1 - frac)
            w = torch.where(corner.bool(), frac, 1 - frac).prod(-1)  # (P, L')
            out = out + w[..., None] * self.table[self.vertex_index(cell + corner, levels)]  # (P, L', F)
        return out


class TriPlane(nn.Module):
    """(..., 3) -> (..., 3 levels features): 2D hash grids on (x, y), (y, z), (x, z), concatenated."""

    PLANES = ((0, 1), (1, 2), (0, 2))

    def __init__(
        self, levels: int = 12, features: int = 1, log2_table: int = 14, min_res: int = 64, max_res: int = 512, bound: float = 1.0
    ):
        super().__init__()
        self.planes = nn.ModuleList(HashGrid(2, levels, features, log2_table, min_res, max_res, bound) for _ in self.PLANES)

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


class NGPGrid(_Grid):
    """torch-ngp's hash grid, as ER-NeRF's ``gridencoder`` computes it (``Fictionarry/ER-NeRF``
    gridencoder/grid.py and src/gridencoder.cu, hash type, ``align_corners=False``): the layout
    its official network needs, which differs from :class:`HashGrid`'s in four ways.

    * Level l's scale is ``2^(l S) H - 1`` with S = log2 of the per-level factor
      ``(N_max / H)^(1 / (L - 1))`` and H the base resolution (float32, as ``exp2f``), its
      resolution ``ceil(scale) + 1``; a point u in [0, 1] sits at ``u scale + 0.5`` in vertex units.
    * Level l's table holds ``min(T, (ceil(H b^l) + 1)^d)`` rows rounded up to a multiple of 8.
    * A vertex's row is its direct index while the level's ``(resolution + 1)^d`` vertices fit the
      table, else the spatial hash (XOR of coordinate x prime, in uint32), then modulo the table.
    * A point outside the box gives 0 at every level.

    Values start uniform in [-1e-4, 1e-4]. Levels are read as (resolution + 1)^d textures through
    ``grid_sample`` (the same bilinear weights as the kernel's loop over corners)."""

    def __init__(
        self, in_dim: int = 2, levels: int = 12, features: int = 1, log2_table: int = 14, base_res: int = 64, max_res: float = 512.0
    ):
        super().__init__()
        if in_dim != 2:
            raise ValueError("NGPGrid reads its levels as 2D textures: in_dim must be 2 (ER-NeRF's planes)")
        self.in_dim, self.levels, self.features = in_dim, levels, features
        table = 2 ** int(log2_table)
        per_level = float(np.exp2(np.log2(max_res / base_res) / (levels - 1))) if levels > 1 else 1.0
        log_scale = np.float32(np.log2(per_level))
        sizes, self.scales, self.resolutions = [], [], []
        for lv in range(levels):
            rows = min(table, (int(np.ceil(base_res * per_level**lv)) + 1) ** in_dim)
            sizes.append(int(np.ceil(rows / 8) * 8))
            scale = float(np.exp2(np.float32(lv) * log_scale, dtype=np.float32) * np.float32(base_res) - np.float32(1.0))
            self.scales.append(scale)
            self.resolutions.append(int(np.ceil(np.float32(scale))) + 1)
        self.sizes = sizes
        self.offsets = [int(o) for o in np.cumsum([0] + sizes[:-1])]
        self.register_buffer("box", torch.tensor([[-1.0] * in_dim, [1.0] * in_dim]))  # (2, d), saved
        self.table = nn.Parameter(torch.empty(sum(sizes), features).uniform_(-INIT_RANGE, INIT_RANGE))
        for lv in range(levels):
            self.register_buffer(f"texel_rows_{lv}", self._texel_rows(lv), persistent=False)

    def _texel_rows(self, level: int) -> Tensor:
        """Rows of level ``level``'s (R + 1)^2 vertices, laid out (y, x) as grid_sample reads them."""
        r1 = self.resolutions[level] + 1
        y, x = torch.meshgrid(torch.arange(r1, dtype=torch.long), torch.arange(r1, dtype=torch.long), indexing="ij")
        size = self.sizes[level]
        if r1**2 <= size:
            local = x + y * r1
        else:
            local = ((x * PRIMES[0]) ^ (y * PRIMES[1])) & 0xFFFFFFFF
        return self.offsets[level] + local % size

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1]
        lo, hi = self.box.to(x.dtype)
        u = (x.reshape(-1, self.in_dim) - lo) / (hi - lo)  # (P, 2), in [0, 1] inside the box
        inside = ((u >= 0) & (u <= 1)).all(-1, keepdim=True).to(x.dtype)
        out = []
        for lv in range(self.levels):
            r1 = self.resolutions[lv] + 1
            texture = self.table[getattr(self, f"texel_rows_{lv}")].to(x.dtype)  # (R + 1, R + 1, F)
            pos = u * self.scales[lv] + 0.5  # vertex units, in [0.5, scale + 0.5] inside
            where = (2.0 * pos / (r1 - 1) - 1.0).reshape(1, 1, -1, 2)
            val = F.grid_sample(texture.permute(2, 0, 1)[None], where, mode="bilinear", padding_mode="border", align_corners=True)
            out.append(val.reshape(self.features, -1).t())
        return (torch.cat(out, -1) * inside).reshape(*shape, self.out_dim)


class NGPTriPlane(TriPlane):
    """ER-NeRF's tri-plane with its official grid layout (:class:`NGPGrid` per plane): (..., 3) ->
    (..., 3 levels features), planes (x, y), (y, z), (x, z) (``encode_x``, ``split_xyz``)."""

    def __init__(self, levels: int = 12, features: int = 1, log2_table: int = 14, min_res: int = 64, max_res: int = 512):
        nn.Module.__init__(self)
        self.planes = nn.ModuleList(NGPGrid(2, levels, features, log2_table, min_res, max_res) for _ in self.PLANES)

    def table_entries(self) -> int:
        return sum(sum(p.sizes) for p in self.planes)
