"""Reading back the relief PNG the generator writes (8-bit RGB, Up filter), for the tests."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def decode_rgb_png(data: bytes) -> tuple[np.ndarray, bytes]:
    """(rows, cols, 3) pixels of our RGB PNG (Up filter), and its tRNS payload."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, trns, size = 8, b"", b"", (0, 0)
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            size = struct.unpack(">II", payload[:8])
            assert payload[8:10] == b"\x08\x02"  # 8-bit RGB
        elif kind == b"IDAT":
            idat += payload
        elif kind == b"tRNS":
            trns = payload
    width, height = size
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * 3 + 1)
    assert (raw[:, 0] == 2).all()
    rows = np.cumsum(raw[:, 1:].astype(np.uint64), axis=0).astype(np.uint8)
    return rows.reshape(height, width, 3), trns
