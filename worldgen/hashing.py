"""Seed text -> integer seed, exactly as Valheim's ``World`` constructor does it.

The game never feeds the seed *text* to world generation: ``World.m_seed`` is
``seedName.GetStableHashCode()`` (``StringExtensionMethods`` in ``assembly_utils.dll``), or 0 for
an empty text. That hash is two interleaved djb2-xor lanes over the UTF-16 code units (even and
odd indices), combined as ``even + odd * 1566083941`` with wrapping 32-bit arithmetic. Python
strings are code points, so the text is first turned into UTF-16 code units; otherwise a character
outside the Basic Multilingual Plane (an emoji) would hash differently from the game.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_LANE_START = 5381
_ODD_FACTOR = 1566083941


def utf16_units(text: str) -> list[int]:
    """The UTF-16 code units of ``text``, as C# ``string`` indexing sees them."""
    data = text.encode("utf-16-le", "surrogatepass")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


def _to_int32(value: int) -> int:
    value &= _MASK
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def stable_hash(text: str) -> int:
    """``GetStableHashCode``: the raw hash, also of the empty string (371857150).

    A NUL code unit ends the string, as in the game's loop condition.
    """
    units = utf16_units(text)
    even = odd = _LANE_START
    i = 0
    n = len(units)
    while i < n and units[i] != 0:
        even = (((even << 5) + even) ^ units[i]) & _MASK
        if i == n - 1 or units[i + 1] == 0:
            break
        odd = (((odd << 5) + odd) ^ units[i + 1]) & _MASK
        i += 2
    return _to_int32(even + odd * _ODD_FACTOR)


def seed_from_text(text: str) -> int:
    """``World.m_seed`` for a seed text: 0 for ``""``, otherwise the stable hash."""
    return 0 if text == "" else stable_hash(text)
