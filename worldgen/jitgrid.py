"""``GetHeight`` on a tensor grid with the per-row and per-column Perlin terms precomputed.

On a grid every ``PerlinNoise(x * k, y * k)`` of ``GetBaseHeight`` and of ``GetBiome``'s masks
takes one argument from the column and one from the row, so each argument's lattice cell, its
fraction and its fade (the first half of ``Mathf.PerlinNoise``) are computed once per column
and once per row; the second half (hashing, gradients, interpolation) stays per point. Every
operation is the one :func:`worldgen.jitcore.perlin` does, in the same float32 order, so the
heights are bit-identical to :func:`worldgen.jitworld.heights_grid` (the tests compare them).
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.jitcore import (
    _ADD32,
    _DIV32,
    _GX32,
    _GY32,
    _ONE,
    _PERM,
    _U1,
    CAP_DIV,
    CAP_HI,
    CAP_LO,
    CH_X0,
    CH_X1,
    CH_Y0,
    CH_Y1,
    K002,
    K002B,
    K003,
    K005,
    K005B,
    K007,
    K01,
    K012,
    K025,
    K04,
    K06,
    K09,
    KM02,
    MASK,
    _fade,
    clamp01,
    length,
    lerp,
    lerp_step,
    njit,
    r32,
    smooth_step,
    world_angle,
)
from worldgen.jitheight import K01 as KH01
from worldgen.jitheight import K02 as KH02
from worldgen.jitheight import K03 as KH03
from worldgen.jitheight import K04 as KH04
from worldgen.jitheight import K05 as KH05
from worldgen.jitheight import K08 as KH08
from worldgen.jitheight import K1, K2, K4, K137, _squash, add_rivers, biome_norm, multiplier
from worldgen.jitheight import K7 as KH7
from worldgen.jitriver import river_weight

# Axes 0-7: the 8 base-height noises; 8-11: the masks of off0, off4, off1, off2; 12-17: the
# detail noises of GetBiomeHeight at 0.01, 0.02, 0.05, 0.1, 0.4 and 0.2 of u = w + 100000 + off3;
# 18-25 and 26-33: the base-height noises at w - 1 and w + 1 (the Mountain's tilt); 34-37: the
# Mistlands' noises at 0.02, 0.04, 0.03, 0.05 times 0.7 of u; 38-41: the Swamp's at 0.04, 0.08,
# 0.1 and 0.4 of w + 100000 (no off3 there).
NAX = 42
_MINUS, _PLUS, _MIST, _SWAMP = 18, 26, 34, 38
# Squared distances (double) safely inside 12000 - 101 - 49 m, or outside 12000 + 501 + 99 m
# of the AshLands / DeepNorth rings: there the rings' tests cannot pass, whatever the rounding.
_NEAR_SQ = 11850.0 * 11850.0
_GAP_IN_SQ = 11400.0 * 11400.0
_GAP_OUT_SQ = 12600.0 * 12600.0


@njit
def _axis(a: float, k: int, j: int, ci: np.ndarray, cf: np.ndarray, cu: np.ndarray) -> None:
    """The per-axis half of ``perlin(r32(a), .)``: cell (and the permutation's entries for it
    and the next cell), fraction, fade."""
    xa = np.float32(abs(r32(a)))
    ix = int(xa)
    c = np.uint32(ix & 255)
    ci[k, j, 0] = c
    ci[k, j, 1] = _PERM[c]
    ci[k, j, 2] = _PERM[c + _U1]
    fx = xa - np.float32(ix)
    cf[k, j] = fx
    cu[k, j] = _fade(min(_ONE, fx))


@njit
def _axes(w: float, o: np.ndarray, j: int, ci: np.ndarray, cf: np.ndarray,
          cu: np.ndarray) -> None:
    """All axis terms of one coordinate ``w``; ``o`` = (base offset, off0, off4, off1, off2)
    of this axis, CH_X0/CH_X1 (or the Y pair) in ``o[5]``, ``o[6]`` and off3 in ``o[7]``."""
    _base_axes(w, o, 0, j, ci, cf, cu)
    _base_axes(r32(w - 1.0), o, _MINUS, j, ci, cf, cu)
    _base_axes(r32(w + 1.0), o, _PLUS, j, ci, cf, cu)
    for m in range(4):
        _axis(r32(o[1 + m] + w) * MASK, 8 + m, j, ci, cf, cu)
    u = r32((w + 100000.0) + o[7])
    _axis(u * KH01, 12, j, ci, cf, cu)
    _axis(u * KH02, 13, j, ci, cf, cu)
    _axis(u * KH05, 14, j, ci, cf, cu)
    _axis(u * K1, 15, j, ci, cf, cu)
    _axis(u * K4, 16, j, ci, cf, cu)
    _axis(u * K2, 17, j, ci, cf, cu)
    _axis(u * KH02 * KH7, _MIST, j, ci, cf, cu)
    _axis(u * KH04 * KH7, _MIST + 1, j, ci, cf, cu)
    _axis(u * KH03 * KH7, _MIST + 2, j, ci, cf, cu)
    _axis(u * KH05 * KH7, _MIST + 3, j, ci, cf, cu)
    us = r32(w + 100000.0)
    _axis(us * KH04, _SWAMP, j, ci, cf, cu)
    _axis(us * KH08, _SWAMP + 1, j, ci, cf, cu)
    _axis(us * K1, _SWAMP + 2, j, ci, cf, cu)
    _axis(us * K4, _SWAMP + 3, j, ci, cf, cu)


@njit
def _base_axes(w: float, o: np.ndarray, k0: int, j: int, ci: np.ndarray, cf: np.ndarray,
               cu: np.ndarray) -> None:
    """The 8 base-height axes of coordinate ``w`` into axes ``k0`` to ``k0 + 7``."""
    x = w + (100000.0 + o[0])
    _axis(x * K002 * 0.5, k0, j, ci, cf, cu)
    _axis(x * K003 * 0.5, k0 + 1, j, ci, cf, cu)
    _axis(x * K002 * 1.0, k0 + 2, j, ci, cf, cu)
    _axis(x * K003 * 1.0, k0 + 3, j, ci, cf, cu)
    _axis(x * K005 * 1.0, k0 + 4, j, ci, cf, cu)
    _axis(x * K01 * 1.0, k0 + 5, j, ci, cf, cu)
    _axis(x * K002 * 0.25 + o[5], k0 + 6, j, ci, cf, cu)
    _axis(x * K002 * 0.25 + o[6], k0 + 7, j, ci, cf, cu)


@njit
def _mix(k: int, j: int, xi: np.ndarray, xf: np.ndarray, xu: np.ndarray, yi: np.ndarray,
         yf: np.ndarray, yv: np.ndarray) -> float:
    """The per-point half of ``perlin``: column ``j`` of axis ``k`` with the row's axis ``k``."""
    return _mix2(k, k, j, xi, xf, xu, yi, yf, yv)


