"""The World API: published values, the compiled path against the numpy reference, edge cases."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from worldgen import pregen
from worldgen.biomes import Biome
from worldgen.generate import lattice_coords
from worldgen.half import round_half
from worldgen.jitcore import HAVE_NUMBA
from worldgen.world import World, reference_twin

# The first test to build a World compiles the numba kernels (a minute on a busy 2-core box).
pytestmark = [pytest.mark.unit, pytest.mark.timeout(600)]

SEED_TEXT = "MWd8eV6svz"
F32 = np.float32


@pytest.fixture(scope="module")
def world() -> World:
    return World(SEED_TEXT)


def _bits(a: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]:
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def test_published_spawn_point(world: World) -> None:
    """At (0, 0): Meadows, height 23.619 m, base height 0.08344, river weight 0."""
    assert world.seed == -1772362158
    assert int(world.biome(0.0, 0.0)) == Biome.MEADOWS
    assert round(float(world.height(0.0, 0.0)), 3) == 23.619
    assert round(float(world.base_height(0.0, 0.0)), 5) == 0.08344
    weight, width = world.river_weight(0.0, 0.0)
    assert float(weight) == 0.0 and float(width) == 0.0
    plain = World(SEED_TEXT, pregenerate=False, fast=False)
    assert _bits(plain.height(0.0, 0.0)) == _bits(world.height(0.0, 0.0))


@pytest.mark.skipif(not HAVE_NUMBA, reason="a full 2048 x 2048 grid needs the compiled path")
@pytest.mark.parametrize(("seed_text", "maximum"), [(SEED_TEXT, 457.0), ("hnBd9gJf2G", 410.5)])
def test_published_minimap_values(seed_text: str, maximum: float) -> None:
    """The game's 2048 x 2048 minimap lattice, heights rounded to half floats as it caches them:
    1 788 980 cells at exactly -400 m (exactly those beyond 10 500 m) and the maximum."""
    w = World(seed_text)
    c = lattice_coords(2048)
    h = round_half(w.height_grid(c, c))
    dist = np.sqrt(c.astype(np.float64)[None, :] ** 2 + c.astype(np.float64)[:, None] ** 2)
    edge = dist.astype(F32) > F32(10500.0)
    assert int((h == F32(-400.0)).sum()) == 1_788_980
    assert np.array_equal(h == F32(-400.0), edge)
    assert float(h.max()) == maximum


@pytest.mark.skipif(not HAVE_NUMBA, reason="compares the compiled path with the reference")
@pytest.mark.parametrize("seed", [-1772362158, 319486907, 0, 123456789])
def test_fast_grid_equals_reference_on_whole_grids(seed: int) -> None:
    """The whole world on a 128 x 128 lattice plus dense patches on a river, the AshLands ring
    and the Deep North ring: every bit equal."""
    w = World(seed=seed)
    ref = reference_twin(w)
    c = lattice_coords(128)
    assert np.array_equal(_bits(w.height_grid(c, c)), _bits(ref.height_grid(c, c)))
    assert np.array_equal(_bits(w.height(c[None, :], c[:, None])), _bits(w.height_grid(c, c)))
    centres = [w.rivers[0].p0, (0.0, -7950.0), (0.0, 7950.0), (5600.0, -6300.0)]
    for cx, cz in centres:
        xs = (F32(cx) + np.arange(-32, 32, dtype=F32) * F32(3.0)).astype(F32)
        zs = (F32(cz) + np.arange(-32, 32, dtype=F32) * F32(3.0)).astype(F32)
        fast = w.height_grid(xs, zs)
        assert np.array_equal(_bits(fast), _bits(ref.height_grid(xs, zs))), (cx, cz)
    biomes = w.biome(c[None, :], c[:, None])
    assert {int(b) for b in np.unique(biomes)} >= {1, 8, 16, 32, 64, 256}


@pytest.mark.skipif(not HAVE_NUMBA, reason="compares the compiled path with the reference")
@pytest.mark.parametrize("seed", [-1772362158, 319486907])
def test_pregeneration_fast_equals_reference(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Lakes, rivers, streams (both passes, 40 attempts each here) and the resulting river
    weights: the compiled pre-generation equals the numpy reference."""
    monkeypatch.setattr(pregen, "STREAM_ATTEMPTS", 40)
    fast = World(seed=seed, fast=True)
    ref = World(seed=seed, fast=False)
    assert np.array_equal(fast.lakes, ref.lakes)
    assert fast.rivers == ref.rivers
    assert fast.streams == ref.streams
    assert len(fast.streams) > 0
    s = fast.streams[0]
    xs = (F32(s.center[0]) + np.arange(-40, 40, dtype=F32) * F32(2.5)).astype(F32)
    zs = (F32(s.center[1]) + np.arange(-40, 40, dtype=F32) * F32(2.5)).astype(F32)
    wf, df = fast.river_weight(xs[None, :], zs[:, None])
    wr, dr = ref.river_weight(xs[None, :], zs[:, None])
    assert np.array_equal(_bits(wf), _bits(wr)) and np.array_equal(_bits(df), _bits(dr))
    assert float(wf.max()) > 0.0
    assert np.array_equal(_bits(fast.height_grid(xs, zs)), _bits(ref.height_grid(xs, zs)))


