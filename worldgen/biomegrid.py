"""The fast path of the biome map: :func:`biome_grid` on a tensor grid, bit for bit.

It returns exactly what :func:`worldgen.biomes.biome_points` (the plain reference) returns on the
same points; the tests hold it to that on the whole minimap lattice. The arithmetic is the
reference's, organised for speed: everything that depends only on the position is computed once
per lattice (:class:`Lattice`), and per seed only the noise remains.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldgen.biomes import (
    _CAP_DIV,
    _CAP_HI,
    _CAP_LO,
    _CH_X0,
    _CH_X1,
    _CH_Y0,
    _CH_Y1,
    _K002,
    _K003,
    _K005,
    _K007,
    _K01,
    _K09,
    _MASK_SCALE,
    EDGE_RADIUS,
    WORLD_RADIUS,
    Biome,
    BoolArray,
    F32Array,
    F64Array,
    _clamp01,
    _wf,
    band_limit,
    checked_coords,
    lerp,
    lerp_step,
    resolve_offsets,
    smooth_step,
    utils_lerp_step,
    version_constants,
    world_angle,
)
from worldgen.perlin import BlockScratch, NoiseTables, perlin_block
from worldgen.unity_random import WorldOffsets

F32 = np.float32
F64 = np.float64

# Fast path: a tensor grid with its seed-independent facts precomputed.
#
# Everything that depends only on the position (distance bands, the wobble, AshLands, Deep North,
# the world-edge and spawn-cap blend weights) is computed once per lattice. Per seed only the
# noise remains: the eight base-height octaves for every point that is neither outside the world
# nor AshLands, and the four biome masks only where the earlier rules left the point undecided.
# Rows are processed in blocks small enough to stay in cache; each block only spans the columns
# that hold points needing work.

_LS_DEN = _wf(0.12) - _wf(0.02)
_EDGE_NEAR = F32(10490.0)
_BLOCK_ROWS = 64
_SEGMENT_GAP = 48  # columns; a gap narrower than this is cheaper to evaluate than to split


@dataclass(frozen=True)
class _Block:
    """One block of rows and the column span that needs per-seed work, with its fix-up lists.

    Index arrays are flat indices into the block's ``(r1 - r0, c1 - c0)`` buffers.
    """

    r0: int
    r1: int
    c0: int
    c1: int
    ring_idx: npt.NDArray[np.intp]
    ring_t: F32Array
    ring_t2: F32Array
    ring_far: BoolArray
    cap_idx: npt.NDArray[np.intp]
    cap_t: F32Array
    ss_idx: npt.NDArray[np.intp]
    ss_val: F32Array


def _sqrt_to_f32(sum_of_squares: F64Array) -> F32Array:
    """``(float)Math.Sqrt(double)`` in place on a scratch double array."""
    np.sqrt(sum_of_squares, out=sum_of_squares)
    return sum_of_squares.astype(F32)


def _near(d: F32Array, radius: float) -> BoolArray:
    """Points within 100 m of ``radius``: only there can a wobbled band test depend on ``A``."""
    out: BoolArray = (d >= F32(radius - 100.0)) & (d <= F32(radius + 100.0))
    return out


class Lattice:
    """Seed-independent precomputation for :func:`biome_grid` on one grid and version.

    ``xs`` are the column x coordinates, ``zs`` the row z coordinates (world metres). Build it
    once (the worker does at boot) and every seed then only pays for its noise.
    """

    def __init__(self, xs: npt.ArrayLike, zs: npt.ArrayLike, worldgen_version: int = 2,
                 block_rows: int = _BLOCK_ROWS) -> None:
        self.xs = np.ascontiguousarray(np.asarray(xs, dtype=F32).ravel())
        self.zs = np.ascontiguousarray(np.asarray(zs, dtype=F32).ravel())
        self.worldgen_version = worldgen_version
        self.consts = version_constants(worldgen_version)
        rows, cols = self.zs.size, self.xs.size
        self.shape = (rows, cols)
        self.inworld = np.zeros(self.shape, dtype=bool)
        self.static = np.zeros(self.shape, dtype=np.uint16)
        self.dyn = np.zeros(self.shape, dtype=bool)
        self.deep_north = np.zeros(self.shape, dtype=bool)
        self.swamp_band = np.zeros(self.shape, dtype=bool)
        self.mist_band = np.zeros(self.shape, dtype=bool)
        self.plains_band = np.zeros(self.shape, dtype=bool)
        self.forest_band = np.zeros(self.shape, dtype=bool)
        self.far_forest = np.zeros(self.shape, dtype=bool)
        self.blocks: list[_Block] = []
        self.max_block_cells = 1
        self._workspace: _Workspace | None = None
        self._workspace_lock = threading.Lock()
        chunk = max(block_rows, 256 // block_rows * block_rows)
        for r0 in range(0, rows, chunk):
            r1 = min(rows, r0 + chunk)
            dist = self._classify(r0, r1)
            for b0 in range(r0, r1, block_rows):
                b1 = min(r1, b0 + block_rows)
                self._plan_block(b0, b1, dist[b0 - r0:b1 - r0])
        self.rows_used = (slice(self.blocks[0].r0, self.blocks[-1].r1) if self.blocks
                          else slice(0, 0))
        # Points that are in the world but need no per-seed work (AshLands, and Ocean exactly
        # on the 10 500 m edge): their share is the same for every seed.
        fixed = self.static[self.inworld & ~self.dyn]
        self.static_inworld_counts = {Biome(int(code)): int(n) for code, n in
                                      zip(*np.unique(fixed, return_counts=True), strict=True)}

    def _classify(self, r0: int, r1: int) -> F32Array:
        """Fill the per-point facts for rows ``[r0, r1)``; returns their ``DUtils.Length``.

        Distances are separable (a column term plus a row term), so they are formed by one
        broadcast add per measure. Every wobbled test compares against ``radius + A`` with
        ``|A| <= 100``: it is first evaluated with ``A = 0``, which is right everywhere except
        within 100 m of the radius, and the few points there are then redone exactly.
        """
        x32 = self.xs
        y32 = self.zs[r0:r1]
        x64 = x32.astype(F64)
        y64 = y32.astype(F64)
        xx = x64 * x64
        # DUtils.Length(x, y): squares and sum in double.
        dist = _sqrt_to_f32((y64 * y64)[:, None] + xx)
        # IsAshlands: DUtils.Length(x, (float)(y - 4000)), compared in double.
        ay = (y64 - 4000.0).astype(F32).astype(F64)
        ash_len = _sqrt_to_f32((ay * ay)[:, None] + xx)
        # IsDeepnorth: Vector2(x, (float)(y + 4000)).magnitude, float squares and sum.
        dy = (y64 + 4000.0).astype(F32)
        dn_mag = _sqrt_to_f32(((dy * dy)[:, None] + x32 * x32).astype(F64))
        c = self.consts
        ash = ash_len > F32(12000.0)
        deep_north = dn_mag > F32(12000.0)
        mist_lo = dist > F32(6000.0)
        plains_lo = dist > F32(3000.0)
        forest_lo = dist > F32(600.0)
        far = dist > F32(5000.0)
        need = _near(ash_len, 12000.0) | _near(dn_mag, 12000.0)
        for radius in (600.0, 3000.0, 5000.0, 6000.0):
            need |= _near(dist, radius)
        idx = np.flatnonzero(need)
        if idx.size:
            rows, cols = np.divmod(idx, x32.size)
            a64 = world_angle(x32[cols], y32[rows]).astype(F64) * 100.0
            a32 = a64.astype(F32)
            d = dist.ravel()[idx]
            ash.ravel()[idx] = ash_len.ravel()[idx].astype(F64) > 12000.0 + a64
            deep_north.ravel()[idx] = dn_mag.ravel()[idx] > band_limit(12000.0, a32)
            mist_lo.ravel()[idx] = d > band_limit(6000.0, a32)
            plains_lo.ravel()[idx] = d > band_limit(3000.0, a32)
            forest_lo.ravel()[idx] = d > band_limit(600.0, a32)
            far.ravel()[idx] = d > band_limit(5000.0, a32)
        outside = dist >= F32(EDGE_RADIUS)  # base height is exactly -2 there: Ocean
        sl = slice(r0, r1)
        self.inworld[sl] = dist <= F32(EDGE_RADIUS)
        static = self.static[sl]
        static[outside] = Biome.OCEAN
        static[ash] = Biome.ASHLANDS
        self.dyn[sl] = ~(ash | outside)
        self.deep_north[sl] = deep_north
        self.swamp_band[sl] = (dist > F32(2000.0)) & (dist < F32(c.max_marsh_distance))
        self.mist_band[sl] = mist_lo & (dist < F32(10000.0))
        self.plains_band[sl] = plains_lo & (dist < F32(8000.0))
        self.forest_band[sl] = forest_lo & (dist < F32(6000.0))
        self.far_forest[sl] = far
        return dist

    def _plan_block(self, r0: int, r1: int, dist: F32Array) -> None:
        dyn = self.dyn[r0:r1]
        cols = np.flatnonzero(dyn.any(axis=0))
        if cols.size == 0:
            return
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        dyn = dyn[:, c0:c1]
        d = dist[:, c0:c1]
        ring = np.flatnonzero(dyn & (d > F32(WORLD_RADIUS)))
        dr = d.ravel()[ring]
        mmd = self.consts.min_mountain_distance
        cap = np.flatnonzero(dyn & (d < F32(mmd)))
        ss = np.flatnonzero(dyn & (d < F32(1000.0)))
        self.blocks.append(_Block(
            r0, r1, c0, c1,
            ring_idx=ring, ring_t=lerp_step(10000.0, 10500.0, dr),
            ring_t2=utils_lerp_step(10490.0, 10500.0, dr), ring_far=dr > _EDGE_NEAR,
            cap_idx=cap, cap_t=lerp_step(float(F32(mmd - 400.0)), mmd, d.ravel()[cap]),
            ss_idx=ss, ss_val=smooth_step(744.0, 1000.0, d.ravel()[ss]),
        ))
        self.max_block_cells = max(self.max_block_cells, (r1 - r0) * (c1 - c0))

    def biomes(self, seed_or_offsets: int | str | WorldOffsets) -> npt.NDArray[np.uint16]:
        """The biome of every grid point for one world: shape ``(len(zs), len(xs))``."""
        return self.biomes_and_counts(seed_or_offsets)[0]

    def biomes_and_counts(self, seed_or_offsets: int | str | WorldOffsets
                          ) -> tuple[npt.NDArray[np.uint16], dict[Biome, int]]:
        """:meth:`biomes` plus how many in-world points (``inworld``) each biome has.

        The counts come for free from the classification instead of a pass over the result.
        Thread-safe: a call that finds the shared workspace busy uses a private one.
        """
        offsets = resolve_offsets(seed_or_offsets)
        if not self._workspace_lock.acquire(blocking=False):
            return _GridRun(self, offsets, _Workspace(self.max_block_cells)).run()
        try:
            if self._workspace is None:
                self._workspace = _Workspace(self.max_block_cells)
            return _GridRun(self, offsets, self._workspace).run()
        finally:
            self._workspace_lock.release()


class _Workspace:
    """Buffers reused from seed to seed: fresh memory costs a page fault per 4 KiB touched."""

    def __init__(self, block_cells: int) -> None:
        self.scratch = BlockScratch(block_cells)
        self.f32 = [np.empty(block_cells, dtype=F32) for _ in range(3)]
        self.f64 = [np.empty(block_cells, dtype=F64) for _ in range(2)]
        self._tables: dict[int, F32Array] = {}

    def table_buffer(self, slot: int, cols: int, cells: int) -> F32Array:
        """A buffer for noise field ``slot``: at least 4 table rows per row cell its rows span."""
        span_cells = min(256, cells + 1)
        need = 4 * (span_cells + 1) * cols
        buf = self._tables.get(slot)
        if buf is None or buf.size < need:
            buf = np.empty(need, dtype=F32)
            self._tables[slot] = buf
        return buf


class _GridRun:
    """One seed on one lattice: the per-seed axes, reusable buffers and the block loop."""

    def __init__(self, lat: Lattice, offsets: WorldOffsets, work: _Workspace) -> None:
        self.lat = lat
        self.offsets = offsets
        xd = lat.xs.astype(F64)
        zd = lat.zs.astype(F64)
        x = xd + (100000.0 + offsets.off0)
        y = zd + (100000.0 + offsets.off1)
        fields: list[tuple[F32Array, F32Array]] = [
            ((x * k * s).astype(F32), (y * k * s).astype(F32))
            for k, s in ((_K002, 0.5), (_K003, 0.5), (_K002, 1.0), (_K003, 1.0), (_K005, 1.0),
                         (_K01, 1.0))
        ]
        fields += [((x * _K002 * 0.25 + cx).astype(F32), (y * _K002 * 0.25 + cy).astype(F32))
                   for cx, cy in ((_CH_X0, _CH_Y0), (_CH_X1, _CH_Y1))]
        fields += [(((off + xd).astype(F32).astype(F64) * _MASK_SCALE).astype(F32),
                    ((off + zd).astype(F32).astype(F64) * _MASK_SCALE).astype(F32))
                   for off in (offsets.off0, offsets.off4, offsets.off1, offsets.off2)]
        used = lat.rows_used
        tables = [NoiseTables(cx, cy, work.table_buffer(i, cx.size, _cell_span(cy[used])), used)
                  for i, (cx, cy) in enumerate(fields)]
        self.octaves = tables[:6]
        self.channels = tables[6:8]
        self.swamp, self.mist, self.plains, self.forest = tables[8:]
        self._f32 = work.f32
        self._f64 = work.f64
        self.scratch = work.scratch
        self.counts: dict[Biome, int] = {}

    def run(self) -> tuple[npt.NDArray[np.uint16], dict[Biome, int]]:
        out = self.lat.static.copy()
        self.counts = dict(self.lat.static_inworld_counts)
        for block in self.lat.blocks:
            self._block(block, out)
        return out, self.counts

    def _noise(self, pair: NoiseTables, b: _Block, out: F32Array) -> None:
        perlin_block(pair, b.r0, b.r1, b.c0, b.c1, out, self.scratch)

    def _base(self, b: _Block, shape: tuple[int, int]) -> F32Array:
        """``GetBaseHeight`` on the block (float32, contiguous)."""
        size = shape[0] * shape[1]
        pa, pb, h = (buf[:size].reshape(shape) for buf in self._f32)
        d1, d2 = (buf[:size].reshape(shape) for buf in self._f64)
        o = self.octaves
        self._noise(o[0], b, pa)
        self._noise(o[1], b, pb)
        np.multiply(pa, pb, out=h)  # one float op: same as the double statement
        self._noise(o[2], b, pa)
        self._noise(o[3], b, pb)
        np.multiply(pa, pb, out=d1, dtype=F64)  # exact in double
        np.copyto(d2, h)
        d1 *= d2
        d1 *= _K09
        d1 += d2
        np.copyto(h, d1, casting="same_kind")
        self._noise(o[4], b, pa)
        self._noise(o[5], b, pb)
        np.multiply(pa, pb, out=d1, dtype=F64)
        d1 *= 0.5
        np.copyto(d2, h)
        d1 *= d2
        d1 += d2
        np.copyto(h, d1, casting="same_kind")
        h -= _K007
        # Sea channels: c = (1 - LerpStep(0.02, 0.12, |n10 - n11|)) * SmoothStep(744, 1000, d).
        self._noise(self.channels[0], b, pa)
        self._noise(self.channels[1], b, pb)
        np.subtract(pa, pb, out=pa)
        np.abs(pa, out=pa)
        np.subtract(pa, _wf(0.02), out=d1, dtype=F64)
        d1 /= _LS_DEN
        np.clip(d1, 0.0, 1.0, out=d1)
        np.copyto(pb, d1, casting="same_kind")
        np.subtract(F32(1.0), pb, out=pb)  # c, with SmoothStep == 1 (dist >= 1000)
        np.subtract(1.0, pb, out=d1, dtype=F64)
        np.multiply(d1, h, out=d1)
        if b.ss_idx.size:  # near the centre the SmoothStep factor is below 1
            hf = h.reshape(-1)
            cc = (pb.reshape(-1)[b.ss_idx] * b.ss_val).astype(F64)
            d1.reshape(-1)[b.ss_idx] = hf[b.ss_idx].astype(F64) * (1.0 - cc)
        np.copyto(h, d1, casting="same_kind")
        hf = h.reshape(-1)
        if b.ring_idx.size:  # world edge, 10000 < dist < 10500
            he = lerp(hf[b.ring_idx], F32(-0.2), b.ring_t)
            far = b.ring_far
            if far.any():
                he[far] = lerp(he[far], F32(-2.0), b.ring_t2[far])
            hf[b.ring_idx] = he
        if b.cap_idx.size:  # no mountains near the spawn
            vals = hf[b.cap_idx]
            sel = vals > _CAP_LO
            if sel.any():
                v = vals[sel]
                t3 = _clamp01((v.astype(F64) - float(_CAP_LO)) / _CAP_DIV).astype(F32)
                inner = lerp(np.full(v.shape, _CAP_LO, dtype=F32), _CAP_HI, t3)
                hf[b.cap_idx[sel]] = lerp(inner, v, b.cap_t[sel])
        h += F32(0.0)  # the game's final ``h * 1f + 0f``: never -0.0
        return h

    def _mask_hits(self, pair: NoiseTables, b: _Block, cand: BoolArray,
                   threshold: np.float32) -> BoolArray:
        """``cand & (mask noise > threshold)``, evaluating the noise only around ``cand``.

        Candidates of a band biome sit in an annulus, so a block through the middle of the map
        has two groups of candidate columns with the hole between them; each column group
        (gaps under ``_SEGMENT_GAP`` bridged) gets its own bounding box.
        """
        hit = np.zeros(cand.shape, dtype=bool)
        cols = np.flatnonzero(cand.any(axis=0))
        if cols.size == 0:
            return hit
        cut = np.flatnonzero(np.diff(cols) > _SEGMENT_GAP)
        starts = [int(cols[0]), *(int(cols[i + 1]) for i in cut)]
        stops = [*(int(cols[i]) + 1 for i in cut), int(cols[-1]) + 1]
        for cc0, cc1 in zip(starts, stops, strict=True):
            rows = np.flatnonzero(cand[:, cc0:cc1].any(axis=1))
            rr0, rr1 = int(rows[0]), int(rows[-1]) + 1
            shape = (rr1 - rr0, cc1 - cc0)
            p = self._f32[0][: shape[0] * shape[1]].reshape(shape)
            perlin_block(pair, b.r0 + rr0, b.r0 + rr1, b.c0 + cc0, b.c0 + cc1, p,
                         self.scratch)
            sub = hit[rr0:rr1, cc0:cc1]
            np.greater(p, threshold, out=sub)
            sub &= cand[rr0:rr1, cc0:cc1]
        return hit

    def _block(self, b: _Block, out: npt.NDArray[np.uint16]) -> None:
        lat = self.lat
        shape = (b.r1 - b.r0, b.c1 - b.c0)
        h = self._base(b, shape)
        view = (slice(b.r0, b.r1), slice(b.c0, b.c1))
        dyn = lat.dyn[view]
        res = out[view]
        ocean = dyn & (h <= F32(0.02))
        land = dyn & ~ocean
        deep_north = land & lat.deep_north[view]
        land &= ~deep_north
        high = h > F32(0.4)
        mountain = land & high
        und = land & ~high
        swamp = self._mask_hits(self.swamp, b, und & lat.swamp_band[view] & (h > F32(0.05))
                                & (h < F32(0.25)), F32(0.6))
        und &= ~swamp
        mist = self._mask_hits(self.mist, b, und & lat.mist_band[view],
                               F32(lat.consts.min_darkland_noise))
        und &= ~mist
        plains = self._mask_hits(self.plains, b, und & lat.plains_band[view], F32(0.4))
        und &= ~plains
        forest = self._mask_hits(self.forest, b, und & lat.forest_band[view], F32(0.4))
        und &= ~forest
        forest |= und & lat.far_forest[view]
        und &= ~forest
        for mask, biome in ((ocean, Biome.OCEAN), (deep_north, Biome.DEEP_NORTH),
                            (mountain, Biome.MOUNTAIN), (swamp, Biome.SWAMP),
                            (mist, Biome.MISTLANDS), (plains, Biome.PLAINS),
                            (forest, Biome.BLACK_FOREST), (und, Biome.MEADOWS)):
            np.copyto(res, np.uint16(biome), where=mask)
            self.counts[biome] = self.counts.get(biome, 0) + int(np.count_nonzero(mask))


def _cell_span(coords: F32Array) -> int:
    """How many noise cells the coordinates can touch (an upper bound, for buffer sizing)."""
    a = np.abs(coords)
    return int(np.ceil(float(a.max()) - float(a.min()))) + 2 if a.size else 1


_LATTICES: dict[tuple[bytes, bytes, int], Lattice] = {}
_MAX_CACHED_LATTICES = 3  # ~45 MB each at 2048 x 2048


def lattice_for(xs: npt.ArrayLike, zs: npt.ArrayLike, worldgen_version: int = 2) -> Lattice:
    """The cached :class:`Lattice` of a grid (built on first use; least recently used dropped)."""
    x = np.ascontiguousarray(checked_coords(xs, "xs").ravel())
    z = np.ascontiguousarray(checked_coords(zs, "zs").ravel())
    version = _version_key(worldgen_version)
    key = (x.tobytes(), z.tobytes(), version)
    lat = _LATTICES.pop(key, None)
    if lat is None:
        lat = Lattice(x, z, version)
        while len(_LATTICES) >= _MAX_CACHED_LATTICES:
            _LATTICES.pop(next(iter(_LATTICES)))
    _LATTICES[key] = lat
    return lat


def _version_key(worldgen_version: int) -> int:
    """Versions with identical constants share a lattice (everything >= 2 behaves as 2)."""
    return max(0, min(2, worldgen_version))


def biome_grid(seed_or_offsets: int | str | WorldOffsets, xs: npt.ArrayLike, zs: npt.ArrayLike,
               worldgen_version: int = 2) -> npt.NDArray[np.uint16]:
    """``GetBiome`` on the grid ``xs`` (columns) x ``zs`` (rows): shape ``(len(zs), len(xs))``.

    Identical to :func:`biome_points` on the same points, and much faster. Row ``i`` is
    ``zs[i]``, so with increasing ``zs`` row 0 is the south edge.
    """
    return lattice_for(xs, zs, worldgen_version).biomes(seed_or_offsets)