@njit
def _mix2(k: int, ky: int, j: int, xi: np.ndarray, xf: np.ndarray, xu: np.ndarray,
          yi: np.ndarray, yf: np.ndarray, yv: np.ndarray) -> float:
    """The per-point half of ``perlin``: column ``j`` of axis ``k`` with the row's ``ky``."""
    cy = yi[ky, 0, 0]
    fx = xf[k, j]
    fy = yf[ky, 0]
    u = xu[k, j]
    v = yv[ky, 0]
    fx1 = fx - _ONE
    fy1 = fy - _ONE
    a = xi[k, j, 1] + cy
    b = xi[k, j, 2] + cy
    h00 = _PERM[_PERM[a]]
    h01 = _PERM[_PERM[a + _U1]]
    h10 = _PERM[_PERM[b]]
    h11 = _PERM[_PERM[b + _U1]]
    g00 = _GX32[h00] * fx + _GY32[h00] * fy
    g10 = _GX32[h10] * fx1 + _GY32[h10] * fy
    g01 = _GX32[h01] * fx + _GY32[h01] * fy1
    g11 = _GX32[h11] * fx1 + _GY32[h11] * fy1
    l1 = (g11 - g01) * u + g01
    l0 = (g10 - g00) * u + g00
    n = (l1 - l0) * v + l0
    return np.float64((n + _ADD32) / _DIV32)


