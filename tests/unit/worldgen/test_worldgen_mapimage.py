"""The PNG writer: a valid file, palette colours, north up, clear outside the world."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from worldgen.biomes import Biome
from worldgen.mapimage import BIOME_COLOURS, encode_png

pytestmark = pytest.mark.unit


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        out.append((kind, payload))
        pos += 12 + n
    return out


def test_png_structure_orientation_and_transparency() -> None:
    grid = np.full((4, 3), Biome.MEADOWS, dtype=np.uint16)
    grid[0, :] = Biome.ASHLANDS  # row 0 is the south edge
    grid[3, 0] = Biome.DEEP_NORTH
    inworld = np.ones(grid.shape, dtype=bool)
    inworld[3, 2] = False
    chunks = _chunks(encode_png(grid, inworld))
    kinds = [k for k, _ in chunks]
    assert kinds == [b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"]
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour) == (3, 4, 8, 3)
    palette = chunks[1][1]
    raw = np.frombuffer(zlib.decompress(chunks[3][1]), dtype=np.uint8).reshape(4, 4)
    assert (raw[:, 0] == 0).all()
    pixels = raw[:, 1:]

    def rgb(index: int) -> tuple[int, int, int]:
        r, g, b = palette[3 * index:3 * index + 3]
        return r, g, b

    assert rgb(pixels[0, 0]) == BIOME_COLOURS[Biome.DEEP_NORTH]  # top-left is north-west
    assert pixels[0, 2] == 0 and chunks[2][1][0] == 0  # transparent entry
    assert {rgb(p) for p in pixels[3]} == {BIOME_COLOURS[Biome.ASHLANDS]}
    assert rgb(pixels[1, 1]) == BIOME_COLOURS[Biome.MEADOWS]


def test_rejects_non_grid() -> None:
    with pytest.raises(ValueError, match="2-D"):
        encode_png(np.zeros(5, dtype=np.uint16))


def test_every_biome_gets_its_colour() -> None:
    biomes = [b for b in Biome if b is not Biome.NONE]
    grid = np.array([biomes], dtype=np.uint16)
    chunks = dict(_chunks(encode_png(grid)))
    palette = chunks[b"PLTE"]
    row = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8)[1:]
    got = [tuple(palette[3 * int(i):3 * int(i) + 3]) for i in row]
    assert got == [BIOME_COLOURS[b] for b in biomes]
    assert len(set(got)) == len(biomes)  # all distinguishable
    assert 0 not in row.tolist()  # nothing transparent without an inworld mask
