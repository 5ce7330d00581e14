"""A relief map in the style of the game's own map: biome colours shaded by height, water by depth.

Written with ``zlib`` and ``struct`` only (the worker image has no PIL): an 8-bit RGB PNG with
the ``Up`` filter (smooth terrain compresses several times better than unfiltered) and a
``tRNS`` colour that marks everything beyond the 10 500 m edge as transparent.

* land (height >= 30 m, the game's water level): the biome's map colour (:mod:`worldgen.mapimage`;
  Mountain and Deep North white and icy as on the game's map), lit from the north-west with a
  Lambert hill shade and lightened a little with altitude;
* water (below 30 m): from a pale shallow blue to a deep navy over 0-60 m of depth, so rivers
  (carved to 24-28 m) and lakes show as thin blue lines and pools;
* unknown biome codes stay loud magenta, as in ``biomes.png``.

The grid's row 0 is the south edge; the image is stored north up, east to the right.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen.biomes import Biome
from worldgen.mapimage import BIOME_COLOURS, UNKNOWN_COLOUR

WATER_LEVEL = 30.0  # ZoneSystem.m_waterLevel
_SHALLOW = np.array([0x6F, 0xB5, 0xD8], dtype=np.float32)
_DEEP = np.array([0x0E, 0x2A, 0x5C], dtype=np.float32)
_MAP_COLOURS = {**BIOME_COLOURS, Biome.MOUNTAIN: (0xE8, 0xE8, 0xEC),
                Biome.DEEP_NORTH: (0xDC, 0xEE, 0xFF), Biome.OCEAN: (0x9A, 0x8F, 0x6A)}
_TRANSPARENT = (1, 2, 3)  # never produced below: colours are clamped to >= 4
_LIGHT = np.array([-1.0, 1.0, 1.6]) / np.linalg.norm([-1.0, 1.0, 1.6])  # from the north-west
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _biome_rgb(biomes: npt.NDArray[np.uint16]) -> npt.NDArray[np.float32]:
    """(rows, cols, 3) float colours of the biome codes; magenta for anything unknown."""
    table = np.empty((1024, 3), dtype=np.float32)
    table[:] = UNKNOWN_COLOUR
    for biome, rgb in _MAP_COLOURS.items():
        table[int(biome)] = rgb
    codes = np.minimum(biomes, 1023).astype(np.intp)
    out: npt.NDArray[np.float32] = table[codes]
    return out


def relief_rgb(biomes: npt.NDArray[np.uint16], heights: npt.NDArray[np.float32],
               cell_m: float) -> npt.NDArray[np.uint8]:
    """(rows, cols, 3) uint8 colours, row 0 = south (same lattice as the inputs)."""
    h = heights.astype(np.float32)
    gz, gx = np.gradient(h, cell_m)  # d/dz along rows (north), d/dx along columns (east)
    norm = np.sqrt(gx * gx + gz * gz + 1.0)
    lit = (-gx * _LIGHT[0] - gz * _LIGHT[1] + _LIGHT[2]) / norm
    shade = np.clip(0.35 + 0.85 * lit, 0.25, 1.35).astype(np.float32)
    land = _biome_rgb(biomes)
    lift = np.clip((h - WATER_LEVEL) / 400.0, 0.0, 1.0)[..., None] * 0.25
    land = land * shade[..., None] + (255.0 - land) * lift
    depth = np.clip((WATER_LEVEL - h) / 60.0, 0.0, 1.0)[..., None]
    water = _SHALLOW + (_DEEP - _SHALLOW) * np.sqrt(depth)
    water = water * (0.85 + 0.15 * np.clip(shade, 0.0, 1.0))[..., None]
    rgb = np.where((h >= WATER_LEVEL)[..., None], land, water)
    out: npt.NDArray[np.uint8] = np.clip(rgb, 4, 255).astype(np.uint8)
    return out


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


# Grid rows shaded and compressed at a time: the whole 4096-cell map at once took 1.3 GB of
# float temporaries, more than a worker's memory limit.
BAND_ROWS = 256


def encode_relief_png(biomes: npt.NDArray[np.uint16], heights: npt.NDArray[np.float32],
                      inworld: npt.NDArray[np.bool_], cell_m: float, level: int = 3) -> bytes:
    """PNG bytes of :func:`relief_rgb`, north up, transparent beyond the world edge.

    Shaded and compressed in bands of `BAND_ROWS` grid rows (each with one row of its
    neighbours, so the height gradient, and so every pixel, is the whole grid's), which keeps
    the memory to a few bands' worth of temporaries at any size.

    Raises ``ValueError`` when the three grids do not share one 2-D shape.
    """
    if biomes.ndim != 2 or biomes.shape != heights.shape or biomes.shape != inworld.shape:
        raise ValueError("biomes, heights and inworld must be 2-D grids of one shape")
    height, width = biomes.shape
    deflate = zlib.compressobj(level)
    parts = [deflate.compress(b"")]
    above: npt.NDArray[np.uint8] | None = None  # the image row above the band (north)
    # The image is north up: bands from the grid's last rows (north) down to row 0.
    for stop in range(height, 0, -BAND_ROWS):
        start = max(0, stop - BAND_ROWS)
        lo, hi = max(0, start - 1), min(height, stop + 1)  # one halo row on each side
        rgb = relief_rgb(biomes[lo:hi], heights[lo:hi], cell_m)[start - lo:stop - lo]
        rgb[~inworld[start:stop]] = _TRANSPARENT
        img = np.ascontiguousarray(rgb[::-1]).reshape(stop - start, -1)
        up = img.copy()
        up[1:] -= img[:-1]  # the Up filter: each byte minus the one above (mod 256)
        if above is not None:
            up[0] -= above
        above = img[-1].copy()
        raw = np.empty((img.shape[0], img.shape[1] + 1), dtype=np.uint8)
        raw[:, 0] = 2
        raw[:, 1:] = up
        parts.append(deflate.compress(raw.tobytes()))
    parts.append(deflate.flush())
    return b"".join((
        _PNG_SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        _chunk(b"tRNS", struct.pack(">HHH", *_TRANSPARENT)),
        _chunk(b"IDAT", b"".join(parts)),
        _chunk(b"IEND", b""),
    ))


def write_relief_png(path: Path, biomes: npt.NDArray[np.uint16],
                     heights: npt.NDArray[np.float32], inworld: npt.NDArray[np.bool_],
                     cell_m: float) -> None:
    """Write :func:`encode_relief_png` to ``path``."""
    Path(path).write_bytes(encode_relief_png(biomes, heights, inworld, cell_m))
