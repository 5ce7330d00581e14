"""The generator's output folder: written whole or not at all, bad targets refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worldgen.generate import generate_world
from worldgen.output import OutputError

pytestmark = pytest.mark.unit

RES = 32


def test_a_new_folder_gets_exactly_the_world(tmp_path: Path) -> None:
    out = tmp_path / "a" / "world"
    generate_world("MWd8eV6svz", out, resolution=RES)
    assert json.loads((out / "world.json").read_text())["seed_text"] == "MWd8eV6svz"
    assert [p.name for p in tmp_path.joinpath("a").iterdir()] == ["world"]  # no leftovers


def test_a_previous_world_is_replaced_whole_not_mixed(tmp_path: Path) -> None:
    out = tmp_path / "w"
    generate_world("OldSeed", out, resolution=RES, legacy_fwl=True)
    assert (out / "worlds_local" / "OldSeed.fwl").exists()
    generate_world("NewSeed", out, resolution=RES)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not any("OldSeed" in n for n in names), names
    assert "worlds_local/NewSeed/_main.0.fwl2" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_an_existing_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "X"
    target.write_text("mine")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        generate_world("MWd8eV6svz", target, resolution=RES)
    assert target.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X"]


def test_a_folder_of_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="holds other files"):
        generate_world("MWd8eV6svz", tmp_path, resolution=RES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_failure_while_writing_leaves_the_previous_world(tmp_path: Path) -> None:
    out = tmp_path / "w"
    generate_world("OldSeed", out, resolution=RES)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def explode(fraction: float, message: str) -> None:
        if fraction >= 0.9:
            raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="the disk is full"):
        generate_world("NewSeed", out, resolution=RES, progress=explode)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("worldgen_version", 2.0, "worldgen_version must be one of the integers"),
    ("worldgen_version", True, "worldgen_version must be one of the integers"),
    ("worldgen_version", "2", "worldgen_version must be one of the integers"),
    ("resolution", 32.0, "resolution must be an integer"),
    ("legacy_fwl", 1, "legacy_fwl must be True or False"),
])
def test_non_integer_options_are_refused_before_anything_is_written(
    tmp_path: Path, option: str, value: object, message: str,
) -> None:
    options: dict[str, object] = {"resolution": RES, option: value}
    with pytest.raises(ValueError, match=message):
        generate_world("MWd8eV6svz", tmp_path / "w", **options)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
