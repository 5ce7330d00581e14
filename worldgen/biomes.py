"""Valheim's biome map: ``WorldGenerator.GetBaseHeight`` and ``GetBiome``, bit for bit.

The rules are those of Valheim 1.0.15 (``assembly_valheim.dll`` as specified statement by
statement in Valheim-SeedLab's spec 01). The game computes each statement in double and rounds
to float32 at the end of it, with float32 literals widened to double; the constants below are
therefore written as ``float(np.float32(literal))``. Where a statement is a *single* operation
on float32 operands it is done directly in float32: rounding the exact double result of one
+, -, * or / to float32 gives the correctly rounded float32 result (53 >= 2 * 24 + 2), so the two
are identical and the float32 form is cheaper.

This module is the reference: :func:`biome_points` evaluates any array of points the
straightforward way (single points, the tests, and the helpers the terrain shares).
:func:`worldgen.biomegrid.biome_grid` evaluates a tensor grid with the same arithmetic organised
for speed and returns exactly what :func:`biome_points` returns.

``GetBaseHeight`` ends with ``h * 1f + 0f`` (its unused multiplicative and additive terms), so
it never returns ``-0.0``: :func:`base_height` keeps that final ``+ 0``.

``worldgen_version`` (``World.m_worldGenVersion``) only changes three constants, exactly as the
1.0.15 game does for old worlds (``WorldGenerator.VersionSetup``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from worldgen.hashing import seed_from_text
from worldgen.perlin import perlin_noise
from worldgen.unity_random import WorldOffsets, world_offsets

F32 = np.float32
F64 = np.float64
F32Array = npt.NDArray[np.float32]
F64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Biome(IntEnum):
    """``Heightmap.Biome``: flag values, as stored in the game's data."""

    NONE = 0
    MEADOWS = 1
    SWAMP = 2
    MOUNTAIN = 4
    BLACK_FOREST = 8
    PLAINS = 16
    ASHLANDS = 32
    DEEP_NORTH = 64
    OCEAN = 256
    MISTLANDS = 512


# The names the game uses (Heightmap.Biome.ToString()), for reports and JSON.
BIOME_NAMES: dict[Biome, str] = {
    Biome.MEADOWS: "Meadows", Biome.SWAMP: "Swamp", Biome.MOUNTAIN: "Mountain",
    Biome.BLACK_FOREST: "BlackForest", Biome.PLAINS: "Plains", Biome.ASHLANDS: "AshLands",
    Biome.DEEP_NORTH: "DeepNorth", Biome.OCEAN: "Ocean", Biome.MISTLANDS: "Mistlands",
}

WORLD_RADIUS = 10000.0  # WorldGenerator.worldSize
EDGE_RADIUS = 10500.0  # WorldGenerator.waterEdge: nothing exists beyond it


def _wf(x: float) -> float:
    """A float32 literal widened to double, as the compiler emits it."""
    return float(np.float32(x))


# GetBaseHeight literals (exact doubles of the IL).
_K002 = _wf(0.002)
_K003 = _wf(0.003)
_K005 = _wf(0.005)
_K01 = _wf(0.01)
_K09 = _wf(0.9)
_K007 = F32(0.07)
_CH_X0, _CH_Y0 = _wf(0.123), _wf(0.15123)
_CH_X1, _CH_Y1 = _wf(0.321), _wf(0.231)
_CAP_LO = F32(0.28)
_CAP_HI = F32(0.38)
_CAP_DIV = float(np.float32(np.float32(0.38) - np.float32(0.28)))  # 0.099999994039535522
_MASK_SCALE = _wf(0.001)


@dataclass(frozen=True)
class VersionConstants:
    """``WorldGenerator.VersionSetup``: the only effect of ``m_worldGenVersion`` on biomes."""

    min_mountain_distance: float
    min_darkland_noise: float
    max_marsh_distance: float


