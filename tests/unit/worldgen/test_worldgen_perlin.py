"""Mathf.PerlinNoise: bit patterns, the Unity fixture and the tensor-grid evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldgen.perlin import BlockScratch, NoiseTables, perlin_block, perlin_noise

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[2] / "data" / "valheim"


def _bits(x: float, y: float) -> int:
    return int(perlin_noise(np.float32(x), np.float32(y)).view(np.uint32))


@pytest.mark.parametrize(
    ("x", "y", "bits"),
    [
        (0.0, 0.0, 0x3EEE3846),
        (0.5, 0.5, 0x3E97E886),
        (-0.5, 0.5, 0x3E97E886),
        (0.5, -0.5, 0x3E97E886),
        (123.456, 789.012, 0x3F24108F),
        (-123.456, -789.012, 0x3F24108F),
        (4.2, -4.2, 0x3F05C0F3),
        (0.25, 0.75, 0x3ED36A82),
        (257.0, 1.5, 0x3F224403),
        (255.99998, 0.0, 0x3EEE36ED),
        (1e-7, 1e-7, 0x3EEE3849),
        (44000.0, -44000.0, 0x3EEE3846),
        (119999.0, 0.5, 0x3EEE3846),
        (16777216.0, 0.5, 0x3E97E886),
        (-16.08, -6.08, 0x3F0412B8),
        (-20.5, 20.499, 0x3E97ABE0),
        (110.00001, 90.00001, 0x3EEE3846),
    ],
)
def test_reference_bits(x: float, y: float, bits: int) -> None:
    assert _bits(x, y) == bits


def test_unity_fixture_values() -> None:
    expected = (DATA / "perlin_values.txt").read_text().split()
    got = []
    step_x, step_y = np.float32(0.1), np.float32(0.3)
    y = np.float32(-1.1)
    while y < np.float32(1.1):
        x = np.float32(-1.1)
        while x < np.float32(1.1):
            got.append(float(perlin_noise(x, y)))
            x = np.float32(x + step_x)
        y = np.float32(y + step_y)
    assert len(got) == len(expected) == 176
    # Unity printed float32 with 7 significant digits, padded to 8 decimals.
    assert [f"{float(f'{v:.7g}'):.8f}" for v in got] == expected


def test_tensor_rows_match_points() -> None:
    rng = np.random.default_rng(4)
    # Coordinates with a sign change (abs fold), lattice crossings and the wrap past 256.
    xs = np.sort(rng.uniform(-6.0, 6.0, 301)).astype(np.float32)
    xs = np.concatenate([xs, np.linspace(250, 262, 40, dtype=np.float32)])
    ys = np.concatenate([np.sort(rng.uniform(-3.0, 9.0, 57)),
                         rng.uniform(0, 300, 9)]).astype(np.float32)
    field = NoiseTables(xs, ys)
    out = np.empty((ys.size, xs.size), dtype=np.float32)
    perlin_block(field, 0, ys.size, 0, xs.size, out, BlockScratch(out.size))
    ref = perlin_noise(xs[None, :], ys[:, None])
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))
    part = np.empty((20, 100), dtype=np.float32)
    perlin_block(field, 30, 50, 200, 300, part, BlockScratch(part.size))
    assert np.array_equal(part, ref[30:50, 200:300])


def test_tensor_rows_across_the_255_wrap() -> None:
    ys = np.linspace(250.0, 262.0, 97, dtype=np.float32)  # row cells 250..255, 0..5
    xs = np.linspace(-3.0, 3.0, 50, dtype=np.float32)
    out = np.empty((ys.size, xs.size), dtype=np.float32)
    perlin_block(NoiseTables(xs, ys), 0, ys.size, 0, xs.size, out, BlockScratch(out.size))
    assert np.array_equal(out, perlin_noise(xs[None, :], ys[:, None]))


def test_noise_is_even_and_normalised() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-50, 50, 5000).astype(np.float32)
    y = rng.uniform(-50, 50, 5000).astype(np.float32)
    a = perlin_noise(x, y)
    assert np.array_equal(a, perlin_noise(-x, y))
    assert np.array_equal(a, perlin_noise(x, -y))
    assert a.dtype == np.float32
    assert a.min() > -0.14 and a.max() < 1.14
