"""The public world-generator API: ``World`` (see docs/architecture.md, "World generator API").

``World(seed_text)`` (or ``World(seed=int)``) builds what ``new WorldGenerator(world)`` builds in
Valheim 1.0.15: the seven offsets and, for a non-menu world, the pre-generated lakes, rivers,
streams and river-point grid. Its methods are vectorised over float32 arrays of any shape that
broadcast together (world metres, x east, z north) and return arrays of that shape:

* :meth:`World.biome` - ``GetBiome``, uint16 ``Heightmap.Biome`` flags;
* :meth:`World.base_height` - ``GetBaseHeight(menuTerrain: false)``, float32, normalised;
* :meth:`World.height` - ``GetHeight``, float32 metres (sea level 30 m, -400 m beyond 10 500 m).

``GetRiverWeight`` caches one cell; after pre-generation that cache may still hold a cell's old
point array. Each :meth:`World.height` call is evaluated as the first sequence of queries after
pre-generation, in the arrays' C order, so a result never depends on earlier calls.
Errors: ``ValueError`` for non-finite or absurd coordinates, a bad seed or version.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from worldgen.biomes import (
    Biome,
    F32Array,
    base_height,
    biome_points,
    checked_coords,
    version_constants,
)
from worldgen.fastworld import FastTerrain, merge_points_fast
from worldgen.hashing import seed_from_text
from worldgen.jitcore import HAVE_NUMBA
from worldgen.pregen import River, find_lakes, place_rivers, place_streams
from worldgen.rivergrid import RiverGrid
from worldgen.terrain import BiomeHeights, biome_height, river_mask
from worldgen.unity_random import world_offsets

F32 = np.float32
_INT32 = (-(2**31), 2**31 - 1)


class World:
    """One Valheim world (generator version 2 unless ``worldgen_version`` says otherwise)."""

    def __init__(self, seed_text: str | None = None, *, seed: int | None = None,
                 worldgen_version: int = 2, pregenerate: bool = True,
                 fast: bool | None = None) -> None:
        """``fast`` picks the compiled kernels (default: when numba is installed) or the numpy
        reference (``False``); both give the same bits."""
        if (seed_text is None) == (seed is None):
            raise ValueError("give exactly one of seed_text or seed")
        if seed_text is not None:
            if not isinstance(seed_text, str):
                raise ValueError("seed_text must be a string")
            seed = seed_from_text(seed_text)
        if isinstance(seed, bool) or not isinstance(seed, int) or not (
                _INT32[0] <= seed <= _INT32[1]):
            raise ValueError("seed must be an int32")
        if isinstance(worldgen_version, bool) or not isinstance(worldgen_version, int):
            raise ValueError("worldgen_version must be an integer")
        self.seed: int = seed
        self.worldgen_version = worldgen_version
        self.offsets = world_offsets(seed)
        self.consts = version_constants(worldgen_version)
        self._heights = BiomeHeights(self.offsets, self.consts)
        self.fast = HAVE_NUMBA if fast is None else bool(fast)
        self._fast = FastTerrain(self.offsets, self.consts) if self.fast else None
        self._grid = RiverGrid()
        self._active = np.zeros(0, dtype=bool)
        self.lakes: F32Array = np.zeros((0, 2), dtype=F32)
        self.rivers: Sequence[River] = ()
        self.streams: Sequence[River] = ()
        if pregenerate:
            self._pregenerate()

    # -- pre-generation ---------------------------------------------------------------------

    def _pregenerate(self) -> None:
        """``Pregenerate``: FindLakes, PlaceRivers, PlaceStreams(false), PlaceStreams(true)."""
        fast = self._fast
        base = fast.base if fast is not None else self._base
        lakes = find_lakes(base, merge_points_fast if fast is not None else None)
        self.lakes = np.array(lakes, dtype=F32).reshape(-1, 2)
        seed = self.offsets.stream_seed
        if fast is not None:
            self.rivers = tuple(fast.rivers(lakes, self.offsets.river_seed))
            self.streams = tuple(fast.streams(seed, False))
            fast.streams(seed, True)
            return
        self.rivers = tuple(place_rivers(base, lakes, self.offsets.river_seed, self._grid))
        self.streams = tuple(place_streams(self._pregen, self._grid, seed, False,
                                           self._commit))
        place_streams(self._pregen, self._grid, seed, True, self._commit)

    def _base(self, x: F32Array, z: F32Array) -> F32Array:
        return base_height(self.offsets, x, z, self.consts)

    def _pregen(self, x: F32Array, z: F32Array, river_pre_gen: bool) -> F32Array:
        """``GetPregenerationHeight`` of flat points queried in order (cache read, not moved)."""
        biomes = biome_points(self.offsets, x, z, self.worldgen_version)
        self._active = river_mask(biomes, x, z, pre_generation=True)
        rw = self._grid.weights(x, z, self._active)
        return biome_height(self._heights, biomes, x, z, rw, pre_generation=True,
                            river_pre_dn=river_pre_gen)

    def _commit(self, x: F32Array, z: F32Array, river_pre_gen: bool, count: int) -> None:
        self._grid.commit(x[:count], z[:count], self._active[:count])

    # -- queries ------------------------------------------------------------------------------

    def _points(self, x: npt.ArrayLike, z: npt.ArrayLike
                ) -> tuple[F32Array, F32Array, tuple[int, ...]]:
        bx, bz = np.broadcast_arrays(checked_coords(x, "x"), checked_coords(z, "z"))
        return (np.ascontiguousarray(bx).ravel(), np.ascontiguousarray(bz).ravel(), bx.shape)

    def biome(self, x: npt.ArrayLike, z: npt.ArrayLike) -> npt.NDArray[np.uint16]:
        """``GetBiome(x, z)``: uint16 ``Heightmap.Biome`` flags, the broadcast shape."""
        return biome_points(self.offsets, x, z, self.worldgen_version)

    def base_height(self, x: npt.ArrayLike, z: npt.ArrayLike) -> F32Array:
        """``GetBaseHeight(x, z, menuTerrain: false)``: float32, normalised (not metres)."""
        px, pz, shape = self._points(x, z)
        return self._base(px, pz).reshape(shape)

    def height(self, x: npt.ArrayLike, z: npt.ArrayLike) -> F32Array:
        """``GetHeight(x, z)``: float32 metres, the broadcast shape of ``x`` and ``z``."""
        px, pz, shape = self._points(x, z)
        if self._fast is not None:
            return self._fast.heights(px, pz).reshape(shape)
        biomes = biome_points(self.offsets, px, pz, self.worldgen_version)
        active = river_mask(biomes, px, pz, pre_generation=False)
        rw = self._grid.weights(px, pz, active)
        return biome_height(self._heights, biomes, px, pz, rw).reshape(shape)

    def height_grid(self, xs: npt.ArrayLike, zs: npt.ArrayLike) -> F32Array:
        """``GetHeight`` on the grid ``xs`` (columns) x ``zs`` (rows), queried row by row:
        float32 metres, shape ``(len(zs), len(xs))`` (row 0 = ``zs[0]``)."""
        cx = np.ascontiguousarray(checked_coords(xs, "xs").ravel())
        cz = np.ascontiguousarray(checked_coords(zs, "zs").ravel())
        if self._fast is not None:
            return self._fast.grid(cx, cz)
        return self.height(cx[None, :], cz[:, None])

    def river_weight(self, x: npt.ArrayLike, z: npt.ArrayLike) -> tuple[F32Array, F32Array]:
        """``GetRiverWeight(x, z)``: ``(weight, width)`` float32 (every point queries)."""
        px, pz, shape = self._points(x, z)
        if self._fast is not None:
            w, wd = self._fast.weights(px, pz)
            return w.reshape(shape), wd.reshape(shape)
        rw = self._grid.weights(px, pz, np.ones(px.size, dtype=bool))
        return rw.weight.reshape(shape), rw.width.reshape(shape)

    def describe_rivers(self) -> dict[str, object]:
        """Lakes, rivers and streams as plain JSON-ready data (what ``rivers.json`` holds)."""
        return {
            "lakes": [[float(x), float(z)] for x, z in self.lakes],
            "rivers": [r.as_dict() for r in self.rivers],
            "streams": [s.as_dict() for s in self.streams],
        }


__all__ = ["Biome", "World"]


def reference_twin(world: World) -> World:
    """A World on the numpy reference path that shares ``world``'s pre-generated river points
    and post-pre-generation ``GetRiverWeight`` cache (for comparisons and benchmarks: the
    reference pre-generation itself takes minutes)."""
    from worldgen.rivergrid import CellPoints

    ref = World(seed=world.seed, worldgen_version=world.worldgen_version, pregenerate=False,
                fast=False)
    ref.lakes, ref.rivers, ref.streams = world.lakes, world.rivers, world.streams
    fast = world._fast
    if fast is None:
        ref._grid = world._grid
        return ref

    def points(rows: npt.NDArray[np.float64]) -> CellPoints:
        p = rows.astype(F32)
        return CellPoints(*(np.ascontiguousarray(p[:, i]) for i in range(4)))

    grid = RiverGrid()
    grid.cells = {cell: points(rows) for cell, rows in fast.cells().items()}
    key = int(fast.state[0])
    grid.cache_cell = (key >> 32, ((key & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000)
    cached = fast.cells(int(fast.state[1])).get(grid.cache_cell)
    grid.cache_points = points(cached) if cached is not None else None
    ref._grid = grid
    return ref