def version_constants(worldgen_version: int) -> VersionConstants:
    """Version 2 (every world made since Mistlands) and the older 1 and <= 0 constants."""
    return VersionConstants(
        min_mountain_distance=1500.0 if worldgen_version <= 0 else 1000.0,
        min_darkland_noise=_wf(0.5) if worldgen_version <= 1 else _wf(0.4),
        max_marsh_distance=8000.0 if worldgen_version <= 1 else 6000.0,
    )


MAX_COORDINATE = 1.0e7  # metres; far beyond the world, well inside the noise's int32 range


def checked_coords(values: npt.ArrayLike, name: str) -> F32Array:
    """Coordinates as float32, refusing what the game never sees (NaN, inf, absurd sizes).

    ``Mathf.PerlinNoise`` of NaN is unknowable (native code) and huge values overflow its
    int32 lattice index, so such input is an error rather than a silent guess.
    """
    arr = np.asarray(values, dtype=F32)
    if arr.size and not (np.isfinite(arr).all() and float(np.abs(arr).max()) <= MAX_COORDINATE):
        raise ValueError(f"{name} must be finite and within +-{MAX_COORDINATE:g} m")
    return arr


def resolve_offsets(seed_or_offsets: int | str | WorldOffsets) -> WorldOffsets:
    """Accept an int seed, a seed text or ready offsets."""
    if isinstance(seed_or_offsets, WorldOffsets):
        return seed_or_offsets
    if isinstance(seed_or_offsets, str):
        return world_offsets(seed_from_text(seed_or_offsets))
    return world_offsets(int(seed_or_offsets))


# ---------------------------------------------------------------------------------------------
# DUtils / Utils helpers (float overloads compute in double and round once at the end).


def length(x: F32Array, y: F32Array) -> F32Array:
    """``DUtils.Length(float, float)``: squares and sum in double, sqrt, round to float."""
    xd = x.astype(F64)
    yd = y.astype(F64)
    return np.sqrt(xd * xd + yd * yd).astype(F32)


def _clamp01(v: F64Array) -> F64Array:
    return np.where(v > 1.0, 1.0, np.where(v < 0.0, 0.0, v))


def lerp_step(lo: float, hi: float, v: F32Array) -> F32Array:
    """``DUtils.LerpStep(float, float, float)``."""
    lo_d, hi_d = _wf(lo), _wf(hi)
    return _clamp01((v.astype(F64) - lo_d) / (hi_d - lo_d)).astype(F32)


def utils_lerp_step(lo: float, hi: float, v: F32Array) -> F32Array:
    """``Utils.LerpStep``: all float32 (used once, at the 10 490 m edge)."""
    lo32, hi32 = F32(lo), F32(hi)
    t = (v - lo32) / (hi32 - lo32)
    return np.where(t > 1, F32(1), np.where(t < 0, F32(0), t)).astype(F32)


def smooth_step(lo: float, hi: float, x: F32Array) -> F32Array:
    """``DUtils.SmoothStep(float, float, float)``: clamp rounded to float, then the cubic."""
    t = _clamp01((x.astype(F64) - _wf(lo)) / (_wf(hi) - _wf(lo))).astype(F32).astype(F64)
    return (t * t * (3.0 - 2.0 * t)).astype(F32)


def lerp(a: F32Array, b: F32Array | np.float32, t: F32Array) -> F32Array:
    """``DUtils.Lerp(float, float, float)``: exact ends, double interior."""
    a = np.asarray(a, dtype=F32)
    bb = np.broadcast_to(np.asarray(b, dtype=F32), np.shape(a))
    td = t.astype(F64)
    mid = (a.astype(F64) * (1.0 - td) + bb.astype(F64) * td).astype(F32)
    return np.where(t <= 0, a, np.where(t >= 1, bb, mid)).astype(F32)


