"""Biome grid -> PNG, with only ``zlib`` and ``struct`` (the worker image has no PIL).

The image is an 8-bit palette PNG: one byte per pixel instead of four, so it is built and
compressed several times faster than RGBA. Palette entry 0 is fully transparent and marks
everything beyond the 10 500 m world edge; the others are the biome colours. Colours are the
game's own minimap colours (``Minimap.GetPixelColor``) where it has one; the minimap paints
Ocean, Mountain and Deep North white and shades them by height, so those three use the usual
map-viewer choices (blue sea, white mountains, pale ice) to stay distinguishable.

The grid's row 0 is the south edge; images are stored top row first, so rows are flipped to put
north up. East is to the right.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen.biomes import Biome

BIOME_COLOURS: dict[Biome, tuple[int, int, int]] = {
    Biome.MEADOWS: (0x92, 0xA7, 0x5C),
    Biome.SWAMP: (0xA3, 0x72, 0x58),
    Biome.MOUNTAIN: (0xFF, 0xFF, 0xFF),
    Biome.BLACK_FOREST: (0x6B, 0x74, 0x3F),
    Biome.PLAINS: (0xE7, 0xAB, 0x78),
    Biome.ASHLANDS: (0x7B, 0x20, 0x20),
    Biome.DEEP_NORTH: (0xC8, 0xE6, 0xFF),
    Biome.OCEAN: (0x2E, 0x64, 0xA8),
    Biome.MISTLANDS: (0x33, 0x33, 0x33),
}
UNKNOWN_COLOUR = (0xFF, 0x00, 0xFF)  # Biome.NONE or anything unexpected: loud magenta

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _palette_key(codes: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint16]:
    """Biome code -> palette index without a table lookup (a gather over 4 M points is slow).

    Codes below 256 (Meadows ... Deep North: 1, 2, 4, ..., 64) are their own index; Ocean (256)
    and Mistlands (512) become 3 and 6, which no other biome uses: ``code - 253 * (code >> 8)``.
    """
    key = (codes >> 8).astype(np.uint16, copy=False)
    key *= 253
    np.subtract(codes, key, out=key)
    return key


def _palette() -> bytes:
    """256 palette entries: biome colours at their keys, magenta anywhere unexpected."""
    colours = [UNKNOWN_COLOUR] * 256
    colours[0] = (0, 0, 0)  # transparent: outside the world
    for biome, rgb in BIOME_COLOURS.items():
        key = int(_palette_key(np.array([int(biome)], dtype=np.uint16))[0])
        colours[key] = rgb
    return b"".join(bytes(rgb) for rgb in colours)


_PLTE = _palette()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(biomes: npt.NDArray[np.uint16], inworld: npt.NDArray[np.bool_] | None = None,
               level: int = 3) -> bytes:
    """PNG bytes for a biome grid (row 0 = south); pixels where ``inworld`` is False are clear."""
    grid = np.asarray(biomes)
    if grid.ndim != 2:
        raise ValueError("biomes must be a 2-D grid")
    height, width = grid.shape
    raw = np.empty((height, width + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None on every scanline
    pixels = raw[:, 1:]
    np.copyto(pixels, _palette_key(grid.astype(np.uint16, copy=False))[::-1], casting="unsafe")
    if inworld is not None:
        inside = np.ascontiguousarray(inworld, dtype=bool)
        if inside.shape != grid.shape:
            raise ValueError("inworld must have the shape of biomes")
        pixels *= inside.view(np.uint8)[::-1]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    plte = _PLTE
    trns = b"\x00"  # only entry 0 is transparent; missing entries default to opaque
    return b"".join((
        _PNG_SIGNATURE,
        _chunk(b"IHDR", ihdr),
        _chunk(b"PLTE", plte),
        _chunk(b"tRNS", trns),
        _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
        _chunk(b"IEND", b""),
    ))


def write_png(path: Path, biomes: npt.NDArray[np.uint16],
              inworld: npt.NDArray[np.bool_] | None = None) -> None:
    """Write :func:`encode_png` to ``path``."""
    Path(path).write_bytes(encode_png(biomes, inworld))
