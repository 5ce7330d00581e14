"""World metadata files: the game's own files round-trip byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldgen import fwl
from worldgen.hashing import seed_from_text

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[2] / "data" / "valheim"


@pytest.mark.parametrize(
    ("name", "seed_name", "seed", "uid"),
    [("02129", "4r8RKf6q7g", 169236204, -1531180180),
     ("world", "GYzvNbdBiF", 1593720503, 631359473)],
)
def test_real_files_round_trip(name: str, seed_name: str, seed: int, uid: int,
                               tmp_path: Path) -> None:
    path = DATA / f"{name}.fwl"
    data = path.read_bytes()
    meta = fwl.read(path)
    assert (meta.version, meta.name, meta.seed_name, meta.seed, meta.uid,
            meta.worldgen_version) == (29, name, seed_name, seed, uid, 2)
    assert seed_from_text(meta.seed_name) == meta.seed
    assert fwl.encode(meta) == data
    out = tmp_path / "copy.fwl"
    fwl.write(out, meta)
    assert out.read_bytes() == data


def test_version_41_layout() -> None:
    meta = fwl.WorldMeta(name="Björn", seed_name="MWd8eV6svz", seed=-1772362158, uid=-5,
                         starting_global_keys=["resourcerate 300", "preset x"],
                         player_history=[("Steam_76561", "Me", "", "AB12")])
    data = fwl.encode(meta)
    assert data[:4] == (len(data) - 4).to_bytes(4, "little")
    assert data[4:8] == (41).to_bytes(4, "little")
    assert data[8] == len("Björn".encode())  # 7-bit length counts UTF-8 bytes
    assert fwl.decode(data) == meta
    assert fwl.encode(fwl.decode(data)) == data


def test_new_world_file_is_minimal() -> None:
    meta = fwl.WorldMeta(name="abc", seed_name="abc", seed=1099313834, uid=1)
    data = fwl.encode(meta)
    # len, version, 2 strings, seed, uid, worldgen, needsDB, 0 keys, 0 history
    assert len(data) == 4 + 4 + 4 + 4 + 4 + 8 + 4 + 1 + 4 + 4
    assert data.endswith(b"\x02\x00\x00\x00\x00" + b"\x00" * 8)


def test_long_strings_use_multibyte_lengths() -> None:
    meta = fwl.WorldMeta(name="n" * 300, seed_name="s", seed=0, uid=0)
    data = fwl.encode(meta)
    assert data[8:10] == bytes([0xAC, 0x02])
    assert fwl.decode(data).name == "n" * 300


@pytest.mark.parametrize("cut", [3, 10, 40])
def test_truncated_or_padded_files_are_rejected(cut: int) -> None:
    data = (DATA / "world.fwl").read_bytes()
    with pytest.raises(fwl.FwlError):
        fwl.decode(data[:cut])
    with pytest.raises(fwl.FwlError):
        fwl.decode(data + b"\x00")


def test_paths() -> None:
    root = Path("out/worlds_local")
    assert fwl.main_path(root, "W") == root / "W" / "_main.0.fwl2"
    assert fwl.legacy_path(root, "W") == root / "W.fwl"
