"""Glue between :class:`worldgen.world.World` and the compiled kernels (:mod:`worldgen.jitworld`).

It packs the river-point grid (:class:`worldgen.rivergrid.RiverGrid`) into a sorted key array
with CSR offsets, keeps the ``GetRiverWeight`` cache as the kernels expect it (``state`` =
[cached key, stale flag, snapshot length] and ``snap``, the cached cell's points from before the
render that replaced them), runs ``PlaceStreams``' loop compiled, and evaluates heights.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from worldgen.biomes import F32Array, VersionConstants
from worldgen.jitcore import base_height as base_kernel
from worldgen.jitcore import njit
from worldgen.jitworld import heights_grid, heights_of, place_streams
from worldgen.pregen import River, _river, render_rivers
from worldgen.rivergrid import Cell, RiverGrid
from worldgen.unity_random import UnityRandom, WorldOffsets

F32 = np.float32
_NO_KEY = (-999999 << 32) ^ (-999999 & 0xFFFFFFFF)


def cell_key(cell: Cell) -> int:
    return (cell[0] << 32) ^ (cell[1] & 0xFFFFFFFF)


@njit
def _bases(off0: float, off1: float, mmd: float, xs: np.ndarray, zs: np.ndarray,
           out: np.ndarray) -> None:
    for i in range(xs.size):
        out[i] = base_kernel(off0, off1, mmd, np.float64(xs[i]), np.float64(zs[i]))


class FastTerrain:
    """One world's compiled-path state: constants, packed river grid and cache."""

    def __init__(self, offsets: WorldOffsets, consts: VersionConstants) -> None:
        self.offs = np.array([offsets.off0, offsets.off1, offsets.off2, offsets.off3,
                              offsets.off4], dtype=np.float64)
        self.consts = np.array([consts.min_mountain_distance, consts.min_darkland_noise,
                                consts.max_marsh_distance], dtype=np.float64)
        self.keys = np.zeros(0, dtype=np.int64)
        self.starts = np.zeros(1, dtype=np.int64)
        self.pts = np.zeros((0, 4), dtype=np.float64)
        self.state = np.array([_NO_KEY, 0, 0], dtype=np.int64)
        self.snap = np.zeros((0, 4), dtype=np.float64)

    def base(self, x: F32Array, z: F32Array) -> F32Array:
        """``GetBaseHeight`` of flat float32 points."""
        out = np.empty(x.size, dtype=np.float64)
        _bases(float(self.offs[0]), float(self.offs[1]), float(self.consts[0]),
               np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(z, dtype=F32), out)
        return out.astype(F32)

    def pack(self, grid: RiverGrid) -> None:
        """Re-pack the grid after a render, snapshotting the cached cell if it changed."""
        cached = int(self.state[0])
        old = self._cell_points(cached)
        items = sorted((cell_key(c), p) for c, p in grid.cells.items())
        self.keys = np.array([k for k, _ in items], dtype=np.int64)
        counts = np.array([p.x.size for _, p in items], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        if items:
            self.pts = np.concatenate([np.stack((p.x, p.y, p.w, p.w2), axis=1)
                                       for _, p in items]).astype(np.float64)
        new = self._cell_points(cached)
        if self.state[1] == 0 and (old.shape != new.shape or not np.array_equal(old, new)):
            self.snap = old
            self.state[1] = 1
            self.state[2] = old.shape[0]

    def _cell_points(self, key: int) -> npt.NDArray[np.float64]:
        i = int(np.searchsorted(self.keys, key))
        if i < self.keys.size and self.keys[i] == key:
            return self.pts[self.starts[i]:self.starts[i + 1]].copy()
        return np.zeros((0, 4), dtype=np.float64)

    def streams(self, grid: RiverGrid, stream_seed: int, deep_north: bool) -> list[River]:
        """``PlaceStreams(isDN)``: the compiled loop, then ``RenderRivers`` and a re-pack."""
        rng = UnityRandom(stream_seed)
        words = np.array([w & 0xFFFFFFFF for w in rng.state], dtype=np.int64)
        rows = np.zeros((3000, 6), dtype=np.float64)
        n = place_streams(self.offs, self.consts, self.keys, self.starts, self.pts, self.state,
                          self.snap, words, not deep_north, rows)
        rng.state = (int(words[0]), int(words[1]), int(words[2]), int(words[3]))
        found = [_river((r[0], r[1]), (r[2], r[3]), (r[4], r[5]), 20.0, 20.0)
                 for r in rows[:n].tolist()]
        render_rivers(rng, found, grid, rule=2 if deep_north else 1)
        self.pack(grid)
        return found

    def heights(self, x: F32Array, z: F32Array) -> F32Array:
        """``GetHeight`` of flat points, from the post-pre-generation cache state."""
        out = np.empty(x.size, dtype=np.float64)
        heights_of(self.offs, self.consts, self.keys, self.starts, self.pts, self.state.copy(),
                   self.snap, np.ascontiguousarray(x, dtype=F32),
                   np.ascontiguousarray(z, dtype=F32), out)
        return out.astype(F32)

    def grid(self, xs: F32Array, zs: F32Array) -> F32Array:
        """``GetHeight`` on a tensor grid: shape ``(len(zs), len(xs))``, rows in order."""
        out = np.empty((zs.size, xs.size), dtype=np.float64)
        heights_grid(self.offs, self.consts, self.keys, self.starts, self.pts,
                     self.state.copy(), self.snap, np.ascontiguousarray(xs, dtype=F32),
                     np.ascontiguousarray(zs, dtype=F32), out)
        return out.astype(F32)
