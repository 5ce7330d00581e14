"""Glue between :class:`worldgen.world.World` and the compiled kernels (:mod:`worldgen.jitworld`).

It keeps the river-point grid as one layer per ``RenderRivers`` (filled through
:meth:`FastTerrain.add_points`) and the ``GetRiverWeight`` cache as the kernels expect them
(``state`` = [cached cell key, layers visible to the cache], see :mod:`worldgen.jitriver`); it
runs ``MergePoints`` and ``PlaceStreams``' loop compiled, and evaluates heights.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

from worldgen import pregen
from worldgen.biomes import F32Array, VersionConstants
from worldgen.jitcore import base_height as base_kernel
from worldgen.jitcore import njit
from worldgen.jitgrid import heights_grid_sep
from worldgen.jitplace import merge_points, place_rivers
from worldgen.jitrender import render, render_count
from worldgen.jitriver import META_COLS, build_layer
from worldgen.jitworld import heights_of, place_streams, river_weights
from worldgen.pregen import River, _mid, _river, render_rivers
from worldgen.rivergrid import Cell
from worldgen.unity_random import UnityRandom, WorldOffsets

F32 = np.float32
_T = TypeVar("_T", bound=np.generic)
_NO_KEY = (-999999 << 32) ^ (-999999 & 0xFFFFFFFF)
_IDX_RESERVE = 8_000_000  # int32 entries of the river grid's index (a world uses ~5 M)
_PTS_RESERVE = 1_200_000  # river-grid rows (a world uses ~0.7 M)


def _grown(buf: npt.NDArray[_T], used: int, need: int) -> npt.NDArray[_T]:
    """A larger copy of ``buf`` (its first ``used`` rows kept) with room for ``need`` rows."""
    if need <= buf.shape[0]:
        return buf
    out = np.empty((max(need, 2 * buf.shape[0]), *buf.shape[1:]), dtype=buf.dtype)
    out[:used] = buf[:used]
    return out


@njit
def _bases(off0: float, off1: float, mmd: float, xs: np.ndarray, zs: np.ndarray,
           out: np.ndarray) -> None:
    for i in range(xs.size):
        out[i] = base_kernel(off0, off1, mmd, np.float64(xs[i]), np.float64(zs[i]))


def merge_points_fast(points: F32Array, radius: float) -> list[tuple[float, float]]:
    """``MergePoints`` of float32 (n, 2) points with the compiled kernel."""
    pts = np.array(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros_like(pts)
    if radius != 800.0:
        raise ValueError("merge_points_fast is specialised for FindLakes' 800 m")
    m = merge_points(np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1]),
                     float(np.float32(radius)), out)
    return [(float(x), float(y)) for x, y in out[:m]]


class FastTerrain:
    """One world's compiled-path state: constants, packed river grid and cache."""

    def __init__(self, offsets: WorldOffsets, consts: VersionConstants) -> None:
        self.offs = np.array([offsets.off0, offsets.off1, offsets.off2, offsets.off3,
                              offsets.off4], dtype=np.float64)
        self.consts = np.array([consts.min_mountain_distance, consts.min_darkland_noise,
                                consts.max_marsh_distance], dtype=np.float64)
        self.meta = np.zeros((0, META_COLS), dtype=np.int64)
        # Room for a typical world's three renders, reserved (not touched) up front so that a
        # render writes its layer in place instead of copying the older ones.
        self._idx_buf = np.empty(_IDX_RESERVE, dtype=np.int32)
        self._pts_buf = np.empty((_PTS_RESERVE, 4), dtype=np.float64)
        self.idx = self._idx_buf[:0]
        self.pts = self._pts_buf[:0]
        self.state = np.array([_NO_KEY, 0], dtype=np.int64)

    def base(self, x: F32Array, z: F32Array) -> F32Array:
        """``GetBaseHeight`` of flat float32 points."""
        out = np.empty(x.size, dtype=np.float64)
        _bases(float(self.offs[0]), float(self.offs[1]), float(self.consts[0]),
               np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(z, dtype=F32), out)
        return out.astype(F32)

    def add_points(self, px: F32Array, py: F32Array, r: F32Array) -> None:
        """``RenderRivers``' end: the points become a new layer after the existing ones (see
        :mod:`worldgen.jitriver`; the cache's view of older layers stays as it was)."""
        p64 = np.stack((px, py, r), axis=1).astype(np.float64)
        meta = np.zeros(META_COLS, dtype=np.int64)
        n_idx, n_pts = self.idx.size, self.pts.shape[0]
        while True:
            need_idx, need_pts = build_layer(p64, self._idx_buf, n_idx, self._pts_buf, n_pts,
                                             meta)
            if need_idx <= self._idx_buf.size and need_pts <= self._pts_buf.shape[0]:
                break
            if need_idx >= 2**31:
                raise ValueError("river-point grid too large for 32-bit indices")
            self._idx_buf = _grown(self._idx_buf, n_idx, need_idx)
            self._pts_buf = _grown(self._pts_buf, n_pts, need_pts)
        self.idx = self._idx_buf[:need_idx]
        self.pts = self._pts_buf[:need_pts]
        self.meta = np.ascontiguousarray(np.vstack((self.meta, meta[None, :])))

    def render_compiled(self, rng: UnityRandom, rivers: list[River], rule: int) -> None:
        """``RenderRivers`` with :mod:`worldgen.jitrender` (``rng`` advances as the game's)."""
        table = np.array([[r.p0[0], r.p0[1], r.p1[0], r.p1[1], r.width_min, r.width_max,
                           r.curve_width, r.curve_wavelength] for r in rivers],
                         dtype=np.float64).reshape(-1, 8)
        include = np.zeros(table.shape[0], dtype=np.bool_)
        out = np.zeros((render_count(table, rule, include), 3), dtype=np.float64)
        words = np.array([w & 0xFFFFFFFF for w in rng.state], dtype=np.int64)
        render(table, include, words, out)
        rng.state = (int(words[0]), int(words[1]), int(words[2]), int(words[3]))
        pts = out.astype(F32)
        self.add_points(pts[:, 0], pts[:, 1], pts[:, 2])

    def cells(self, layers: int | None = None) -> dict[Cell, npt.NDArray[np.float64]]:
        """Each cell's points (rows x, y, w, w2) over the first ``layers`` layers (all by
        default), in the order the game's array holds them."""
        out: dict[Cell, list[npt.NDArray[np.float64]]] = {}
        for layer in range(self.meta.shape[0] if layers is None else layers):
            gx0, gy0, nx, ny, map_off, cs_off, _, _ = (int(v) for v in self.meta[layer])
            ids = self.idx[map_off:map_off + nx * ny]
            for c in np.flatnonzero(ids >= 0).tolist():
                cell = (gx0 + c % nx, gy0 + c // nx)
                k = int(ids[c])
                lo, hi = int(self.idx[cs_off + k]), int(self.idx[cs_off + k + 1])
                out.setdefault(cell, []).append(self.pts[lo:hi])
        return {cell: np.concatenate(parts) for cell, parts in out.items()}

    def rivers(self, lakes: list[tuple[float, float]], river_seed: int) -> list[River]:
        """``PlaceRivers`` (the compiled :func:`worldgen.jitplace.place_rivers`), then
        ``RenderRivers`` into this grid, on the river seed's random stream."""
        rng = UnityRandom(river_seed)
        words = np.array([w & 0xFFFFFFFF for w in rng.state], dtype=np.int64)
        table = np.array(lakes, dtype=np.float64).reshape(-1, 2)
        n = table.shape[0]
        rows = np.zeros((n * (n - 1) // 2 + 1, 4), dtype=np.float64)
        count = place_rivers(self.offs, float(self.consts[0]), table, words, rows)
        rng.state = (int(words[0]), int(words[1]), int(words[2]), int(words[3]))
        found = []
        for a, b, wmin, wmax in rows[:count].tolist():
            p, q = lakes[int(a)], lakes[int(b)]
            found.append(_river(p, q, _mid(p, q), wmin, wmax))
        render_rivers(rng, found, self)
        return found

    def streams(self, stream_seed: int, deep_north: bool) -> list[River]:
        """``PlaceStreams(isDN)``: the compiled loop, then ``RenderRivers`` into this grid."""
        rng = UnityRandom(stream_seed)
        words = np.array([w & 0xFFFFFFFF for w in rng.state], dtype=np.int64)
        attempts = pregen.STREAM_ATTEMPTS
        rows = np.zeros((attempts, 6), dtype=np.float64)
        n = place_streams(self.offs, self.consts, self.meta, self.idx, self.pts, self.state,
                          words, not deep_north, attempts, rows)
        rng.state = (int(words[0]), int(words[1]), int(words[2]), int(words[3]))
        r32s = rows[:n].astype(F32)
        dx = r32s[:, 0] - r32s[:, 2]  # Vector2.Distance(p0, p1), float32 throughout
        dy = r32s[:, 1] - r32s[:, 3]
        length = np.sqrt((dx * dx + dy * dy).astype(np.float64)).astype(F32).astype(np.float64)
        width = (length / 15.0).astype(F32).tolist()
        wave = (length / 20.0).astype(F32).tolist()
        found = [River((r[0], r[1]), (r[2], r[3]), (r[4], r[5]), 20.0, 20.0, cw, wl)
                 for r, cw, wl in zip(rows[:n].tolist(), width, wave, strict=True)]
        render_rivers(rng, found, self, rule=2 if deep_north else 1)
        return found

    def weights(self, x: F32Array, z: F32Array) -> tuple[F32Array, F32Array]:
        """``GetRiverWeight`` of flat points, every one a query, from the post-pre-gen cache."""
        out = np.empty((x.size, 2), dtype=np.float64)
        river_weights(self.meta, self.idx, self.pts, self.state.copy(),
                      np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(z, dtype=F32),
                      out)
        return out[:, 0].astype(F32), out[:, 1].astype(F32)

    def heights(self, x: F32Array, z: F32Array) -> F32Array:
        """``GetHeight`` of flat points, from the post-pre-generation cache state."""
        out = np.empty(x.size, dtype=np.float64)
        heights_of(self.offs, self.consts, self.meta, self.idx, self.pts, self.state.copy(),
                   np.ascontiguousarray(x, dtype=F32),
                   np.ascontiguousarray(z, dtype=F32), out)
        return out.astype(F32)

    def grid(self, xs: F32Array, zs: F32Array) -> F32Array:
        """``GetHeight`` on a tensor grid: shape ``(len(zs), len(xs))``, rows in order."""
        out = np.empty((zs.size, xs.size), dtype=np.float64)
        heights_grid_sep(self.offs, self.consts, self.meta, self.idx, self.pts,
                         self.state.copy(), np.ascontiguousarray(xs, dtype=F32),
                         np.ascontiguousarray(zs, dtype=F32), out)
        return out.astype(F32)


def compile_kernels() -> None:
    """Compile (or load from numba's cache) every kernel with the types real calls use.

    The worker calls this at boot and its image build runs it once, so that no job pays for
    compilation. A no-op cost without numba (the kernels are then plain Python).
    """
    from worldgen.biomes import version_constants
    from worldgen.unity_random import world_offsets

    fast = FastTerrain(world_offsets(0), version_constants(2))
    xs = np.array([0.0, 640.0, -9000.0], dtype=F32)
    fast.base(xs, xs)
    merge_points_fast(np.stack((xs, xs), axis=1), 800.0)
    fast.rivers([(0.0, 0.0), (640.0, 0.0), (0.0, 900.0)], 1)
    fast.render_compiled(UnityRandom(1), [_river((0.0, 0.0), (300.0, 40.0), (150.0, 20.0),
                                                 60.0, 80.0)], 0)
    words = np.array([w & 0xFFFFFFFF for w in UnityRandom(2).state], dtype=np.int64)
    place_streams(fast.offs, fast.consts, fast.meta, fast.idx, fast.pts, fast.state, words,
                  True, 1, np.zeros((1, 6), dtype=np.float64))
    fast.weights(xs, xs)
    fast.heights(xs, xs)
    fast.grid(xs, xs)
