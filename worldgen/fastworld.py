"""Glue between :class:`worldgen.world.World` and the compiled kernels (:mod:`worldgen.jitworld`).

It keeps the river-point grid as a sorted key array with CSR offsets (filled by
``RenderRivers`` through :meth:`FastTerrain.add_points`) and the ``GetRiverWeight`` cache as
the kernels expect it (``state`` = [cached key, stale flag, snapshot length] and ``snap``, the
cached cell's points from before the render that replaced them); it runs ``MergePoints`` and
``PlaceStreams``' loop compiled, and evaluates heights.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from worldgen import pregen
from worldgen.biomes import F32Array, VersionConstants
from worldgen.jitcore import base_height as base_kernel
from worldgen.jitcore import njit, r32
from worldgen.jitgrid import heights_grid_sep
from worldgen.jitrender import render, render_count
from worldgen.jitworld import heights_of, place_streams, river_weights
from worldgen.pregen import River, _river, render_rivers
from worldgen.rivergrid import Cell
from worldgen.unity_random import UnityRandom, WorldOffsets

F32 = np.float32
_EPS_SQ = float(F32(9.9999994396249292e-11))
_FAR_SQ = 800.5 * 800.5
_NO_KEY = (-999999 << 32) ^ (-999999 & 0xFFFFFFFF)


def cell_key(cell: Cell) -> int:
    return (cell[0] << 32) ^ (cell[1] & 0xFFFFFFFF)


@njit
def _bases(off0: float, off1: float, mmd: float, xs: np.ndarray, zs: np.ndarray,
           out: np.ndarray) -> None:
    for i in range(xs.size):
        out[i] = base_kernel(off0, off1, mmd, np.float64(xs[i]), np.float64(zs[i]))


@njit
def _merge(pts: np.ndarray, radius: float, out: np.ndarray) -> int:
    """``MergePoints`` (see :func:`worldgen.pregen.merge_points`), compiled."""
    n = pts.shape[0]
    m = 0
    while n > 0:
        vx = pts[0, 0]
        vy = pts[0, 1]
        for i in range(n - 1):
            pts[i, 0] = pts[i + 1, 0]
            pts[i, 1] = pts[i + 1, 1]
        n -= 1
        while n > 0:
            best = -1
            best_d = 99999.0
            for i in range(n):
                dx = r32(pts[i, 0] - vx)
                dy = r32(pts[i, 1] - vy)
                sq = r32(r32(dx * dx) + r32(dy * dy))
                if sq < _EPS_SQ or sq >= _FAR_SQ:  # sqrt >= 800.5: can never be < 800
                    continue
                d = r32(math.sqrt(sq))
                if d < radius and d < best_d:
                    best = i
                    best_d = d
            if best < 0:
                break
            vx = r32(r32(vx + pts[best, 0]) * 0.5)
            vy = r32(r32(vy + pts[best, 1]) * 0.5)
            pts[best, 0] = pts[n - 1, 0]
            pts[best, 1] = pts[n - 1, 1]
            n -= 1
        out[m, 0] = vx
        out[m, 1] = vy
        m += 1
    return m


def merge_points_fast(points: F32Array, radius: float) -> list[tuple[float, float]]:
    """``MergePoints`` of float32 (n, 2) points with the compiled kernel."""
    pts = np.array(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros_like(pts)
    if radius != 800.0:
        raise ValueError("merge_points_fast is specialised for FindLakes' 800 m")
    m = _merge(pts, float(np.float32(radius)), out)
    return [(float(x), float(y)) for x, y in out[:m]]


@njit
def _expand(p: np.ndarray, keys: np.ndarray, rows: np.ndarray, count_only: bool) -> int:
    """``AddRiverPoint`` of each point in order (cells y outer, x inner, within ``r + 32`` of
    the cell centre): the count, or the (key, x, y, w, w2) rows (see rivergrid.expand_points)."""
    n = 0
    for i in range(p.shape[0]):
        x = p[i, 0]
        y = p[i, 1]
        r = p[i, 2]
        gx = math.floor(r32((x + 32.0) / 64.0))
        gy = math.floor(r32((y + 32.0) / 64.0))
        span = math.ceil(r32(r / 64.0))
        lim = r32(r + 32.0)
        for cy in range(gy - span, gy + span + 1):
            for cx in range(gx - span, gx + span + 1):
                dx = r32(x - r32(cx * 64.0))
                dy = r32(y - r32(cy * 64.0))
                if abs(dx) < lim and abs(dy) < lim:
                    if not count_only:
                        keys[n] = (cx << 32) ^ (cy & 0xFFFFFFFF)
                        rows[n, 0] = x
                        rows[n, 1] = y
                        rows[n, 2] = r
                        rows[n, 3] = r32(r * r)
                    n += 1
    return n


_MARGIN_M = 1.0  # far above float32 rounding of d2 at these distances


@njit
def _square_masks(keys: np.ndarray, starts: np.ndarray, pts: np.ndarray,
                  masks: np.ndarray) -> int:
    """Per point, a 16-bit mask of its cell's 16 m squares (4 x 4) that its circle (radius
    ``w`` plus a margin) reaches; the number of (square, point) pairs."""
    m = 0
    for i in range(keys.size):
        gx = keys[i] >> 32
        gy = ((keys[i] & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        for k in range(starts[i], starts[i + 1]):
            bits = 0
            reach = pts[k, 2] + _MARGIN_M
            for sq in range(16):
                x0 = gx * 64.0 - 32.0 + (sq % 4) * 16.0
                y0 = gy * 64.0 - 32.0 + (sq // 4) * 16.0
                dx = max(x0 - pts[k, 0], 0.0, pts[k, 0] - (x0 + 16.0))
                dy = max(y0 - pts[k, 1], 0.0, pts[k, 1] - (y0 + 16.0))
                if dx * dx + dy * dy < reach * reach:
                    bits |= 1 << sq
                    m += 1
            masks[k] = bits
    return m


@njit
def _index_cells(keys: np.ndarray, starts: np.ndarray, masks: np.ndarray,
                 out: np.ndarray) -> None:
    """Per cell, per 16 m square, the points that reach the square (``masks``), in the cell's
    order; laid out after ``starts`` (see river_weight)."""
    n = keys.size
    base = n + 1
    table = base + 16 * n + 1
    m = 0
    for i in range(n):
        for sq in range(16):
            out[base + i * 16 + sq] = table + m
            for k in range(starts[i], starts[i + 1]):
                if (masks[k] >> sq) & 1:
                    out[table + m] = k
                    m += 1
    out[base + 16 * n] = table + m


def index_cells(keys: npt.NDArray[np.int64], starts: npt.NDArray[np.int64],
                pts: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """``starts`` followed by the 16 m-square tables that ``river_weight`` reads."""
    n = keys.size
    plain = np.ascontiguousarray(starts[: n + 1])
    masks = np.empty(pts.shape[0], dtype=np.int64)
    count = _square_masks(keys, plain, pts, masks)
    out = np.zeros(n + 1 + 16 * n + 1 + count, dtype=np.int64)
    out[: n + 1] = plain
    _index_cells(keys, plain, masks, out)
    return out


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
        self.state = np.array([_NO_KEY, 0, 0, -1], dtype=np.int64)
        self.snap = np.zeros((0, 4), dtype=np.float64)

    def base(self, x: F32Array, z: F32Array) -> F32Array:
        """``GetBaseHeight`` of flat float32 points."""
        out = np.empty(x.size, dtype=np.float64)
        _bases(float(self.offs[0]), float(self.offs[1]), float(self.consts[0]),
               np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(z, dtype=F32), out)
        return out.astype(F32)

    def add_points(self, px: F32Array, py: F32Array, r: F32Array) -> None:
        """``RenderRivers``' end: append each cell's new points after its old ones.

        If the cached cell gets new points, the cache keeps its old array: snapshot it.
        """
        p64 = np.stack((px, py, r), axis=1).astype(np.float64)
        total = _expand(p64, np.zeros(0, dtype=np.int64), np.zeros((0, 4)), True)
        keys = np.empty(total, dtype=np.int64)
        new = np.empty((total, 4), dtype=np.float64)
        _expand(p64, keys, new, False)
        cached = int(self.state[0])
        if self.state[1] == 0 and bool((keys == cached).any()):
            self.snap = self._cell_points(cached)
            self.state[1] = 1
            self.state[2] = self.snap.shape[0]
        plain = self.starts[: self.keys.size + 1]
        flat_keys = np.concatenate((np.repeat(self.keys, np.diff(plain)), keys))
        order = np.argsort(flat_keys, kind="stable")  # old points first within a cell
        self.pts = np.ascontiguousarray(np.concatenate((self.pts, new))[order])
        sorted_keys = flat_keys[order]
        self.keys, first = np.unique(sorted_keys, return_index=True)
        self.starts = index_cells(self.keys, np.append(first, sorted_keys.size).astype(np.int64),
                                  self.pts)
        i = int(np.searchsorted(self.keys, cached))  # the cached cell's new index
        self.state[3] = i if i < self.keys.size and self.keys[i] == cached else -1

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

    def _cell_points(self, key: int) -> npt.NDArray[np.float64]:
        i = int(np.searchsorted(self.keys, key))
        if i < self.keys.size and self.keys[i] == key:
            return self.pts[self.starts[i]:self.starts[i + 1]].copy()
        return np.zeros((0, 4), dtype=np.float64)

    def streams(self, stream_seed: int, deep_north: bool) -> list[River]:
        """``PlaceStreams(isDN)``: the compiled loop, then ``RenderRivers`` into this grid."""
        rng = UnityRandom(stream_seed)
        words = np.array([w & 0xFFFFFFFF for w in rng.state], dtype=np.int64)
        attempts = pregen.STREAM_ATTEMPTS
        rows = np.zeros((attempts, 6), dtype=np.float64)
        n = place_streams(self.offs, self.consts, self.keys, self.starts, self.pts, self.state,
                          self.snap, words, not deep_north, attempts, rows)
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
        river_weights(self.keys, self.starts, self.pts, self.state.copy(), self.snap,
                      np.ascontiguousarray(x, dtype=F32), np.ascontiguousarray(z, dtype=F32),
                      out)
        return out[:, 0].astype(F32), out[:, 1].astype(F32)

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
        heights_grid_sep(self.offs, self.consts, self.keys, self.starts, self.pts,
                         self.state.copy(), self.snap, np.ascontiguousarray(xs, dtype=F32),
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
    fast.render_compiled(UnityRandom(1), [_river((0.0, 0.0), (300.0, 40.0), (150.0, 20.0),
                                                 60.0, 80.0)], 0)
    words = np.array([w & 0xFFFFFFFF for w in UnityRandom(2).state], dtype=np.int64)
    place_streams(fast.offs, fast.consts, fast.keys, fast.starts, fast.pts, fast.state,
                  fast.snap, words, True, 1, np.zeros((1, 6), dtype=np.float64))
    fast.weights(xs, xs)
    fast.heights(xs, xs)
    fast.grid(xs, xs)
