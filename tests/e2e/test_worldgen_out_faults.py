"""`vwe-pool worldgen SEED --out X` when X cannot take the world (issue 12, failure 7): a clear
message and a non-zero exit, no traceback, nothing partial, the previous world untouched. A
full disk and a read-only folder are real file systems (tmpfs mounts), not simulated errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e

CLI = str(ROOT / ".venv/bin/vwe-pool")


def worldgen(out: Path, seed: str = "MWd8eV6svz",
             *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "worldgen", seed, "--out", str(out), "--resolution", "1024",
                           *extra], capture_output=True, text=True, timeout=120,
                          env={**os.environ})


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file()}


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_out_is_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "X"
    target.write_text("mine")
    result = worldgen(target)
    assert_clean_failure(result, str(target), "not a folder")
    assert target.read_text() == "mine"


def test_out_in_a_read_only_folder(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=4m") as ro:
        result = worldgen(ro / "world")
        assert_clean_failure(result, "not writable")
        assert list(ro.iterdir()) == []


def test_full_disk_leaves_nothing_partial_and_keeps_the_previous_world(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=10m") as small:
        out = small / "world"
        first = worldgen(out, "OldSeed", "--legacy-fwl")
        assert first.returncode == 0, first.stderr
        before = files(out)
        assert "worlds_local/OldSeed.fwl" in before
        # The new world (~8 MiB with its height map) does not fit beside the previous one.
        result = worldgen(out, "NewSeed")
        assert_clean_failure(result, "disk is full")
        assert files(out) == before  # the previous world, whole, and nothing of the new one
        assert sorted(p.name for p in small.iterdir()) == ["world"]  # no temporary folder


def test_reusing_a_folder_does_not_mix_worlds(tmp_path: Path) -> None:
    out = tmp_path / "world"
    assert worldgen(out, "OldSeed", "--legacy-fwl").returncode == 0
    result = worldgen(out, "NewSeed")
    assert result.returncode == 0, result.stderr
    names = set(files(out))
    assert not any("OldSeed" in n for n in names), names
    assert "worlds_local/NewSeed/_main.0.fwl2" in names
