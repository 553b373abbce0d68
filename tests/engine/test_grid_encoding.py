"""The hash-grid and tri-plane encodings against a naive per-point loop, gradcheck, continuity,
collision-free direct levels and the table-size formula."""

import itertools
import math

import pytest
import torch

from aebench.engine.grid_encoding import PRIMES, HashGrid, TriPlane, level_resolutions


def naive(grid: HashGrid, x: torch.Tensor) -> torch.Tensor:
    """The paper's algorithm point by point, level by level, corner by corner (Python ints)."""
    out = []
    for p in x.tolist():
        feats = []
        for lv, n in enumerate(grid.resolutions):
            size = min(grid.table_size, (n + 1) ** grid.in_dim)
            offset = sum(min(grid.table_size, (r + 1) ** grid.in_dim) for r in grid.resolutions[:lv])
            lo, hi = grid.box.tolist()
            u = [min(max((c - a) / (b - a), 0.0), 1.0) * n for c, a, b in zip(p, lo, hi)]
            cell = [min(int(math.floor(c)), n - 1) for c in u]
            acc = torch.zeros(grid.features, dtype=x.dtype)
            for corner in itertools.product((0, 1), repeat=grid.in_dim):
                v = [c + o for c, o in zip(cell, corner)]
                w = 1.0
                for c, o, uu in zip(cell, corner, u):
                    w *= (uu - c) if o else (1 - (uu - c))
                if (n + 1) ** grid.in_dim <= grid.table_size:
                    idx = sum(vi * (n + 1) ** i for i, vi in enumerate(v))
                else:
                    h = 0
                    for vi, prime in zip(v, PRIMES):
                        h ^= (vi * prime) % 2**32  # the paper's uint32 arithmetic
                    idx = h % grid.table_size
                acc = acc + w * grid.table[offset + idx % size].detach()
            feats.append(acc)
        out.append(torch.cat(feats))
    return torch.stack(out)


def test_resolutions_are_geometric():
    assert level_resolutions(16, 16, 2048)[0] == 16 and level_resolutions(16, 16, 2048)[-1] == 2048
    assert level_resolutions(4, 2, 16) == [2, 4, 8, 16]


@pytest.mark.parametrize("dim", [2, 3])
def test_hashgrid_equals_the_naive_loop(dim):
    torch.manual_seed(0)
    grid = HashGrid(dim, levels=4, features=2, log2_table=6, min_res=2, max_res=24, bound=1.5).double()
    with torch.no_grad():
        grid.table.normal_()
    x = torch.rand(40, dim, dtype=torch.float64) * 3.4 - 1.7  # also outside the box: clamped to its faces
    assert grid.direct.tolist()[:1] == [True] and not grid.direct.tolist()[-1]  # both kinds of levels
    torch.testing.assert_close(grid(x), naive(grid, x), rtol=0, atol=1e-12)


def test_triplane_concatenates_the_three_planes():
    torch.manual_seed(0)
    tri = TriPlane(levels=3, features=2, log2_table=5, min_res=2, max_res=8).double()
    x = torch.rand(10, 3, dtype=torch.float64) * 2 - 1
    want = torch.cat([naive(tri.planes[0], x[:, [0, 1]]), naive(tri.planes[1], x[:, [1, 2]]), naive(tri.planes[2], x[:, [0, 2]])], -1)
    torch.testing.assert_close(tri(x), want, rtol=0, atol=1e-12)
    assert tri.out_dim == 3 * 3 * 2


@pytest.mark.parametrize("dim", [2, 3])
def test_gradcheck_in_float64(dim):
    """Gradients with respect to the positions and to the table (torch.func.functional_call), through
    a direct level (a texture) and a hashed one (a gathered texture in 2D, corner gathers in 3D)."""
    torch.manual_seed(0)
    grid = HashGrid(dim, levels=2, features=2, log2_table=5, min_res=2, max_res=9 if dim == 2 else 5).double()
    assert grid.direct.tolist() == [True, False]
    x = (torch.rand(6, dim, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    table = torch.randn_like(grid.table).requires_grad_(True)
    run = lambda x, t: torch.func.functional_call(grid, {"table": t}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(run, (x, table), eps=1e-6, atol=1e-5)


def test_continuous_across_cell_boundaries():
    torch.manual_seed(0)
    grid = HashGrid(3, levels=3, features=2, log2_table=8, min_res=4, max_res=16).double()
    with torch.no_grad():
        grid.table.normal_()
    edge = -1 + 2 * (3 / 16)  # a vertex plane of the finest level (16 cells over [-1, 1])
    for eps in (1e-6, 1e-8):
        a = torch.tensor([[edge - eps, 0.1, -0.3]], dtype=torch.float64)
        b = torch.tensor([[edge + eps, 0.1, -0.3]], dtype=torch.float64)
        assert (grid(a) - grid(b)).abs().max() < 1e3 * eps


def test_a_level_that_fits_is_collision_free():
    grid = HashGrid(3, levels=3, features=1, log2_table=12, min_res=4, max_res=32)
    assert grid.direct.tolist() == [True, True, False]  # 5^3, 12^3 = 1728 fit 4096; 33^3 does not
    for lv in (0, 1):
        n = grid.resolutions[lv]
        v = torch.stack(torch.meshgrid(*[torch.arange(n + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
        idx = grid.vertex_index(v[:, None, :].expand(-1, grid.levels, -1))[:, lv]
        assert idx.unique().numel() == (n + 1) ** 3  # every vertex its own row
    assert grid.vertex_index(torch.zeros(1, 3, 3, dtype=torch.long)).max() < grid.table_entries()


def test_table_memory_is_the_formula():
    for dim, (levels, feats, log2, lo, hi) in ((3, (16, 2, 19, 16, 2048)), (2, (12, 1, 14, 64, 512))):
        grid = HashGrid(dim, levels, feats, log2, lo, hi)
        want = feats * sum(min(2**log2, (n + 1) ** dim) for n in level_resolutions(levels, lo, hi))
        assert grid.table.numel() == want
    tri = TriPlane()
    assert sum(p.numel() for p in tri.parameters()) == 3 * sum(min(2**14, (n + 1) ** 2) for n in level_resolutions(12, 64, 512))
