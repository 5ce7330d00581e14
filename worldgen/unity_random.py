"""``UnityEngine.Random`` as Valheim's world generator uses it, and the seven world offsets.

Unity's generator is native code; this is the transcription of ``UnityPlayer.dll`` (Unity
6000.0.75f1) published in Valheim-SeedLab's spec 03 and checked there against a real world: a
xorshift128 with shifts (11, 8, 19) whose four words are seeded ``s0 = seed``,
``s[i+1] = s[i] * 1812433253 + 1``. The int ``Range`` is an unsigned modulo (maximum exclusive,
no draw when ``min == max``); the float ``Range`` always draws and interpolates *backwards*,
``(1 - f) * max + f * min`` in float32. Getting any of this wrong moves every biome, because the
offsets below are the only place the seed enters biome generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MASK = 0xFFFFFFFF
_INIT_MULTIPLIER = 1812433253
_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1
# 0x34000001 == 1f / 8388607f: Random.value covers [0, 1] inclusive in steps of 1/8388607.
_VALUE_SCALE = np.float32(1.1920930376163765e-07)


def _to_int32(value: int) -> int:
    value &= _MASK
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


class UnityRandom:
    """One ``UnityEngine.Random`` stream (the game has a single global one; we keep instances)."""

    __slots__ = ("_s0", "_s1", "_s2", "_s3")

    def __init__(self, seed: int = 0) -> None:
        self._s0 = self._s1 = self._s2 = self._s3 = 0
        self.init_state(seed)

    def init_state(self, seed: int) -> None:
        """``Random.InitState(int)``: the MT-style seeding recurrence with ``+1``."""
        s0 = seed & _MASK
        s1 = (s0 * _INIT_MULTIPLIER + 1) & _MASK
        s2 = (s1 * _INIT_MULTIPLIER + 1) & _MASK
        s3 = (s2 * _INIT_MULTIPLIER + 1) & _MASK
        self._s0, self._s1, self._s2, self._s3 = s0, s1, s2, s3

    @property
    def state(self) -> tuple[int, int, int, int]:
        """``Random.state`` as four signed ints, in the struct's field order."""
        return (_to_int32(self._s0), _to_int32(self._s1), _to_int32(self._s2),
                _to_int32(self._s3))

    @state.setter
    def state(self, value: tuple[int, int, int, int]) -> None:
        self._s0, self._s1, self._s2, self._s3 = (v & _MASK for v in value)

    def next_uint(self) -> int:
        """One xorshift128 step, written in the literal form of the disassembly."""
        x0, x3 = self._s0, self._s3
        t = ((x0 << 11) & _MASK) ^ x0
        self._s0, self._s1, self._s2 = self._s1, self._s2, x3
        w = x3 ^ t ^ (((x3 >> 11) ^ t) >> 8)
        self._s3 = w
        return w

    def value(self) -> float:
        """``Random.value``: a float32 in [0, 1] (returned as a Python float, exactly)."""
        return float(np.float32(self.next_uint() & 0x7FFFFF) * _VALUE_SCALE)

    def range_int(self, min_inclusive: int, max_exclusive: int) -> int:
        """``Random.Range(int, int)``; wraps like the native 32-bit code on the full int range."""
        if min_inclusive < max_exclusive:
            span = (max_exclusive - min_inclusive) & _MASK
            return _to_int32(min_inclusive + self.next_uint() % span)
        if min_inclusive > max_exclusive:
            span = (min_inclusive - max_exclusive) & _MASK
            return _to_int32(min_inclusive - self.next_uint() % span)
        return min_inclusive

    def range_float(self, min_inclusive: float, max_inclusive: float) -> float:
        """``Random.Range(float, float)``: always one draw, reversed float32 interpolation."""
        f = np.float32(self.next_uint() & 0x7FFFFF) * _VALUE_SCALE
        lo, hi = np.float32(min_inclusive), np.float32(max_inclusive)
        return float((np.float32(1.0) - f) * hi + f * lo)


@dataclass(frozen=True)
class WorldOffsets:
    """The seven values ``WorldGenerator``'s constructor draws, in draw order.

    ``off0``/``off1`` place the continents (base height X/Y), ``off0`` also the Swamp mask,
    ``off1`` Plains, ``off2`` Black Forest, ``off4`` Mistlands; ``off3`` only moves detail noise
    and the river/stream seeds only feed river placement, so biomes do not read them.
    """

    off0: int
    off1: int
    off2: int
    off3: int
    river_seed: int
    stream_seed: int
    off4: int

    def as_tuple(self) -> tuple[int, int, int, int, int, int, int]:
        """The values in the game's draw order."""
        return (self.off0, self.off1, self.off2, self.off3, self.river_seed,
                self.stream_seed, self.off4)


def world_offsets(seed: int) -> WorldOffsets:
    """The offsets of the world with integer ``seed`` (``WorldGenerator..ctor``, draws 1-7)."""
    rng = UnityRandom(seed)
    off0 = rng.range_int(-10000, 10000)
    off1 = rng.range_int(-10000, 10000)
    off2 = rng.range_int(-10000, 10000)
    off3 = rng.range_int(-10000, 10000)
    river_seed = rng.range_int(_INT_MIN, _INT_MAX)
    stream_seed = rng.range_int(_INT_MIN, _INT_MAX)
    off4 = rng.range_int(-10000, 10000)
    return WorldOffsets(off0, off1, off2, off3, river_seed, stream_seed, off4)