@njit
def _base(dist: float, mmd: float, j: int, kx: int, ky: int, xi: np.ndarray, xf: np.ndarray,
          xu: np.ndarray, yi: np.ndarray, yf: np.ndarray, yv: np.ndarray) -> float:
    """:func:`worldgen.jitcore.base_height` with the precomputed axes (the column's base axes
    from ``kx``, the row's from ``ky``: 0, or the tilt's -1 m / +1 m sets)."""
    h = r32(_mix2(kx, ky, j, xi, xf, xu, yi, yf, yv)
            * _mix2(kx + 1, ky + 1, j, xi, xf, xu, yi, yf, yv) * 1.0)
    h = r32(h + _mix2(kx + 2, ky + 2, j, xi, xf, xu, yi, yf, yv)
            * _mix2(kx + 3, ky + 3, j, xi, xf, xu, yi, yf, yv) * h * K09)
    h = r32(h + _mix2(kx + 4, ky + 4, j, xi, xf, xu, yi, yf, yv)
            * _mix2(kx + 5, ky + 5, j, xi, xf, xu, yi, yf, yv) * 0.5 * h)
    h = r32(h - K007)
    n10 = _mix2(kx + 6, ky + 6, j, xi, xf, xu, yi, yf, yv)
    n11 = _mix2(kx + 7, ky + 7, j, xi, xf, xu, yi, yf, yv)
    v = abs(r32(n10 - n11))
    c = r32(1.0 - lerp_step(K002B, K012, v))
    c = r32(c * smooth_step(744.0, 1000.0, dist))
    h = r32(h * (1.0 - c))
    if dist > 10000.0:
        h = lerp(h, KM02, lerp_step(10000.0, 10500.0, dist))
        if dist > 10490.0:
            t = r32(r32(dist - 10490.0) / 10.0)
            t = 1.0 if t > 1.0 else (0.0 if t < 0.0 else t)
            h = lerp(h, -2.0, t)
        return h + 0.0
    if dist < mmd and h > CAP_LO:
        t3 = r32(clamp01((h - CAP_LO) / CAP_DIV))
        h = lerp(lerp(CAP_LO, CAP_HI, t3), h, lerp_step(r32(mmd - 400.0), mmd, dist))
    return h + 0.0


@njit
def _biome(consts: np.ndarray, wx: float, wy: float, dist: float, base: float, j: int,
           xi: np.ndarray, xf: np.ndarray, xu: np.ndarray, yi: np.ndarray, yf: np.ndarray,
           yv: np.ndarray) -> int:
    """:func:`worldgen.jitcore.biome` with the masks from the precomputed axes; ``dist`` is
    ``length(wx, wy)``. The rings' square roots are taken only near the rings (the tests
    against 12000 m +- 101 m cannot pass elsewhere; ``_NEAR_SQ`` leaves room for rounding)."""
    have_a = False
    a64 = 0.0
    for radius in (600.0, 3000.0, 5000.0, 6000.0):
        if abs(dist - radius) <= 101.0:
            have_a = True
    ash_y = r32(wy - 4000.0)
    ash_len = 0.0
    if wx * wx + ash_y * ash_y >= _NEAR_SQ:
        ash_len = length(wx, ash_y)
    dn_y = r32(wy + 4000.0)
    dn_sq = r32(r32(wx * wx) + r32(dn_y * dn_y))
    dn_mag = 0.0
    if dn_sq >= _NEAR_SQ:
        dn_mag = r32(math.sqrt(dn_sq))
    if abs(ash_len - 12000.0) <= 101.0 or abs(dn_mag - 12000.0) <= 101.0:
        have_a = True
    if have_a:
        a64 = world_angle(wx, wy) * 100.0
    a32 = r32(a64)
    if ash_len > 12000.0 + a64:
        return 32
    if base <= K002B:
        return 256
    if dn_mag > r32(12000.0 + a32):
        return 64
    if base > K04:
        return 4
    if (_mix(8, j, xi, xf, xu, yi, yf, yv) > K06 and dist > 2000.0 and dist < consts[2]
            and base > K005B and base < K025):
        return 2
    if (_mix(9, j, xi, xf, xu, yi, yf, yv) > consts[1] and dist > r32(6000.0 + a32)
            and dist < 10000.0):
        return 512
    if _mix(10, j, xi, xf, xu, yi, yf, yv) > K04 and dist > r32(3000.0 + a32) and dist < 8000.0:
        return 16
    if _mix(11, j, xi, xf, xu, yi, yf, yv) > K04 and dist > r32(600.0 + a32) and dist < 6000.0:
        return 8
    if dist > r32(5000.0 + a32):
        return 8
    return 1


