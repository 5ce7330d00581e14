"""Fast-path drivers: ``GetHeight`` over points, ``PlaceStreams``' 3000 attempts, in one loop.

Per point exactly what :mod:`worldgen.terrain` computes (``GetBiome``, then ``GetBiomeHeight``),
with the ``GetRiverWeight`` cache advanced query by query, so the order semantics come for free.
``UnityEngine.Random`` is the xorshift128 of :mod:`worldgen.unity_random` on a 4-word state array.
``ctx`` bundles the world: ``offs`` (off0..off4 as float64), ``consts`` (min mountain distance,
min darkland noise, max marsh distance); ``meta``, ``idx``, ``pts`` are the river-point grid and
``state`` its ``GetRiverWeight`` cache (see :mod:`worldgen.jitriver`).
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.jitcore import base_height, biome, length, njit, r32
from worldgen.jitheight import biome_norm, multiplier
from worldgen.jitriver import river_weight

_VALUE_SCALE = float(np.float32(1.1920930376163765e-07))
_TWO_PI = float(np.float32(6.2831854820251465))
_M = 0xFFFFFFFF


@njit
def next_uint(s: np.ndarray) -> int:
    """One xorshift128 step on ``s`` (four uint32 words held in int64)."""
    x0 = s[0]
    x3 = s[3]
    t = ((x0 << 11) & _M) ^ x0
    s[0] = s[1]
    s[1] = s[2]
    s[2] = x3
    w = x3 ^ t ^ (((x3 >> 11) ^ t) >> 8)
    s[3] = w & _M
    return int(s[3])


@njit
def range_float(s: np.ndarray, lo: float, hi: float) -> float:
    """``Random.Range(float, float)``: ``(1 - f) * max + f * min`` in float32."""
    f = r32(np.float64(next_uint(s) & 0x7FFFFF) * _VALUE_SCALE)
    return r32(r32(r32(1.0 - f) * hi) + r32(f * lo))


@njit
def point_height(offs: np.ndarray, consts: np.ndarray, meta: np.ndarray, idx: np.ndarray,
                 pts: np.ndarray, state: np.ndarray, wx: float, wy: float,
                 pre: bool, river_pre_dn: bool, rw: np.ndarray) -> float:
    """``GetHeight`` (``pre`` False) or ``GetPregenerationHeight`` of one point, metres."""
    dist = length(wx, wy)
    mmd = consts[0]
    if dist > 10500.0:
        return -400.0
    base = base_height(offs[0], offs[1], mmd, wx, wy)
    b = biome(offs, consts, wx, wy, base)
    rw[0] = 0.0
    rw[1] = 0.0
    if b != 256 and (b != 32 or pre):
        river_weight(meta, idx, pts, state, wx, wy, rw)
    f = biome_norm(b, offs, mmd, base, wx, wy, rw, pre, river_pre_dn)
    mult = 200.0 if pre else multiplier(wx, wy)
    return r32(f * mult + 0.0)


@njit
def heights_of(offs: np.ndarray, consts: np.ndarray, meta: np.ndarray, idx: np.ndarray,
               pts: np.ndarray, state: np.ndarray, xs: np.ndarray,
               zs: np.ndarray, out: np.ndarray) -> None:
    """``GetHeight`` of flat points in order (``state`` advances as the game's cache does)."""
    rw = np.zeros(2)
    for i in range(xs.size):
        out[i] = point_height(offs, consts, meta, idx, pts, state, np.float64(xs[i]),
                              np.float64(zs[i]), False, True, rw)


@njit
def river_weights(meta: np.ndarray, idx: np.ndarray, pts: np.ndarray, state: np.ndarray,
                  xs: np.ndarray, zs: np.ndarray, out: np.ndarray) -> None:
    """``GetRiverWeight`` of flat points in order: ``out[i] = (weight, width)``."""
    rw = np.zeros(2)
    for i in range(xs.size):
        river_weight(meta, idx, pts, state, np.float64(xs[i]), np.float64(zs[i]), rw)
        out[i, 0] = rw[0]
        out[i, 1] = rw[1]


@njit
def heights_grid(offs: np.ndarray, consts: np.ndarray, meta: np.ndarray, idx: np.ndarray,
                 pts: np.ndarray, state: np.ndarray, xs: np.ndarray,
                 zs: np.ndarray, out: np.ndarray) -> None:
    """``GetHeight`` on the grid ``zs`` (rows) x ``xs`` (columns), row-major order."""
    rw = np.zeros(2)
    for i in range(zs.size):
        z = np.float64(zs[i])
        for j in range(xs.size):
            out[i, j] = point_height(offs, consts, meta, idx, pts, state,
                                     np.float64(xs[j]), z, False, True, rw)


@njit
def _pregen(offs: np.ndarray, consts: np.ndarray, meta: np.ndarray, idx: np.ndarray,
            pts: np.ndarray, state: np.ndarray, x: float, y: float,
            rpg: bool, rw: np.ndarray) -> float:
    return point_height(offs, consts, meta, idx, pts, state, x, y, True, rpg, rw)


@njit
def place_streams(offs: np.ndarray, consts: np.ndarray, meta: np.ndarray, idx: np.ndarray,
                  pts: np.ndarray, state: np.ndarray, rng: np.ndarray,
                  rpg: bool, attempts: int, out: np.ndarray) -> int:
    """``PlaceStreams``' loop: the streams found, as rows (p0x, p0y, p1x, p1y, cx, cy).

    ``rng`` is the stream's random state (seeded by the caller), advanced in place.
    """
    rw = np.zeros(2)
    n = 0
    step = r32((200.0 - 80.0) / 100.0)
    for _ in range(attempts):
        found = False
        sx = 0.0
        sy = 0.0
        for _t in range(100):
            x = range_float(rng, -10000.0, 10000.0)
            y = range_float(rng, -10000.0, 10000.0)
            h = _pregen(offs, consts, meta, idx, pts, state, x, y, rpg, rw)
            if h > 26.0 and h < 31.0:
                found = True
                sx = x
                sy = y
                break
        if not found:
            continue
        found = False
        ex = 0.0
        ey = 0.0
        cur = 200.0
        for _t in range(100):
            cur = r32(cur - step)
            ang = range_float(rng, 0.0, _TWO_PI)
            qx = r32(sx + r32(r32(math.sin(ang)) * cur))
            qy = r32(sy + r32(r32(math.cos(ang)) * cur))
            h = _pregen(offs, consts, meta, idx, pts, state, qx, qy, rpg, rw)
            if h > 36.0 and h < 44.0:
                found = True
                ex = qx
                ey = qy
                break
        if not found:
            continue
        cx = r32(r32(sx + ex) * 0.5)
        cy = r32(r32(sy + ey) * 0.5)
        mh = _pregen(offs, consts, meta, idx, pts, state, cx, cy, rpg, rw)
        if not (mh < 26.0) and not (mh > 44.0):
            out[n, 0] = sx
            out[n, 1] = sy
            out[n, 2] = ex
            out[n, 3] = ey
            out[n, 4] = cx
            out[n, 5] = cy
            n += 1
    return n
