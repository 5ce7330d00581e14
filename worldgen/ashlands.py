"""``WorldGenerator.GetAshlandsHeight(cheap: false)``: the one height function done in double.

Statement by statement as Valheim-SeedLab's spec 01 (section 3.3) describes it: a ridge band
around a circle centred 1 200 m south of the AshLands ring, a 5-octave cellular fBm, a lava field
(3-octave cellular, a simplex fractal and a double ``DUtils.Fbm``) and a clamp above sea level.
The coordinates stay double (only ``100000f + m_offset3`` is a float sum). The four dead Perlin
calls of the game's ``num11`` are left out: Perlin is pure, so they change nothing.

``Math.Pow`` is the C library's for the exponents 4, 1.5 and 1.4 and ``x * x`` for 2 (both agree
with every ``Pow`` value recorded from the game); see :func:`pow_c`.
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.biomes import F32Array, F64Array, _clamp01, world_angle
from worldgen.fastnoise import cellular, simplex_fractal
from worldgen.perlin import perlin_noise

F32 = np.float32
F64 = np.float64
_SEA_LEVEL = 0.15
_K001 = float(F32(0.01))
_K07 = float(F32(0.7))


def _p(a: F64Array, b: F64Array) -> F64Array:
    return perlin_noise(a.astype(F32), b.astype(F32)).astype(F64)


def _lerp(a: F64Array | float, b: F64Array | float, t: F64Array | float) -> F64Array:
    """``DUtils.Lerp(double, double, double)``: exact ends, ``a * (1 - t) + b * t`` inside."""
    a_, b_, t_ = (np.asarray(v, dtype=F64) for v in (a, b, t))
    out: F64Array = np.where(t_ <= 0.0, a_, np.where(t_ >= 1.0, b_,
                                                      a_ * (1.0 - t_) + b_ * t_))
    return out


def _remap(v: F64Array, in_lo: float, in_hi: float, out_lo: float, out_hi: float) -> F64Array:
    """``DUtils.Remap``: ``Lerp(outLo, outHi, InverseLerp(inLo, inHi, v))``."""
    t = _clamp01((v - in_lo) / (in_hi - in_lo))
    return _lerp(out_lo, out_hi, t)


def _blend_overlay(a: F64Array, b: F64Array) -> F64Array:
    out: F64Array = np.where(a < 0.5, 2.0 * a * b, 1.0 - 2.0 * (1.0 - a) * (1.0 - b))
    return out


def pow_c(v: F64Array, e: float) -> F64Array:
    """``Math.Pow`` through the C library, point by point (numpy may special-case exponents)."""
    flat = np.ascontiguousarray(v, dtype=F64).ravel()
    out = np.fromiter((math.pow(x, e) for x in flat.tolist()), dtype=F64, count=flat.size)
    return out.reshape(np.shape(v))


def mathf_like_smooth_step(lo: float, hi: float, t: F64Array) -> F64Array:
    """``DUtils.MathfLikeSmoothStep``: ``((-2t)t)t + (3t)t``, result rounded to float."""
    t = _clamp01(np.asarray(t, dtype=F64))
    t = ((-2.0 * t) * t) * t + (3.0 * t) * t
    return np.asarray(hi * t + lo * (1.0 - t), dtype=F64).astype(F32).astype(F64)


def _smooth(lo: float, hi: float, t: F64Array) -> F64Array:
    return mathf_like_smooth_step(lo, hi, t)


def _pow(v: F64Array, e: float) -> F64Array:
    return v * v if e == 2.0 else pow_c(v, e)


def fbm_double(x: F64Array, y: F64Array, octaves: int = 3) -> F64Array:
    """``DUtils.Fbm(Vector2, int, double lacunarity 2, double gain 0.5)``: double accumulator."""
    total = np.zeros(np.shape(x), dtype=F64)
    amp = 1.0
    for _ in range(octaves):
        total = total + amp * _p(x, y)
        amp *= 0.5
        x = x * 2.0
        y = y * 2.0
    return total


def ashlands_height(base: F32Array, wx: F32Array, wy: F32Array, off3: int) -> F32Array:
    """Normalised AshLands height at float32 points (``base`` = their ``GetBaseHeight``)."""
    x = wx.astype(F64)
    y = wy.astype(F64)
    a = base.astype(F64)
    wob = world_angle(wx, wy).astype(F64) * 100.0
    r = np.sqrt(x * x + ((y + -4000.0) - (-4000.0 * 0.3)) ** 2) - (12000.0 + wob)
    r = np.abs(r) / 1000.0
    r = 1.0 - _clamp01(r)
    r = _smooth(0.1, 1.0, r)
    r = r * (1.0 - _clamp01(np.abs(x) / 7500.0))
    edge = np.sqrt(x * x + y * y) - 10150.0
    edge = 1.0 - _clamp01(edge / 600.0)
    shift = float(F32(100000.0) + F32(off3))
    x = x + shift
    y = y + shift
    c = np.zeros_like(x)
    amp, freq = 1.0, float(F32(0.33))
    for _ in range(5):
        c = c + amp * _smooth(0.0, 1.0, cellular(x * freq, y * freq))
        freq *= 2.0
        amp *= 0.5
    c = _remap(c, -1.0, 1.0, 0.0, 1.0)
    ridge = _lerp(r, _blend_overlay(r, c), 0.5)
    h = _lerp(a, float(F32(0.15)), 0.75)
    h = h + ridge * 0.5
    h = _lerp(-1.0, h, _smooth(0.0, 1.0, edge))
    lc = np.zeros_like(x)
    amp, freq = 1.0, 8.0
    for _ in range(3):
        lc = lc + amp * cellular(x * freq, y * freq)
        freq *= 2.0
        amp *= 0.5
    lc = _remap(lc, -1.0, 1.0, 0.0, 1.0)
    lc = _clamp01(_pow(lc, 4.0) * 2.0)
    s = simplex_fractal(x * 0.075, y * 0.075)
    s = _remap(s, -1.0, 1.0, 0.0, 1.0)
    s = _pow(s, float(F32(1.4)))
    h = h * s
    f = fbm_double((x * _K001).astype(F32).astype(F64), (y * _K001).astype(F32).astype(F64))
    f = f * _clamp01(_remap(r, 0.0, 0.5, 0.5, 1.0))
    f = _clamp01((f - _K07) / (1.0 - _K07))
    f = _pow(f, 2.0)
    lava = _blend_overlay(f, lc)
    lava = lava * _clamp01(((h - _SEA_LEVEL) - 0.02) / 0.01)
    dip = _p(x * 0.05 + 5124.0, y * 0.05 + 5000.0)
    dip = _pow(dip, 2.0)
    dip = _remap(dip, 0.0, 1.0, _K001, float(F32(0.055)))
    lo = F32(_SEA_LEVEL + _K001)
    v = (h - dip).astype(F32)
    clamped = np.where(v < lo, lo, np.where(v > F32(5000.0), F32(5000.0), v)).astype(F64)
    h = _lerp(h, clamped, lava)
    out: F32Array = h.astype(F32)
    return out