@njit
def _detail(j: int, xi: np.ndarray, xf: np.ndarray, xu: np.ndarray, yi: np.ndarray,
            yf: np.ndarray, yv: np.ndarray) -> float:
    d = r32(_mix(12, j, xi, xf, xu, yi, yf, yv) * _mix(13, j, xi, xf, xu, yi, yf, yv))
    return r32(d + _mix(14, j, xi, xf, xu, yi, yf, yv) * _mix(15, j, xi, xf, xu, yi, yf, yv)
               * d * 0.5)


@njit
def _fine(h: float, j: int, xi: np.ndarray, xf: np.ndarray, xu: np.ndarray, yi: np.ndarray,
          yf: np.ndarray, yv: np.ndarray) -> float:
    h = r32(h + _mix(15, j, xi, xf, xu, yi, yf, yv) * KH01)
    return r32(h + _mix(16, j, xi, xf, xu, yi, yf, yv) * K003)


@njit
def _norm(b: int, offs: np.ndarray, mmd: float, base: float, wx: float, wy: float,
          rw: np.ndarray, j: int, xi: np.ndarray, xf: np.ndarray, xu: np.ndarray,
          yi: np.ndarray, yf: np.ndarray, yv: np.ndarray) -> float:
    """:func:`worldgen.jitheight.biome_norm` (not pre-generation) of every biome but the
    AshLands (32) and the Ocean (256), with the precomputed axes."""
    if b == 4:
        xm = r32(wx - 1.0)
        xp = r32(wx + 1.0)
        ym = r32(wy - 1.0)
        yp = r32(wy + 1.0)
        a = _base(length(xm, wy), mmd, j, _MINUS, 0, xi, xf, xu, yi, yf, yv)
        bb = _base(length(xp, wy), mmd, j, _PLUS, 0, xi, xf, xu, yi, yf, yv)
        c = _base(length(wx, ym), mmd, j, 0, _MINUS, xi, xf, xu, yi, yf, yv)
        d = _base(length(wx, yp), mmd, j, 0, _PLUS, xi, xf, xu, yi, yf, yv)
        tilt = r32(abs(r32(bb - a)) + abs(r32(c - d)))
        h = r32(base + r32(base - K4))
        h = r32(h + _detail(j, xi, xf, xu, yi, yf, yv) * K2)
        h = _fine(add_rivers(h, rw[0], rw[1]), j, xi, xf, xu, yi, yf, yv)
        return r32(h + _mix(17, j, xi, xf, xu, yi, yf, yv) * 2.0 * tilt)
    if b == 64:
        bb = r32(base + K1)
        h = r32(bb + _detail(j, xi, xf, xu, yi, yf, yv) * K1)
        h = _squash(h, bb, False)
        return _fine(add_rivers(h, rw[0], rw[1]), j, xi, xf, xu, yi, yf, yv)
    if b == 512:
        m = r32(_mix(_MIST, j, xi, xf, xu, yi, yf, yv)
                * _mix(_MIST + 1, j, xi, xf, xu, yi, yf, yv))
        m = r32(m + _mix(_MIST + 2, j, xi, xf, xu, yi, yf, yv)
                * _mix(_MIST + 3, j, xi, xf, xu, yi, yf, yv) * m * 0.5)
        if m > 0.0:
            m = r32(math.pow(m, 1.5))
        h = add_rivers(r32(base + m * K4), rw[0], rw[1])
        k = r32(clamp01(m * 7.0))
        h = r32(h + _mix(15, j, xi, xf, xu, yi, yf, yv) * KH03 * k)
        p4 = _mix(16, j, xi, xf, xu, yi, yf, yv)
        h = r32(h + p4 * KH01 * k)
        smooth = r32(h + p4 * K002)
        terr = r32(math.ceil(r32(h * 400.0)))
        return lerp(smooth, r32(terr / 400.0), k)
    if b == 2:
        n = r32(_mix(_SWAMP, j, xi, xf, xu, yi, yf, yv)
                * _mix(_SWAMP + 1, j, xi, xf, xu, yi, yf, yv))
        h = add_rivers(r32(K137 + n * KH03), rw[0], rw[1])
        h = r32(h + _mix(_SWAMP + 2, j, xi, xf, xu, yi, yf, yv) * KH01)
        return r32(h + _mix(_SWAMP + 3, j, xi, xf, xu, yi, yf, yv) * K003)
    h = r32(base + _detail(j, xi, xf, xu, yi, yf, yv) * K1)
    if b != 8:
        h = _squash(h, base, b == 16)
    return _fine(add_rivers(h, rw[0], rw[1]), j, xi, xf, xu, yi, yf, yv)


