"""Valheim's terrain heights: ``GetBiomeHeight`` and every per-biome height function, bit for bit.

The reference implementation, vectorised over any array of points but evaluating each point by
itself, statement by statement as Valheim-SeedLab's spec 01 (section 3) describes
``assembly_valheim.dll`` 1.0.15: each statement is computed in double and rounded to float32 at
its end (``_f``), float literals are widened (``_wf``), and Perlin inputs are rounded to float32
inside ``DUtils.PerlinNoise`` (``_p``). A single +, -, * or / on float32 operands is done in
float32 directly (one rounding either way). Heights are metres (sea level 30 m);
``base_height`` stays the game's normalised value.

River carving (``AddRivers``) reads weights the caller supplies per point (``RiverWeights``),
because ``GetRiverWeight``'s one-entry cache makes a weight depend on the order of the queries;
:mod:`worldgen.rivers` computes them in the game's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldgen.ashlands import ashlands_height, mathf_like_smooth_step, pow_c
from worldgen.biomes import (
    EDGE_RADIUS,
    Biome,
    BoolArray,
    F32Array,
    F64Array,
    VersionConstants,
    _clamp01,
    _wf,
    base_height,
    length,
    lerp,
    lerp_step,
    world_angle,
)
from worldgen.perlin import perlin_noise
from worldgen.unity_random import WorldOffsets

F32 = np.float32
F64 = np.float64
HEIGHT_MULTIPLIER = 200.0  # WorldGenerator.GetHeightMultiplier()
EDGE_HEIGHT = F32(-400.0)  # -2f * GetHeightMultiplier(), beyond 10 500 m
ASHLANDS_MIN_DISTANCE = 12000.0
ASHLANDS_Y_OFFSET = -4000.0

# Biomes whose height function calls AddRivers (final heights; pre-generation adds AshLands).
RIVER_BIOMES = (Biome.MEADOWS, Biome.SWAMP, Biome.MOUNTAIN, Biome.BLACK_FOREST, Biome.PLAINS,
                Biome.DEEP_NORTH, Biome.MISTLANDS)

_K01, _K02, _K03, _K04, _K05 = _wf(0.01), _wf(0.02), _wf(0.03), _wf(0.04), _wf(0.05)
_K08, _K1, _K2, _K4, _K7 = _wf(0.08), _wf(0.1), _wf(0.2), _wf(0.4), _wf(0.7)
_K003, _K002 = _wf(0.003), _wf(0.002)
_K12 = _wf(1.2)
_SEA = F32(0.15)


def _f(v: F64Array | float) -> F32Array:
    """``conv.r4``: the end of a statement."""
    return np.asarray(v, dtype=F64).astype(F32)


def _d(v: F32Array | np.float32) -> F64Array:
    return np.asarray(v).astype(F64)


def _p(a: F64Array, b: F64Array) -> F64Array:
    """``DUtils.PerlinNoise(double, double)``, widened back to double."""
    return perlin_noise(a.astype(F32), b.astype(F32)).astype(F64)


@dataclass(frozen=True)
class RiverWeights:
    """``GetRiverWeight`` at each point: ``weight`` and ``width`` (float32, the points' shape)."""

    weight: F32Array
    width: F32Array

    def take(self, sel: npt.NDArray[np.intp]) -> RiverWeights:
        return RiverWeights(self.weight[sel], self.width[sel])


def add_rivers(h: F32Array, rw: RiverWeights) -> F32Array:
    """``AddRivers``: lower the terrain to the river bed where the river weight is positive."""
    weight, width = rw.weight, rw.width
    wet = weight > 0
    if not wet.any():
        return h
    out = h.copy()
    idx = np.flatnonzero(wet)
    hv, w, wd = h[idx], weight[idx], width[idx]
    t = lerp_step(20.0, 60.0, wd)
    bed = lerp(np.full(t.shape, F32(0.14)), F32(0.12), t)
    mid = lerp(np.full(t.shape, F32(0.139)), F32(0.128), t)
    hv = np.where(hv > bed, lerp(hv, bed, w), hv)
    hv = np.where(hv > mid, lerp(hv, mid, lerp_step(0.85, 1.0, w)), hv)
    out[idx] = hv
    return out


def _offset_coords(wx: F32Array, wy: F32Array, off3: int) -> tuple[F64Array, F64Array]:
    """``wx = (float)((double)wx + 100000.0 + (double)m_offset3)``, then widened."""
    u = _d(_f((_d(wx) + 100000.0) + off3))
    v = _d(_f((_d(wy) + 100000.0) + off3))
    return u, v


def _detail(u: F64Array, v: F64Array) -> F32Array:
    """The shared two-statement detail term ``D`` (double products)."""
    d = _f(_p(u * _K01, v * _K01) * _p(u * _K02, v * _K02))
    dd = _d(d)
    return _f(dd + _p(u * _K05, v * _K05) * _p(u * _K1, v * _K1) * dd * 0.5)


def _fine(h: F32Array, u: F64Array, v: F64Array) -> F32Array:
    """``F(h)``: the two fine noise terms added last."""
    h = _f(_d(h) + _p(u * _K1, v * _K1) * _K01)
    return _f(_d(h) + _p(u * _K4, v * _K4) * _K003)


def _squash(h: F32Array, base: F32Array, plains: bool) -> F32Array:
    """The sea-level squash of Meadows / Deep North (``over * ((1 - k) * 0.75)``) and Plains
    (``(over * (1 - k)) * 0.75``)."""
    over = h - _SEA
    k = _d(_f(_clamp01(_d(base) / _K4)))
    od = _d(over)
    cut = (od * (1.0 - k)) * 0.75 if plains else od * ((1.0 - k) * 0.75)
    return np.where(over > 0, _f(_d(h) - cut), h)


class BiomeHeights:
    """The per-biome height functions of one world (normalised heights, before ``* 200``)."""

    def __init__(self, offsets: WorldOffsets, consts: VersionConstants) -> None:
        self.offsets = offsets
        self.consts = consts

    def base(self, wx: F32Array, wy: F32Array) -> F32Array:
        return base_height(self.offsets, wx, wy, self.consts)

    def meadows(self, wx: F32Array, wy: F32Array, rw: RiverWeights, plains: bool = False
                ) -> F32Array:
        """``GetMeadowsHeight`` (or ``GetPlainsHeight`` with ``plains``)."""
        base = self.base(wx, wy)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        h = _f(_d(base) + _d(_detail(u, v)) * _K1)
        h = _squash(h, base, plains)
        return _fine(add_rivers(h, rw), u, v)

    def forest(self, wx: F32Array, wy: F32Array, rw: RiverWeights) -> F32Array:
        """``GetForestHeight`` (BlackForest, and Mistlands during pre-generation)."""
        base = self.base(wx, wy)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        h = _f(_d(base) + _d(_detail(u, v)) * _K1)
        return _fine(add_rivers(h, rw), u, v)

    def marsh(self, wx: F32Array, wy: F32Array, rw: RiverWeights) -> F32Array:
        """``GetMarshHeight``: no seed offset and no base height at all."""
        u = _d(_f(_d(wx) + 100000.0))
        v = _d(_f(_d(wy) + 100000.0))
        n = _f(_p(u * _K04, v * _K04) * _p(u * _K08, v * _K08))
        h = _f(_d(F32(0.137)) + _d(n) * _K03)
        return _fine(add_rivers(h, rw), u, v)

    def mistlands(self, wx: F32Array, wy: F32Array, rw: RiverWeights) -> F32Array:
        """``GetMistlandsHeight``: a float first product, ``Pow(M, 1.5)`` and 1/400 terraces."""
        base = self.base(wx, wy)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        m = (_p(u * _K02 * _K7, v * _K02 * _K7).astype(F32)
             * _p(u * _K04 * _K7, v * _K04 * _K7).astype(F32))
        md = _d(m)
        m = _f(md + _p(u * _K03 * _K7, v * _K03 * _K7) * _p(u * _K05 * _K7, v * _K05 * _K7)
               * md * 0.5)
        m = np.where(m > 0, _f(pow_c(_d(np.maximum(m, F32(0))), 1.5)), m)
        h = _f(_d(base) + _d(m) * _K4)
        h = add_rivers(h, rw)
        k = _f(_clamp01(_d(m) * 7.0))
        kd = _d(k)
        h = _f(_d(h) + _p(u * _K1, v * _K1) * _K03 * kd)
        h = _f(_d(h) + _p(u * _K4, v * _K4) * _K01 * kd)
        smooth = _f(_d(h) + _p(u * _K4, v * _K4) * _K002)
        terr = _f(_d(h) * 400.0)
        terr = _f(np.ceil(_d(terr)))
        terr = _f(_d(terr) / 400.0)
        return lerp(smooth, terr, k)

    def tilt(self, wx: F32Array, wy: F32Array) -> F32Array:
        """``BaseHeightTilt``: four more base heights, one metre around the point."""
        a = self.base(_f(_d(wx) - 1.0), wy)
        b = self.base(_f(_d(wx) + 1.0), wy)
        c = self.base(wx, _f(_d(wy) - 1.0))
        d = self.base(wx, _f(_d(wy) + 1.0))
        return _f(_d(np.abs(_f(_d(b) - _d(a)))) + _d(np.abs(_f(_d(c) - _d(d)))))

    def mountain(self, wx: F32Array, wy: F32Array, rw: RiverWeights) -> F32Array:
        """``GetSnowMountainHeight(menu: false)``."""
        h = self.base(wx, wy)
        tilt = self.tilt(wx, wy)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        dh = _f(_d(h) - _K4)
        h = h + dh
        h = _f(_d(h) + _d(_detail(u, v)) * _K2)
        h = _fine(add_rivers(h, rw), u, v)
        return _f(_d(h) + _p(u * _K2, v * _K2) * 2.0 * _d(tilt))

    def deep_north(self, wx: F32Array, wy: F32Array, rw: RiverWeights) -> F32Array:
        """``GetDeepNorthHeight``: base ``+ 0.1f`` (float), the Meadows squash, rivers, ``F``."""
        b = self.base(wx, wy) + F32(0.1)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        h = _f(_d(b) + _d(_detail(u, v)) * _K1)
        h = _squash(h, b, plains=False)
        return _fine(add_rivers(h, rw), u, v)

    def deep_north_pregen(self, wx: F32Array, wy: F32Array, rw: RiverWeights,
                          river_pre_dn: bool) -> F32Array:
        """``GetDeepNorthHeightPregenerate``: float-multiplied coordinates for the fine noise."""
        h = self.base(wx, wy)
        if not river_pre_dn:
            h = h + F32(0.1)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        dh = np.maximum(F32(0.0), _f(_d(h) - _K4))
        h = h + dh
        h = _f(_d(h) + _d(_detail(u, v)) * _K2)
        h = _f(_d(h) * _K12)
        h = add_rivers(h, rw)
        u32, v32 = u.astype(F32), v.astype(F32)
        h = _f(_d(h) + _d(perlin_noise(u32 * F32(0.1), v32 * F32(0.1))) * _K01)
        return _f(_d(h) + _d(perlin_noise(u32 * F32(0.4), v32 * F32(0.4))) * _K003)

    def ashlands_pregen(self, wx: F32Array, wy: F32Array, rw: RiverWeights) -> F32Array:
        """``GetAshlandsHeightPregenerate``: rivers last, after the fine noise."""
        h = self.base(wx, wy)
        u, v = _offset_coords(wx, wy, self.offsets.off3)
        h = _f(_d(h) + _d(_detail(u, v)) * _K1)
        h = _f(_d(h) + _K1)
        return add_rivers(_fine(h, u, v), rw)

    def ashlands(self, wx: F32Array, wy: F32Array) -> F32Array:
        """``GetAshlandsHeight(cheap: false)``: double end to end; see :mod:`worldgen.ashlands`."""
        return ashlands_height(self.base(wx, wy), wx, wy, self.offsets.off3)


def _gap(wx: F32Array, wy: F32Array, y_offset: float) -> F64Array:
    """``CreateAshlandsGap`` / ``CreateDeepNorthGap``: 0 on the ring, 1 at 400 m from it."""
    a = _d(world_angle(wx, wy)) * 100.0
    yy = wy + F32(y_offset)  # float add inside the float DUtils.Length call
    v = _d(length(wx, yy)) - (ASHLANDS_MIN_DISTANCE + a)
    v = _clamp01(np.abs(v) / 400.0)
    return mathf_like_smooth_step(0.0, 1.0, _d(_f(v)))


def height_multiplier(wx: F32Array, wy: F32Array) -> F32Array:
    """``(float)(200.0 * CreateAshlandsGap * CreateDeepNorthGap)`` of ``GetBiomeHeight``."""
    return _f(HEIGHT_MULTIPLIER * _gap(wx, wy, ASHLANDS_Y_OFFSET) * _gap(wx, wy, 4000.0))


def river_mask(biomes: npt.NDArray[np.uint16], wx: F32Array, wy: F32Array,
               pre_generation: bool) -> BoolArray:
    """Points whose height calls ``GetRiverWeight`` (in-world, a biome that adds rivers)."""
    codes = [int(b) for b in RIVER_BIOMES]
    if pre_generation:
        codes.append(int(Biome.ASHLANDS))
    inside = ~(length(wx, wy) > F32(EDGE_RADIUS))
    out: BoolArray = np.isin(biomes, codes) & inside
    return out


def biome_height(heights: BiomeHeights, biomes: npt.NDArray[np.uint16], wx: F32Array,
                 wy: F32Array, rw: RiverWeights, pre_generation: bool = False,
                 river_pre_dn: bool = True) -> F32Array:
    """``GetBiomeHeight(biome, wx, wy)`` at flat float32 points, in metres.

    ``rw`` holds the river weights of the points (only read where :func:`river_mask` is set).
    Beyond 10 500 m the result is -400 m; elsewhere ``(float)(f * mult + 0.0)`` with ``mult``
    200 during pre-generation and the gap-scaled multiplier afterwards.
    """
    n = wx.size
    norm = np.zeros(n, dtype=F32)
    outside = length(wx, wy) > F32(EDGE_RADIUS)
    for code in np.unique(biomes[~outside]):
        sel = np.flatnonzero((biomes == code) & ~outside)
        x, y, r = wx[sel], wy[sel], rw.take(sel)
        b = Biome(int(code))
        if b in (Biome.MEADOWS, Biome.PLAINS):
            f = heights.meadows(x, y, r, plains=b == Biome.PLAINS)
        elif b == Biome.SWAMP:
            f = heights.marsh(x, y, r)
        elif b == Biome.BLACK_FOREST or (b == Biome.MISTLANDS and pre_generation):
            f = heights.forest(x, y, r)
        elif b == Biome.MISTLANDS:
            f = heights.mistlands(x, y, r)
        elif b == Biome.MOUNTAIN:
            f = heights.mountain(x, y, r)
        elif b == Biome.OCEAN:
            f = heights.base(x, y)
        elif b == Biome.DEEP_NORTH:
            f = (heights.deep_north_pregen(x, y, r, river_pre_dn) if pre_generation
                 else heights.deep_north(x, y, r))
        elif b == Biome.ASHLANDS:
            f = heights.ashlands_pregen(x, y, r) if pre_generation else heights.ashlands(x, y)
        else:
            f = np.zeros(sel.size, dtype=F32)
        norm[sel] = f
    mult = (np.full(n, F32(HEIGHT_MULTIPLIER)) if pre_generation
            else height_multiplier(wx, wy))
    out = _f(_d(norm) * _d(mult) + 0.0)
    out[outside] = EDGE_HEIGHT
    return out
