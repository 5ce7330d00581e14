"""The relief map is shaded and compressed in bands; every pixel is still the whole grid's."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from worldgen import relief

pytestmark = pytest.mark.unit


def _whole_grid_rows(biomes: np.ndarray, heights: np.ndarray, inworld: np.ndarray) -> bytes:
    """The filtered scanlines as one whole-grid pass makes them (the definition)."""
    rgb = relief.relief_rgb(biomes, heights, 4.0)
    rgb[~inworld] = relief._TRANSPARENT
    img = np.ascontiguousarray(rgb[::-1]).reshape(rgb.shape[0], -1)
    up = img.copy()
    up[1:] -= img[:-1]
    raw = np.empty((img.shape[0], img.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 2
    raw[:, 1:] = up
    return raw.tobytes()


@pytest.mark.parametrize("rows", [2, 3, relief.BAND_ROWS, relief.BAND_ROWS + 1,
                                  2 * relief.BAND_ROWS + 7])
def test_banded_png_holds_the_whole_grids_pixels(rows: int) -> None:
    rng = np.random.default_rng(rows)
    shape = (rows, 37)
    heights = (rng.random(shape, dtype=np.float32) * 300 - 50).astype(np.float32)
    biomes = rng.integers(0, 600, shape).astype(np.uint16)
    inworld = rng.random(shape) > 0.1
    png = relief.encode_relief_png(biomes, heights, inworld, 4.0)
    at = png.index(b"IDAT")
    length = struct.unpack(">I", png[at - 4:at])[0]
    assert zlib.decompress(png[at + 4:at + 4 + length]) == _whole_grid_rows(biomes, heights,
                                                                            inworld)
    assert struct.unpack(">II", png[16:24]) == (37, rows)
