"""UnityEngine.Random and the world offsets it yields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldgen.unity_random import UnityRandom, world_offsets

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[2] / "data" / "valheim"


def _bits(value: float) -> int:
    return int(np.float32(value).view(np.uint32))


def test_unity_draws_from_fixture() -> None:
    values = [int(v) for v in (DATA / "random_values.txt").read_text().split()]
    seed, expected = values[0], values[1:]
    assert len(expected) == 100
    rng = UnityRandom(seed)
    assert [rng.range_int(-(2**31), 2**31 - 1) for _ in expected] == expected


@pytest.mark.parametrize(
    ("seed", "state"),
    [
        (0, (0, 1, 1812433254, 1900727103)),
        (1, (1, 1812433254, 1900727103, -603986212)),
        (-1, (-1, -1812433252, 1724139405, 110473122)),
        (12345, (12345, 2003863422, 878305975, 684417332)),
        (-(2**31), (-2147483648, -2147483647, -335050394, -246756545)),
        (2**31 - 1, (2147483647, 335050396, -423344243, -2037010526)),
        (-1772362158, (-1772362158, 1690419291, 383686376, 619426185)),
    ],
)
def test_init_state(seed: int, state: tuple[int, int, int, int]) -> None:
    assert UnityRandom(seed).state == state


def test_world_offsets_of_the_reference_world() -> None:
    assert world_offsets(-1772362158).as_tuple() == (
        -6080, 4986, -7704, -59, 744350289, 952983356, 718)


def test_int_range_sequence_and_state() -> None:
    rng = UnityRandom(-1772362158)
    draws = [rng.range_int(-10000, 10000) for _ in range(16)]
    assert draws == [-6080, 4986, -7704, -59, 3937, -2996, 718, 4160, -6254, -5991, -2471,
                     -4984, -9065, -2665, 2371, 2488]
    assert rng.state == (679000935, -1675939961, -960914925, 903472488)
    assert UnityRandom(7).range_int(-(2**31), 2**31 - 1) == -599867598


def test_equal_int_bounds_do_not_draw() -> None:
    rng = UnityRandom(7)
    before = rng.state
    assert rng.range_int(5, 5) == 5
    assert rng.state == before


def test_float_range_and_value() -> None:
    rng = UnityRandom(744350289)
    a = rng.range_float(60.0, 100.0)
    assert _bits(a) == 0x42BF3B2E
    assert _bits(rng.range_float(60.0, a)) == 0x42A84292
    assert rng.range_float(20.0, 20.0) == 20.0  # equal float bounds still draw
    assert rng.state == (453124588, -661780553, 908674882, -1218116351)
    assert _bits(rng.range_float(-10000.0, 10000.0)) == 0xC5A7D51C
    assert _bits(rng.range_float(-10000.0, 10000.0)) == 0xC60BD134
    assert _bits(rng.range_float(0.0, float(np.float32(6.2831854820251465)))) == 0x40A67D69
    assert _bits(UnityRandom(744350289).range_float(100.0, 60.0)) == 0x4280C4D3
    rng = UnityRandom(-1772362158)
    assert [_bits(rng.value()) for _ in range(8)] == [
        0x3F175461, 0x3F44F996, 0x3F538632, 0x3F6E83AC, 0x3F3BC4A3, 0x3F1ABE79, 0x3E3DD1F1,
        0x3F1150E1]


def test_long_run_state() -> None:
    rng = UnityRandom(0)
    for _ in range(100_000):
        rng.next_uint()
    assert rng.state == (-578533609, 1716075846, 1054780398, 1693974205)
    assert _bits(rng.value()) == 0x3ED2C72E
