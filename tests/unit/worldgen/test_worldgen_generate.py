"""generate_world: the files the worker hands back, and its input checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pngtools import decode_rgb_png

from worldgen import GENERATOR_VERSION, fwl
from worldgen.biomes import biome_points
from worldgen.generate import generate_world, lattice_coords, sanitise_name, warm_up

# warm_up compiles the numba kernels when their cache is cold (a minute or more on a busy box).
pytestmark = [pytest.mark.unit, pytest.mark.timeout(600)]


def test_lattice_of_the_game_minimap() -> None:
    c = lattice_coords(2048)
    assert c[0] == -12282.0 and c[1024] == 6.0 and c[-1] == 12282.0
    assert lattice_coords(256)[128] == 48.0


def test_generates_all_files(tmp_path: Path) -> None:
    calls: list[tuple[float, str]] = []
    warm_up(256)
    world = generate_world("MWd8eV6svz", tmp_path, resolution=256, legacy_fwl=True,
                           progress=lambda f, m: calls.append((f, m)))
    assert calls[0][0] == 0.0 and calls[-1][0] == 1.0
    assert [f for f, _ in calls] == sorted(f for f, _ in calls)
    on_disk = json.loads((tmp_path / "world.json").read_text(encoding="utf-8"))
    assert on_disk == world
    assert world["seed"] == -1772362158 and world["generator_version"] == GENERATOR_VERSION
    assert world["offsets"] == {"off0": -6080, "off1": 4986, "off2": -7704, "off3": -59,
                                "river_seed": 744350289, "stream_seed": 952983356,
                                "off4": 718}
    shares = world["biome_shares"]
    assert isinstance(shares, dict) and abs(sum(shares.values()) - 1.0) < 1e-5
    assert isinstance(world["generation_time_s"], float)

    biomes = np.load(tmp_path / "biomes.npy")
    assert biomes.shape == (256, 256) and biomes.dtype == np.uint16
    c = lattice_coords(256)
    assert np.array_equal(biomes[::17], biome_points(-1772362158, c[None, :], c[::17, None]))

    assert (tmp_path / "biomes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    main = fwl.read(tmp_path / "worlds_local" / "MWd8eV6svz" / "_main.0.fwl2")
    assert (main.version, main.name, main.seed_name, main.seed, main.worldgen_version,
            main.needs_db) == (41, "MWd8eV6svz", "MWd8eV6svz", -1772362158, 2, False)
    legacy = fwl.read(tmp_path / "worlds_local" / "MWd8eV6svz.fwl")
    assert legacy.version == 29 and legacy.seed == main.seed and legacy.uid == main.uid
    assert world["files"] == {"biomes": "biomes.npy", "image": "biomes.png",
                              "fwl2": "worlds_local/MWd8eV6svz/_main.0.fwl2",
                              "fwl": "worlds_local/MWd8eV6svz.fwl"}


def test_same_request_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_world("a.b/c", a, resolution=64, world_name="Custom_1", worldgen_version=1)
    generate_world("a.b/c", b, resolution=64, world_name="Custom_1", worldgen_version=1)
    for rel in ("biomes.npy", "biomes.png", "worlds_local/Custom_1/_main.0.fwl2"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert fwl.read(a / "worlds_local/Custom_1/_main.0.fwl2").worldgen_version == 1


def test_default_name_is_sanitised(tmp_path: Path) -> None:
    world = generate_world("../x y", tmp_path, resolution=32)
    assert world["world_name"] == "___x_y"
    assert (tmp_path / "worlds_local" / "___x_y" / "_main.0.fwl2").is_file()
    assert sanitise_name("con") == "con_"


@pytest.mark.parametrize(
    "seed",
    ["", "12345678901", "abc\n", "a\x00", "tab\t", "\x7f", "a\ud800", "\U0001F600" * 6],
)
def test_invalid_seeds(seed: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        generate_world(seed, tmp_path, resolution=32)
    assert not (tmp_path / "world.json").exists()


@pytest.mark.parametrize("seed", ["a", "1234567890", "Ünïcödé", "\U0001F600" * 5, "a b-c"])
def test_valid_unusual_seeds(seed: str, tmp_path: Path) -> None:
    world = generate_world(seed, tmp_path, resolution=32)
    assert fwl.read(tmp_path / str(world["files"]["fwl2"])).seed_name == seed  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"resolution": 8}, "resolution"), ({"resolution": 100.0}, "resolution"),
     ({"worldgen_version": 3}, "worldgen_version"), ({"world_name": "a/b"}, "world_name"),
     ({"world_name": ""}, "world_name")],
)
def test_invalid_options(kwargs: dict[str, object], match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        generate_world("abc", tmp_path, **kwargs)  # type: ignore[arg-type]


def test_heights_layer_files(tmp_path: Path) -> None:
    """``layers=["biomes", "heights"]``: heights.npy on the biome lattice, the relief map (no
    magenta, clear beyond the edge, water below 30 m blue), rivers.json and the statistics."""
    from worldgen.world import World

    world = generate_world("MWd8eV6svz", tmp_path, resolution=128,
                           layers=["heights", "biomes"])
    assert world["layers"] == ["biomes", "heights"]
    files = world["files"]
    assert isinstance(files, dict)
    assert {files["heights"], files["relief"], files["rivers"]} == {
        "heights.npy", "relief.png", "rivers.json"}
    heights = np.load(tmp_path / "heights.npy")
    assert heights.dtype == np.float32 and heights.shape == (128, 128)
    c = lattice_coords(128)
    w = World("MWd8eV6svz")
    assert np.array_equal(heights[::9].view(np.uint32),
                          w.height(c[None, :], c[::9, None]).view(np.uint32))
    stats = world["heights"]
    assert isinstance(stats, dict)
    assert stats["max_m"] == round(float(heights.max()), 3)
    assert stats["edge_cells"] == int((heights == -400.0).sum()) > 0
    assert stats["rivers"] == len(w.rivers) and stats["lakes"] == len(w.lakes)
    rgb, trns = decode_rgb_png((tmp_path / "relief.png").read_bytes())
    assert rgb.shape == (128, 128, 3)
    assert not np.all(rgb == (255, 0, 255), axis=2).any()
    clear = np.all(rgb == tuple(trns[1::2]), axis=2)[::-1]  # image rows run north to south
    dist = np.hypot(c[None, :], c[:, None]).astype(np.float32)
    assert np.array_equal(clear, dist > np.float32(10500.0))
    water = (heights < 30.0) & ~clear
    assert (rgb[::-1][water][:, 2] > rgb[::-1][water][:, 0]).all()  # blue over red
    rivers = json.loads((tmp_path / "rivers.json").read_text(encoding="utf-8"))
    assert len(rivers["rivers"]) == len(w.rivers) and len(rivers["lakes"]) == len(w.lakes)
    assert rivers["rivers"][0]["p0"] == list(w.rivers[0].p0)


def test_layers_are_checked(tmp_path: Path) -> None:
    generate_world("abc", tmp_path / "a", resolution=64, layers=["heights"])
    assert not (tmp_path / "a" / "biomes.npy").exists()
    assert (tmp_path / "a" / "heights.npy").exists()
    for bad in (["relief"], [], "biomes"):
        with pytest.raises(ValueError, match="layer"):
            generate_world("abc", tmp_path / "b", resolution=64, layers=bad)
