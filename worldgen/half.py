"""IEEE half floats as Valheim's minimap height cache stores them (ties away from zero).

``Mathf.FloatToHalf`` in Unity 6000.0 rounds to nearest with ties *away from zero* (numpy's
``float16`` rounds ties to even), so heights compared with the game's cached minimap are
converted here. Checked against 1 635 values recorded from the game.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def float_to_half(values: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """Half-float bit patterns (uint16) of float32 ``values``; NaN stays NaN, overflow is inf."""
    f = np.ascontiguousarray(values, dtype=np.float32)
    bits = f.view(np.uint32).astype(np.int64)
    sign = (bits >> 16) & 0x8000
    exp = (bits >> 23) & 0xFF
    mant = bits & 0x7FFFFF
    out = np.zeros(f.shape, dtype=np.int64)
    nan = (exp == 0xFF) & (mant != 0)
    e = exp - 127 + 15
    # Normal halves: keep 10 mantissa bits, add half an ulp (ties go away from zero).
    normal = (e >= 1) & (exp != 0xFF)
    full = (e << 10) + (mant >> 13)
    rounded = full + ((mant >> 12) & 1)
    out = np.where(normal, np.minimum(rounded, 0x7C00), out)
    # Subnormal halves (and values that round up into the smallest normal).
    shift = 14 - e  # for e <= 0: mantissa with its hidden bit, shifted right by 14 - e
    sub = (e <= 0) & (e >= -10)
    m = mant | 0x800000
    s = np.clip(shift, 0, 63)
    out = np.where(sub, ((m >> np.clip(s - 1, 0, 63)) + 1) >> 1, out)
    out = np.where((exp == 0xFF) & (mant == 0), 0x7C00, out)
    out = np.where(nan, 0x7D00 | (mant >> 13), out)  # the one recorded NaN: FFC00000 -> FF00
    out = out | sign
    return out.astype(np.uint16)


def half_to_float(halves: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``Mathf.HalfToFloat``: exact (every half is a float32)."""
    return np.ascontiguousarray(halves, dtype=np.uint16).view(np.float16).astype(np.float32)


def round_half(values: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``HalfToFloat(FloatToHalf(v))``: what the game's minimap height cache gives back."""
    return half_to_float(float_to_half(values))