@njit
def _multiplier(wx: float, wy: float) -> float:
    """:func:`worldgen.jitheight.multiplier`, skipping its two square roots where both gap
    rings are out of reach (200, as it returns there)."""
    ay = r32(wy - 4000.0)
    dy = r32(wy + 4000.0)
    la = wx * wx + ay * ay
    ld = wx * wx + dy * dy
    if ((la < _GAP_IN_SQ or la > _GAP_OUT_SQ) and (ld < _GAP_IN_SQ or ld > _GAP_OUT_SQ)):
        return 200.0
    return multiplier(wx, wy)


@njit
def heights_grid_sep(offs: np.ndarray, consts: np.ndarray, meta: np.ndarray,
                     idx: np.ndarray, pts: np.ndarray, state: np.ndarray, xs: np.ndarray,
                     zs: np.ndarray, out: np.ndarray) -> None:
    """``GetHeight`` on the grid ``zs`` (rows) x ``xs`` (columns), row-major order, as
    :func:`worldgen.jitworld.point_height` per point (``state`` advances query by query)."""
    nx = xs.size
    ox = np.array([offs[0], offs[0], offs[4], offs[1], offs[2], CH_X0, CH_X1, offs[3]])
    oy = np.array([offs[1], offs[0], offs[4], offs[1], offs[2], CH_Y0, CH_Y1, offs[3]])
    xi = np.empty((NAX, nx, 3), dtype=np.uint32)
    xf = np.empty((NAX, nx), dtype=np.float32)
    xu = np.empty((NAX, nx), dtype=np.float32)
    yi = np.empty((NAX, 1, 3), dtype=np.uint32)
    yf = np.empty((NAX, 1), dtype=np.float32)
    yv = np.empty((NAX, 1), dtype=np.float32)
    for j in range(nx):
        _axes(np.float64(xs[j]), ox, j, xi, xf, xu)
    mmd = consts[0]
    rw = np.zeros(2)
    for i in range(zs.size):
        wy = np.float64(zs[i])
        _axes(wy, oy, 0, yi, yf, yv)
        for j in range(nx):
            wx = np.float64(xs[j])
            dist = length(wx, wy)
            if dist > 10500.0:
                out[i, j] = -400.0
                continue
            base = _base(dist, mmd, j, 0, 0, xi, xf, xu, yi, yf, yv)
            b = _biome(consts, wx, wy, dist, base, j, xi, xf, xu, yi, yf, yv)
            rw[0] = 0.0
            rw[1] = 0.0
            if b != 256 and b != 32:
                river_weight(meta, idx, pts, state, wx, wy, rw)
            if b == 32 or b == 256:
                f = biome_norm(b, offs, mmd, base, wx, wy, rw, False, True)
            else:
                f = _norm(b, offs, mmd, base, wx, wy, rw, j, xi, xf, xu, yi, yf, yv)
            out[i, j] = r32(f * _multiplier(wx, wy) + 0.0)