def test_lakes_sit_at_river_ends(world: World) -> None:
    """Every river joins two lakes; its first rendered point is the start lake itself, where
    the river weight is exactly 1 and the terrain is carved to the river bed (below 30 m)."""
    assert len(world.lakes) > 10 and len(world.rivers) > 10
    lakes = {(float(x), float(z)) for x, z in world.lakes}
    for r in world.rivers:
        assert r.p0 in lakes and r.p1 in lakes
        assert 60.0 <= r.width_min <= r.width_max <= 100.0
    starts = np.array([r.p0 for r in world.rivers], dtype=F32)
    weight, _ = world.river_weight(starts[:, 0], starts[:, 1])
    assert np.all(weight == F32(1.0))
    assert all(s.width_min == s.width_max == 20.0 for s in world.streams)


def test_world_edge_is_minus_400(world: World) -> None:
    """``GetBiomeHeight`` returns -2 * 200 beyond 10 500 m (DUtils.Length, float)."""
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    for radius, outside in ((10499.0, False), (10501.0, True), (12000.0, True)):
        x = (radius * np.cos(angles)).astype(F32)
        z = (radius * np.sin(angles)).astype(F32)
        h = world.height(x, z)
        assert np.all((h == F32(-400.0)) == outside), radius


def test_gap_multipliers_carve_the_moats(world: World) -> None:
    """On the AshLands and Deep North rings the height multiplier falls to ~0 (an ocean moat at
    sea level 0 m... i.e. the normalised height times ~0); 600 m away it is exactly 200."""
    from worldgen.terrain import height_multiplier

    x = np.linspace(-3000, 3000, 41, dtype=F32)
    far = height_multiplier(x, np.full_like(x, F32(-3000.0)))
    assert np.all(far == F32(200.0))
    on_ring = np.zeros(41, dtype=F32)
    for i, xi in enumerate(x):  # find the ring crossing along z for each x
        zs = np.linspace(-9000, -7000, 4001, dtype=F32)
        m = height_multiplier(np.full_like(zs, xi), zs)
        on_ring[i] = m.min()
    assert np.all(on_ring < F32(2.0))


def test_no_negative_zero_and_shapes(world: World) -> None:
    c = lattice_coords(96)
    base = world.base_height(c[None, :], c[:, None])
    h = world.height(c[None, :], c[:, None])
    assert base.dtype == np.float32 and h.dtype == np.float32 and h.shape == (96, 96)
    assert not np.any(np.signbit(base) & (base == 0))
    assert not np.any(np.signbit(h) & (h == 0))
    assert world.height([1.0, 2.0], [[3.0], [4.0]]).shape == (2, 2)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        World()
    with pytest.raises(ValueError, match="int32"):
        World(seed=2**31)
    w = World(seed=1, pregenerate=False)
    with pytest.raises(ValueError, match="finite"):
        w.height(float("nan"), 0.0)