def world_angle(wx: F32Array, wy: F32Array) -> F32Array:
    """``WorldGenerator.WorldAngle``: ``sin(20 * atan2(x, y))`` with three float roundings."""
    a = np.arctan2(wx.astype(F64), wy.astype(F64)).astype(F32)
    b = (a.astype(F64) * 20.0).astype(F32)
    return np.sin(b.astype(F64)).astype(F32)


def _wobble32(wx: F32Array, wy: F32Array) -> F32Array:
    """The float-rounded ``WorldAngle * 100`` of ``GetBiome`` and ``IsDeepnorth``."""
    return (world_angle(wx, wy).astype(F64) * 100.0).astype(F32)


def is_ashlands(wx: F32Array, wy: F32Array) -> BoolArray:
    """``WorldGenerator.IsAshlands``: double wobble, ``DUtils.Length``, double comparison."""
    wobble = world_angle(wx, wy).astype(F64) * 100.0
    yy = (wy.astype(F64) - 4000.0).astype(F32)
    out: BoolArray = length(wx, yy).astype(F64) > 12000.0 + wobble
    return out


def is_deep_north(wx: F32Array, wy: F32Array) -> BoolArray:
    """``WorldGenerator.IsDeepnorth``: float wobble, ``Vector2.magnitude``, float comparison."""
    wobble = _wobble32(wx, wy)
    yy = (wy.astype(F64) + 4000.0).astype(F32)
    mag = np.sqrt((wx * wx + yy * yy).astype(F64)).astype(F32)
    out: BoolArray = mag > (12000.0 + wobble.astype(F64)).astype(F32)
    return out


def band_limit(radius: float, wobble: F32Array) -> F32Array:
    """``(float)(radius + (double)A)``: the wobbled inner edge of a biome band."""
    return (radius + wobble.astype(F64)).astype(F32)


# ---------------------------------------------------------------------------------------------
# Reference implementation over arbitrary points.


def _p(a: F64Array, b: F64Array) -> F64Array:
    """``DUtils.PerlinNoise(double, double)`` widened back to double for the next statement."""
    return perlin_noise(a.astype(F32), b.astype(F32)).astype(F64)


def base_height(offsets: WorldOffsets, wx: F32Array, wy: F32Array,
                consts: VersionConstants) -> F32Array:
    """``GetBaseHeight(wx, wy, menuTerrain: false)``."""
    dist = length(wx, wy)
    x = wx.astype(F64) + (100000.0 + offsets.off0)
    y = wy.astype(F64) + (100000.0 + offsets.off1)
    h = (_p(x * _K002 * 0.5, y * _K002 * 0.5) * _p(x * _K003 * 0.5, y * _K003 * 0.5)
         * 1.0).astype(F32)
    hd = h.astype(F64)
    h = (hd + _p(x * _K002 * 1.0, y * _K002 * 1.0) * _p(x * _K003 * 1.0, y * _K003 * 1.0)
         * hd * _K09).astype(F32)
    hd = h.astype(F64)
    h = (hd + _p(x * _K005 * 1.0, y * _K005 * 1.0) * _p(x * _K01 * 1.0, y * _K01 * 1.0)
         * 0.5 * hd).astype(F32)
    h = (h - _K007).astype(F32)
    n10 = perlin_noise((x * _K002 * 0.25 + _CH_X0).astype(F32),
                       (y * _K002 * 0.25 + _CH_Y0).astype(F32))
    n11 = perlin_noise((x * _K002 * 0.25 + _CH_X1).astype(F32),
                       (y * _K002 * 0.25 + _CH_Y1).astype(F32))
    v = np.abs(n10 - n11)
    c = (F32(1.0) - lerp_step(0.02, 0.12, v)).astype(F32)
    c = (c * smooth_step(744.0, 1000.0, dist)).astype(F32)
    h = (h.astype(F64) * (1.0 - c.astype(F64))).astype(F32)
    # World edge (dist > 10000) or, otherwise, the near-spawn mountain cap.
    edge = dist > F32(WORLD_RADIUS)
    he = lerp(h, F32(-0.2), lerp_step(10000.0, 10500.0, dist))
    he = np.where(dist > F32(10490.0), lerp(he, F32(-2.0), utils_lerp_step(10490.0, 10500.0,
                                                                           dist)), he)
    mmd = consts.min_mountain_distance
    cap = (dist < F32(mmd)) & (h > _CAP_LO)
    t3 = _clamp01((h.astype(F64) - float(_CAP_LO)) / _CAP_DIV).astype(F32)
    hc = lerp(lerp(np.broadcast_to(_CAP_LO, h.shape), _CAP_HI, t3), h,
              lerp_step(float(F32(mmd - 400.0)), mmd, dist))
    out: F32Array = np.where(edge, he, np.where(cap, hc, h)).astype(F32)
    out += F32(0.0)  # ``h * num2 + num`` with num = 0f: -0.0 becomes +0.0, as in the game
    return out


