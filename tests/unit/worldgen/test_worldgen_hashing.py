"""Seed text -> seed: the game's GetStableHashCode over UTF-16 code units."""

from __future__ import annotations

import pytest

from worldgen.hashing import seed_from_text, stable_hash, utf16_units

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seed"),
    [
        ("MWd8eV6svz", -1772362158),
        ("abc", 1099313834),
        ("", 0),
        ("a", 372029373),
        ("j", 372029384),
        ("Abc", 1099314826),
        ("abc ", -1139976598),
        ("HHcLC5acQt", 298112588),
        ("4r8RKf6q7g", 169236204),  # fixture 02129.fwl
        ("GYzvNbdBiF", 1593720503),  # fixture world.fwl
    ],
)
def test_known_seeds(text: str, seed: int) -> None:
    assert seed_from_text(text) == seed


def test_empty_text_is_seed_zero_but_has_a_raw_hash() -> None:
    assert stable_hash("") == 371857150
    assert seed_from_text("") == 0
    assert stable_hash("\0") == 371857150
    assert seed_from_text("\0") == 371857150


def test_hash_runs_over_utf16_code_units() -> None:
    assert utf16_units("a\U0001F600") == [0x61, 0xD83D, 0xDE00]
    # An astral character is two lanes' worth of input, not one.
    assert stable_hash("\U0001F600") != stable_hash("\uD83D")
    assert -(2**31) <= stable_hash("\U0001F600x") < 2**31


def test_nul_ends_the_string() -> None:
    assert stable_hash("ab\0cd") == stable_hash("ab")


def test_low_bits_identity() -> None:
    # lane(c1..cn) & 31 == (5381 ^ c1 ^ ... ^ cn) & 31 for each lane (Valheim-SeedLab's check).
    text = "Zq3"
    even = 5381 ^ ord("Z") ^ ord("3")
    odd = 5381 ^ ord("q")
    assert stable_hash(text) & 31 == (even + odd * 1566083941) & 31
