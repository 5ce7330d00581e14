"""Scalar kernels of the fast path: the per-biome heights and AshLands.

Statement for statement the numpy reference (:mod:`worldgen.terrain`, :mod:`worldgen.ashlands`,
:mod:`worldgen.fastnoise`), per point, in the conventions of :mod:`worldgen.jitcore`.
``GetRiverWeight`` and the river-point grid are in :mod:`worldgen.jitriver`.
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.fastnoise import CELL_X, CELL_Y, F2, G2, G2X2, GRAD_X, GRAD_Y, JITTER
from worldgen.jitcore import (
    base_height,
    clamp01,
    length,
    lerp,
    lerp_step,
    njit,
    pd,
    perlin,
    r32,
    world_angle,
)

_CX = np.ascontiguousarray(CELL_X)
_CY = np.ascontiguousarray(CELL_Y)
_SGX = np.ascontiguousarray(GRAD_X)
_SGY = np.ascontiguousarray(GRAD_Y)


def _w(x: float) -> float:
    return float(np.float32(x))


K01, K02, K03, K04, K05 = _w(0.01), _w(0.02), _w(0.03), _w(0.04), _w(0.05)
K08, K1, K2, K4, K7 = _w(0.08), _w(0.1), _w(0.2), _w(0.4), _w(0.7)
K003, K002, K12, K137 = _w(0.003), _w(0.002), _w(1.2), _w(0.137)
SEA = _w(0.15)
K014, K012, K0139, K0128, K085 = _w(0.14), _w(0.12), _w(0.139), _w(0.128), _w(0.85)
K033, K055, K14 = _w(0.33), _w(0.055), _w(1.4)


@njit
def add_rivers(h: float, weight: float, width: float) -> float:
    if not weight > 0.0:
        return h
    t = lerp_step(20.0, 60.0, width)
    bed = lerp(K014, K012, t)
    mid = lerp(K0139, K0128, t)
    if h > bed:
        h = lerp(h, bed, weight)
    if h > mid:
        h = lerp(h, mid, lerp_step(K085, 1.0, weight))
    return h


@njit
def _detail(u: float, v: float) -> float:
    d = r32(pd(u * K01, v * K01) * pd(u * K02, v * K02))
    return r32(d + pd(u * K05, v * K05) * pd(u * K1, v * K1) * d * 0.5)


@njit
def _fine(h: float, u: float, v: float) -> float:
    h = r32(h + pd(u * K1, v * K1) * K01)
    return r32(h + pd(u * K4, v * K4) * K003)


@njit
def _squash(h: float, base: float, plains: bool) -> float:
    over = r32(h - SEA)
    k = r32(clamp01(base / K4))
    if over > 0.0:
        if plains:
            return r32(h - over * (1.0 - k) * 0.75)
        return r32(h - over * ((1.0 - k) * 0.75))
    return h


@njit
def mathf_smooth(lo: float, hi: float, t: float) -> float:
    t = clamp01(t)
    t = ((-2.0 * t) * t) * t + (3.0 * t) * t
    return r32(hi * t + lo * (1.0 - t))


@njit
def multiplier(wx: float, wy: float) -> float:
    """``(float)(200 * CreateAshlandsGap * CreateDeepNorthGap)``; 1 far from both rings."""
    ga = 1.0
    gd = 1.0
    la = length(wx, r32(wy - 4000.0))
    ld = length(wx, r32(wy + 4000.0))
    if abs(la - 12000.0) < 501.0 or abs(ld - 12000.0) < 501.0:
        a = world_angle(wx, wy) * 100.0
        ga = mathf_smooth(0.0, 1.0, r32(clamp01(abs(la - (12000.0 + a)) / 400.0)))
        gd = mathf_smooth(0.0, 1.0, r32(clamp01(abs(ld - (12000.0 + a)) / 400.0)))
    return r32(200.0 * ga * gd)


@njit
def _hash(seed: int, x: int, y: int) -> int:
    """FastNoise ``Hash2D`` in int64 (low 32 bits kept), then the signed shift."""
    n0 = (seed ^ (1619 * x) ^ (31337 * y)) & 0xFFFFFFFF
    n = (n0 * n0) & 0xFFFFFFFF
    n = (n * n0) & 0xFFFFFFFF
    n = (n * 60493) & 0xFFFFFFFF
    if n >= 0x80000000:
        n -= 0x100000000
    return (n >> 13) ^ n


@njit
def _round(v: float) -> int:
    return int(v + 0.5) if v >= 0 else int(v - 0.5)


@njit
def _floor(v: float) -> int:
    return int(v) if v >= 0 else int(v) - 1


@njit
def cellular(x: float, y: float) -> float:
    x = x * 0.01
    y = y * 0.01
    xr = _round(x)
    yr = _round(y)
    best = 999999.0
    for xi in range(xr - 1, xr + 2):
        for yi in range(yr - 1, yr + 2):
            k = _hash(0, xi, yi) & 255
            vx = (xi - x) + _CX[k] * JITTER
            vy = (yi - y) + _CY[k] * JITTER
            d = vx * vx + vy * vy
            if d < best:
                best = d
    return best


@njit
def _corner(t: float, seed: int, i: int, j: int, xd: float, yd: float) -> float:
    if t < 0:
        return 0.0
    t = t * t
    g = _hash(seed, i, j) & 7
    return float(t * t * (xd * _SGX[g] + yd * _SGY[g]))


@njit
def simplex(seed: int, x: float, y: float) -> float:
    t = (x + y) * F2
    i = _floor(x + t)
    j = _floor(y + t)
    t = (i + j) * G2
    x0 = x - (i - t)
    y0 = y - (j - t)
    i1, j1 = (1, 0) if x0 > y0 else (0, 1)
    x1 = (x0 - i1) + G2
    y1 = (y0 - j1) + G2
    x2 = (x0 - 1.0) + G2X2
    y2 = (y0 - 1.0) + G2X2
    n0 = _corner((0.5 - x0 * x0) - y0 * y0, seed, i, j, x0, y0)
    n1 = _corner((0.5 - x1 * x1) - y1 * y1, seed, i + i1, j + j1, x1, y1)
    n2 = _corner((0.5 - x2 * x2) - y2 * y2, seed, i + 1, j + 1, x2, y2)
    return 50.0 * ((n0 + n1) + n2)


@njit
def _lerp_d(a: float, b: float, t: float) -> float:
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    return a * (1.0 - t) + b * t


@njit
def _remap(v: float, lo: float, hi: float, olo: float, ohi: float) -> float:
    return _lerp_d(olo, ohi, clamp01((v - lo) / (hi - lo)))


@njit
def _overlay(a: float, b: float) -> float:
    return 2.0 * a * b if a < 0.5 else 1.0 - 2.0 * (1.0 - a) * (1.0 - b)


@njit
def ashlands(base: float, wx: float, wy: float, off3: float) -> float:
    """``GetAshlandsHeight(cheap: false)``, normalised."""
    x = wx
    y = wy
    wob = world_angle(wx, wy) * 100.0
    yy = (y + -4000.0) - (-4000.0 * 0.3)
    r = math.sqrt(x * x + yy * yy) - (12000.0 + wob)
    r = 1.0 - clamp01(abs(r) / 1000.0)
    r = mathf_smooth(0.1, 1.0, r)
    r = r * (1.0 - clamp01(abs(x) / 7500.0))
    edge = 1.0 - clamp01((math.sqrt(x * x + y * y) - 10150.0) / 600.0)
    shift = r32(100000.0 + off3)
    x = x + shift
    y = y + shift
    c = 0.0
    amp = 1.0
    freq = K033
    for _ in range(5):
        c = c + amp * mathf_smooth(0.0, 1.0, cellular(x * freq, y * freq))
        freq *= 2.0
        amp *= 0.5
    c = _remap(c, -1.0, 1.0, 0.0, 1.0)
    ridge = _lerp_d(r, _overlay(r, c), 0.5)
    h = _lerp_d(base, SEA, 0.75)
    h = h + ridge * 0.5
    h = _lerp_d(-1.0, h, mathf_smooth(0.0, 1.0, edge))
    lc = 0.0
    amp = 1.0
    freq = 8.0
    for _ in range(3):
        lc = lc + amp * cellular(x * freq, y * freq)
        freq *= 2.0
        amp *= 0.5
    lc = _remap(lc, -1.0, 1.0, 0.0, 1.0)
    lc = clamp01(math.pow(lc, 4.0) * 2.0)
    xs = x * 0.075 * 0.01
    ys = y * 0.075 * 0.01
    s = (simplex(0, xs, ys) + simplex(1, xs * 2.0, ys * 2.0) * 0.5) * (1.0 / 1.5)
    s = math.pow(_remap(s, -1.0, 1.0, 0.0, 1.0), K14)
    h = h * s
    fx = r32(x * K01)
    fy = r32(y * K01)
    f = 0.0
    amp = 1.0
    for _ in range(3):
        f = f + amp * pd(fx, fy)
        amp *= 0.5
        fx *= 2.0
        fy *= 2.0
    f = f * clamp01(_remap(r, 0.0, 0.5, 0.5, 1.0))
    f = clamp01((f - K7) / (1.0 - K7))
    f = f * f
    lava = _overlay(f, lc) * clamp01(((h - 0.15) - 0.02) / 0.01)
    dip = pd(x * 0.05 + 5124.0, y * 0.05 + 5000.0)
    dip = _remap(dip * dip, 0.0, 1.0, K01, K055)
    lo = r32(0.15 + K01)
    v = r32(h - dip)
    clamped = lo if v < lo else (5000.0 if v > 5000.0 else v)
    return r32(_lerp_d(h, clamped, lava))


@njit
def _uv(w: float, off3: float) -> float:
    return r32((w + 100000.0) + off3)


@njit
def biome_norm(b: int, offs: np.ndarray, mmd: float, base: float, wx: float, wy: float,
               rw: np.ndarray, pre: bool, river_pre_dn: bool) -> float:
    """The normalised height of biome ``b`` (rivers from ``rw`` = [weight, width])."""
    off3 = offs[3]
    if b == 256:
        return base
    if b == 32 and not pre:
        return ashlands(base, wx, wy, off3)
    u = _uv(wx, off3)
    v = _uv(wy, off3)
    if b == 2:
        u = r32(wx + 100000.0)
        v = r32(wy + 100000.0)
        n = r32(pd(u * K04, v * K04) * pd(u * K08, v * K08))
        h = r32(K137 + n * K03)
        return _fine(add_rivers(h, rw[0], rw[1]), u, v)
    if b == 1 or b == 16:
        h = r32(base + _detail(u, v) * K1)
        h = _squash(h, base, b == 16)
        return _fine(add_rivers(h, rw[0], rw[1]), u, v)
    if b == 8 or (b == 512 and pre):
        h = r32(base + _detail(u, v) * K1)
        return _fine(add_rivers(h, rw[0], rw[1]), u, v)
    if b == 512:
        m = r32(pd(u * K02 * K7, v * K02 * K7) * pd(u * K04 * K7, v * K04 * K7))
        m = r32(m + pd(u * K03 * K7, v * K03 * K7) * pd(u * K05 * K7, v * K05 * K7) * m * 0.5)
        if m > 0.0:
            m = r32(math.pow(m, 1.5))
        h = add_rivers(r32(base + m * K4), rw[0], rw[1])
        k = r32(clamp01(m * 7.0))
        h = r32(h + pd(u * K1, v * K1) * K03 * k)
        h = r32(h + pd(u * K4, v * K4) * K01 * k)
        smooth = r32(h + pd(u * K4, v * K4) * K002)
        terr = r32(math.ceil(r32(h * 400.0)))
        return lerp(smooth, r32(terr / 400.0), k)
    if b == 4:
        a = base_height(offs[0], offs[1], mmd, r32(wx - 1.0), wy)
        bb = base_height(offs[0], offs[1], mmd, r32(wx + 1.0), wy)
        c = base_height(offs[0], offs[1], mmd, wx, r32(wy - 1.0))
        d = base_height(offs[0], offs[1], mmd, wx, r32(wy + 1.0))
        tilt = r32(abs(r32(bb - a)) + abs(r32(c - d)))
        h = r32(base + r32(base - K4))
        h = r32(h + _detail(u, v) * K2)
        h = _fine(add_rivers(h, rw[0], rw[1]), u, v)
        return r32(h + pd(u * K2, v * K2) * 2.0 * tilt)
    if b == 64 and not pre:
        bb = r32(base + K1)
        h = r32(bb + _detail(u, v) * K1)
        h = _squash(h, bb, False)
        return _fine(add_rivers(h, rw[0], rw[1]), u, v)
    if b == 64:
        h = base if river_pre_dn else r32(base + K1)
        h = r32(h + max(0.0, r32(h - K4)))
        h = r32(h + _detail(u, v) * K2)
        h = add_rivers(r32(h * K12), rw[0], rw[1])
        h = r32(h + perlin(r32(u * K1), r32(v * K1)) * K01)
        return r32(h + perlin(r32(u * K4), r32(v * K4)) * K003)
    if b == 32:
        h = r32(base + _detail(u, v) * K1)
        h = _fine(r32(h + K1), u, v)
        return add_rivers(h, rw[0], rw[1])
    return 0.0