def _mask_noise(offset: int, wx: F32Array, wy: F32Array) -> F32Array:
    """A biome mask: ``P((float)(off + wx) * 0.001f, (float)(off + wy) * 0.001f)``."""
    ax = (offset + wx.astype(F64)).astype(F32).astype(F64) * _MASK_SCALE
    ay = (offset + wy.astype(F64)).astype(F32).astype(F64) * _MASK_SCALE
    return perlin_noise(ax.astype(F32), ay.astype(F32))


def biome_points(seed_or_offsets: int | str | WorldOffsets, xs: npt.ArrayLike,
                 zs: npt.ArrayLike, worldgen_version: int = 2) -> npt.NDArray[np.uint16]:
    """``GetBiome(x, z)`` at points (``xs``/``zs`` broadcast together), the plain way."""
    offsets = resolve_offsets(seed_or_offsets)
    consts = version_constants(worldgen_version)
    bx, by = np.broadcast_arrays(checked_coords(xs, "xs"), checked_coords(zs, "zs"))
    shape = bx.shape
    wx = np.ascontiguousarray(bx).ravel()
    wy = np.ascontiguousarray(by).ravel()
    dist = length(wx, wy)
    base = base_height(offsets, wx, wy, consts)
    wob = _wobble32(wx, wy)
    conditions = [
        is_ashlands(wx, wy),
        base <= F32(0.02),
        is_deep_north(wx, wy),
        base > F32(0.4),
        (_mask_noise(offsets.off0, wx, wy) > F32(0.6)) & (dist > F32(2000.0))
        & (dist < F32(consts.max_marsh_distance)) & (base > F32(0.05)) & (base < F32(0.25)),
        (_mask_noise(offsets.off4, wx, wy) > F32(consts.min_darkland_noise))
        & (dist > band_limit(6000.0, wob)) & (dist < F32(10000.0)),
        (_mask_noise(offsets.off1, wx, wy) > F32(0.4)) & (dist > band_limit(3000.0, wob))
        & (dist < F32(8000.0)),
        (_mask_noise(offsets.off2, wx, wy) > F32(0.4)) & (dist > band_limit(600.0, wob))
        & (dist < F32(6000.0)),
        dist > band_limit(5000.0, wob),
    ]
    choices = [Biome.ASHLANDS, Biome.OCEAN, Biome.DEEP_NORTH, Biome.MOUNTAIN, Biome.SWAMP,
               Biome.MISTLANDS, Biome.PLAINS, Biome.BLACK_FOREST, Biome.BLACK_FOREST]
    out: npt.NDArray[np.uint16] = np.select(
        conditions, [np.uint16(c) for c in choices], default=np.uint16(Biome.MEADOWS)
    ).astype(np.uint16)
    return out.reshape(shape)


def biome_at(seed: int | str | WorldOffsets, x: float, z: float,
             worldgen_version: int = 2) -> Biome:
    """``GetBiome`` of one point (``seed`` may be the int seed, the seed text or offsets)."""
    return Biome(int(biome_points(seed, [x], [z], worldgen_version)[0]))
