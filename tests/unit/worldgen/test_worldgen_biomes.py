"""GetBiome: ground truth of a real world, and the fast grid against the plain reference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from worldgen.biomegrid import biome_grid, lattice_for
from worldgen.biomes import Biome, biome_at, biome_points, version_constants
from worldgen.unity_random import world_offsets

pytestmark = pytest.mark.unit

SEED = -1772362158  # "MWd8eV6svz", the world whose minimap cache Valheim-SeedLab checked


def _lattice(n: int) -> npt.NDArray[np.float32]:
    cell = 24576.0 / n
    return ((np.arange(n) - n / 2) * cell + cell / 2).astype(np.float32)


@pytest.fixture(scope="module")
def full_grid() -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.bool_]]:
    coords = _lattice(2048)
    lat = lattice_for(coords, coords, 2)
    grid, counts = lat.biomes_and_counts(SEED)
    expected = np.bincount(grid[lat.inworld], minlength=513)
    assert counts == {Biome(int(c)): int(expected[c]) for c in np.flatnonzero(expected)}
    return grid, lat.inworld


@pytest.mark.parametrize(
    ("x", "z", "biome"),
    [
        (0, 0, Biome.MEADOWS),
        (1000, -2000, Biome.OCEAN),
        (3200, 3200, Biome.PLAINS),
        (2000, 8600, Biome.DEEP_NORTH),
        (0, -9500, Biome.ASHLANDS),
        (-3000, -6000, Biome.MISTLANDS),
        (-7902, 6006, Biome.DEEP_NORTH),
    ],
)
def test_ground_truth_points(x: float, z: float, biome: Biome) -> None:
    assert biome_at(SEED, x, z) is biome
    assert biome_at("MWd8eV6svz", x, z) is biome


def test_game_shares_on_the_minimap_lattice(full_grid: tuple[np.ndarray, np.ndarray]) -> None:
    grid, inworld = full_grid
    assert grid.shape == (2048, 2048) and grid.dtype == np.uint16
    inside = grid[inworld]
    assert inside.size == int(inworld.sum())
    for biome, share in ((Biome.SWAMP, 0.02603), (Biome.PLAINS, 0.13615),
                         (Biome.OCEAN, 0.28287)):
        assert round(float(np.mean(inside == biome)), 5) == share


def test_fast_grid_equals_reference_on_sampled_lattice_points(
        full_grid: tuple[np.ndarray, np.ndarray]) -> None:
    grid, _ = full_grid
    coords = _lattice(2048)
    rng = np.random.default_rng(0)
    i = rng.integers(0, 2048, 40_000)
    j = rng.integers(0, 2048, 40_000)
    # plus every point of a few full rows, through the centre and across the world edge
    rows = np.array([0, 150, 300, 1023, 1024, 1100, 1900])
    i = np.concatenate([i, np.repeat(rows, 2048)])
    j = np.concatenate([j, np.tile(np.arange(2048), rows.size)])
    ref = biome_points(SEED, coords[j], coords[i])
    assert np.array_equal(grid[i, j], ref)


def test_every_biome_and_only_known_codes(full_grid: tuple[np.ndarray, np.ndarray]) -> None:
    grid, inworld = full_grid
    codes = set(np.unique(grid[inworld]).tolist())
    assert codes == {int(b) for b in Biome if b is not Biome.NONE}
    outside = set(np.unique(grid[~inworld]).tolist())
    assert outside <= {int(Biome.OCEAN), int(Biome.ASHLANDS)}


@pytest.mark.parametrize("version", [0, 1, 2])
def test_versions_grid_equals_points(version: int) -> None:
    xs = np.linspace(-10600, 10600, 181).astype(np.float32)
    zs = np.linspace(-10600, 10600, 173).astype(np.float32)
    seed = 12345
    grid = biome_grid(seed, xs, zs, worldgen_version=version)
    ref = biome_points(seed, xs[None, :], zs[:, None], worldgen_version=version)
    assert np.array_equal(grid, ref)


def test_version_constants() -> None:
    assert version_constants(2).max_marsh_distance == 6000.0
    assert version_constants(1).max_marsh_distance == 8000.0
    assert version_constants(1).min_mountain_distance == 1000.0
    assert version_constants(0).min_mountain_distance == 1500.0
    assert np.float32(version_constants(1).min_darkland_noise) == np.float32(0.5)
    assert np.float32(version_constants(2).min_darkland_noise) == np.float32(0.4)


def test_old_versions_change_the_map() -> None:
    coords = _lattice(256)
    v2 = biome_grid(SEED, coords, coords, 2)
    v1 = biome_grid(SEED, coords, coords, 1)
    assert (v1 != v2).any()
    # Version 1 keeps Swamp out to 8000 m; version 2 stops it at 6000 m.
    x, z = np.meshgrid(coords.astype(np.float64), coords.astype(np.float64))
    dist = np.hypot(x, z)
    assert not (v2[dist > 6001] == Biome.SWAMP).any()
    assert (v1[(dist > 6001) & (dist < 8000)] == Biome.SWAMP).any()


def test_unordered_and_irregular_grid() -> None:
    rng = np.random.default_rng(7)
    xs = rng.uniform(-11000, 11000, 97).astype(np.float32)
    zs = rng.uniform(-11000, 11000, 61).astype(np.float32)
    offsets = world_offsets(-99)
    grid = biome_grid(offsets, xs, zs)
    assert np.array_equal(grid, biome_points(offsets, xs[None, :], zs[:, None]))


def test_near_spawn_has_no_mountains(full_grid: tuple[np.ndarray, np.ndarray]) -> None:
    grid, _ = full_grid
    coords = _lattice(2048).astype(np.float64)
    dist = np.hypot(coords[None, :], coords[:, None])
    assert not (grid[dist < 600] == Biome.MOUNTAIN).any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 2e7])
def test_rejects_coordinates_the_game_never_sees(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        biome_grid(SEED, [0.0, bad], [0.0])
    with pytest.raises(ValueError, match="finite"):
        biome_points(SEED, [bad], [0.0])


def test_tiny_and_far_grids() -> None:
    assert biome_grid(SEED, [0.0], [0.0]).tolist() == [[Biome.MEADOWS]]
    assert biome_grid(SEED, np.zeros(0), [0.0]).shape == (1, 0)
    # IsAshlands is "outside 12 000 m + wobble of (0, 4000)": all far points, in any direction.
    far = biome_grid(SEED, [-9e6, 0.0, 9e6], [-9e6, 9e6])
    assert far.tolist() == [[Biome.ASHLANDS] * 3] * 2
    # Just past the edge in the north (inside that circle) the base height is -2: Ocean.
    assert biome_grid(SEED, [0.0], [10600.0]).tolist() == [[Biome.OCEAN]]
