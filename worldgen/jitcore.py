"""Scalar kernels of the fast path: Perlin, ``GetBaseHeight``, ``GetBiome`` (numba when present).

The same statements as the numpy reference (:mod:`worldgen.biomes`, :mod:`worldgen.perlin`),
written per point so that numba compiles them to straight-line code. Every value is a float64
that holds a float32 exactly; ``_r`` is the ``conv.r4`` of a statement. A single float32
operation is written as the double operation followed by ``_r`` (identical: one rounding).
Without numba the module still imports and the functions run as plain (slow) Python; the tests
hold the compiled kernels to the numpy reference bit for bit. Constants are module globals,
which numba freezes at compile time.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from worldgen.perlin import PERM

try:  # an accelerator, not a requirement (see docs/architecture.md)
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised in images without numba
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

# numba's on-disk cache checks only each function's own file, not the kernels it inlines from
# other modules, so a change to one kernel could leave stale machine code behind. The cache
# folder is therefore keyed by a digest of every kernel source (NUMBA_CACHE_DIR, or
# worldgen/__pycache__/numba, then the digest).
_KERNEL_SOURCES = ("jitcore.py", "jitheight.py", "jitworld.py", "jitrender.py", "jitriver.py",
                   "jitgrid.py", "jitplace.py", "fastworld.py", "fastnoise.py", "perlin.py")


def _kernel_cache_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in _KERNEL_SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            digest.update(f.read())
    root = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(here, "__pycache__", "numba")
    return os.path.join(root, digest.hexdigest()[:16])


if numba is not None:
    numba.config.CACHE_DIR = _kernel_cache_dir()  # type: ignore[attr-defined]

_F = TypeVar("_F", bound=Callable[..., Any])


def njit(fn: _F) -> _F:
    """``numba.njit(cache=True)`` when numba is installed, the function itself otherwise."""
    if numba is None:
        return fn
    return cast(_F, numba.njit(cache=True, nogil=True)(fn))


F32 = np.float32
# Unsigned, like every index derived from it: numba then needs no negative-index wraparound.
_PERM = PERM.astype(np.uint32)
_U1 = np.uint32(1)
_GX = np.array([0.0] * 256)
_GY = np.array([0.0] * 256)


def _fill_grad() -> None:
    from worldgen.perlin import GRAD_X, GRAD_Y

    _GX[:] = GRAD_X.astype(np.float64)
    _GY[:] = GRAD_Y.astype(np.float64)


_fill_grad()


def _w(x: float) -> float:
    return float(F32(x))


NORM_ADD = _w(0.69)
NORM_DIV = _w(1.483)
K002, K003, K005, K01, K09 = _w(0.002), _w(0.003), _w(0.005), _w(0.01), _w(0.9)
K007 = _w(0.07)
CH_X0, CH_Y0, CH_X1, CH_Y1 = _w(0.123), _w(0.15123), _w(0.321), _w(0.231)
CAP_LO, CAP_HI = _w(0.28), _w(0.38)
CAP_DIV = float(F32(F32(0.38) - F32(0.28)))
MASK = _w(0.001)
K04, K06 = _w(0.4), _w(0.6)
K005B, K025 = _w(0.05), _w(0.25)
K002B, K012 = _w(0.02), _w(0.12)
KM02 = _w(-0.2)


@njit
def r32(v: float) -> float:
    """``conv.r4`` then widen: the float32 nearest ``v``, as a float64."""
    return np.float64(np.float32(v))


_ONE = np.float32(1.0)
_F6, _F15, _F10 = np.float32(6.0), np.float32(15.0), np.float32(10.0)
_ADD32, _DIV32 = np.float32(NORM_ADD), np.float32(NORM_DIV)
_GX32 = _GX.astype(np.float32)
_GY32 = _GY.astype(np.float32)


@njit
def _fade(t: np.float32) -> np.float32:
    a = ((t * _F6 - _F15) * t + _F10) * ((t * t) * t)
    return a


@njit
def perlin(x: float, y: float) -> float:
    """``Mathf.PerlinNoise`` of two float32 values (the reference: :mod:`worldgen.perlin`).

    Written in float32 arithmetic: every operation is a single IEEE float32 operation, which
    is exactly what the reference computes (numba keeps float32 op float32 in float32).
    """
    xa = np.float32(abs(x))
    ya = np.float32(abs(y))
    ix = int(xa)
    iy = int(ya)
    cx = np.uint32(ix & 255)
    cy = np.uint32(iy & 255)
    fx = xa - np.float32(ix)
    fy = ya - np.float32(iy)
    u = _fade(min(_ONE, fx))
    v = _fade(min(_ONE, fy))
    fx1 = fx - _ONE
    fy1 = fy - _ONE
    a = _PERM[cx] + cy
    b = _PERM[cx + _U1] + cy
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
def pd(a: float, b: float) -> float:
    """``DUtils.PerlinNoise(double, double)``: both inputs rounded to float first."""
    return perlin(r32(a), r32(b))


@njit
def clamp01(v: float) -> float:
    if v > 1.0:
        return 1.0
    if v < 0.0:
        return 0.0
    return v


@njit
def length(x: float, y: float) -> float:
    """``DUtils.Length(float, float)``: double squares, sqrt, float result."""
    return r32(math.sqrt(x * x + y * y))


@njit
def lerp_step(lo: float, hi: float, v: float) -> float:
    """``DUtils.LerpStep(float, float, float)``."""
    return r32(clamp01((v - lo) / (hi - lo)))


@njit
def lerp(a: float, b: float, t: float) -> float:
    """``DUtils.Lerp(float, float, float)``."""
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    return r32(a * (1.0 - t) + b * t)


@njit
def smooth_step(lo: float, hi: float, x: float) -> float:
    t = r32(clamp01((x - lo) / (hi - lo)))
    return r32(t * t * (3.0 - 2.0 * t))


@njit
def world_angle(wx: float, wy: float) -> float:
    a = r32(math.atan2(wx, wy))
    b = r32(a * 20.0)
    return r32(math.sin(b))


@njit
def base_height(off0: float, off1: float, mmd: float, wx: float, wy: float) -> float:
    """``GetBaseHeight(wx, wy, menuTerrain: false)``, ending with ``h * 1f + 0f``."""
    dist = length(wx, wy)
    x = wx + (100000.0 + off0)
    y = wy + (100000.0 + off1)
    h = r32(pd(x * K002 * 0.5, y * K002 * 0.5) * pd(x * K003 * 0.5, y * K003 * 0.5) * 1.0)
    h = r32(h + pd(x * K002 * 1.0, y * K002 * 1.0) * pd(x * K003 * 1.0, y * K003 * 1.0) * h
            * K09)
    h = r32(h + pd(x * K005 * 1.0, y * K005 * 1.0) * pd(x * K01 * 1.0, y * K01 * 1.0) * 0.5
            * h)
    h = r32(h - K007)
    n10 = pd(x * K002 * 0.25 + CH_X0, y * K002 * 0.25 + CH_Y0)
    n11 = pd(x * K002 * 0.25 + CH_X1, y * K002 * 0.25 + CH_Y1)
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
def _mask(off: float, wx: float, wy: float) -> float:
    return pd(r32(off + wx) * MASK, r32(off + wy) * MASK)


@njit
def biome(offs: np.ndarray, consts: np.ndarray, wx: float, wy: float, base: float) -> int:
    """``GetBiome(wx, wy)`` given its base height. ``offs`` = off0..off4 (float64),
    ``consts`` = (min mountain distance, min darkland noise, max marsh distance)."""
    dist = length(wx, wy)
    have_a = False
    a64 = 0.0
    # The wobble only matters within 100 m of a wobbled radius; compute it there only.
    for radius in (600.0, 3000.0, 5000.0, 6000.0):
        if abs(dist - radius) <= 101.0:
            have_a = True
    ash_len = length(wx, r32(wy - 4000.0))
    dn_y = r32(wy + 4000.0)
    dn_mag = r32(math.sqrt(r32(r32(wx * wx) + r32(dn_y * dn_y))))
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
    if (_mask(offs[0], wx, wy) > K06 and dist > 2000.0 and dist < consts[2]
            and base > K005B and base < K025):
        return 2
    if (_mask(offs[4], wx, wy) > consts[1] and dist > r32(6000.0 + a32)
            and dist < 10000.0):
        return 512
    if _mask(offs[1], wx, wy) > K04 and dist > r32(3000.0 + a32) and dist < 8000.0:
        return 16
    if _mask(offs[2], wx, wy) > K04 and dist > r32(600.0 + a32) and dist < 6000.0:
        return 8
    if dist > r32(5000.0 + a32):
        return 8
    return 1
