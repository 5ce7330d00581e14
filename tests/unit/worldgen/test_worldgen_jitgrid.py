"""The separable grid kernel against the per-point grid kernel: bit-identical on whole lattices."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.generate import lattice_coords
from worldgen.jitgrid import heights_grid_sep
from worldgen.jitworld import heights_grid
from worldgen.world import World

# The first World built in a process compiles the numba kernels (a minute on a busy box).
pytestmark = [pytest.mark.unit, pytest.mark.timeout(600)]


def _both(w: World, xs: np.ndarray, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fast = w._fast
    assert fast is not None
    outs = []
    for kernel in (heights_grid_sep, heights_grid):
        out = np.empty((zs.size, xs.size), dtype=np.float64)
        kernel(fast.offs, fast.consts, fast.meta, fast.idx, fast.pts, fast.state.copy(), xs, zs,
               out)
        outs.append(out.astype(np.float32).view(np.uint32))
    return outs[0], outs[1]


def test_separable_grid_equals_per_point_grid() -> None:
    w = World("jitgrid-check")
    c = np.ascontiguousarray(lattice_coords(1024), dtype=np.float32)
    sep, plain = _both(w, c, c)
    assert np.array_equal(sep, plain)
    # a rectangle across the edge, the AshLands and DeepNorth rings, off the lattice
    xs = np.linspace(-10600.0, 10600.0, 701).astype(np.float32)
    zs = np.linspace(-10600.0, 10600.0, 257).astype(np.float32)
    sep, plain = _both(w, xs, zs)
    assert np.array_equal(sep, plain)
    assert len(np.unique(plain)) > 1000  # the grid covers real terrain, not only the edge
