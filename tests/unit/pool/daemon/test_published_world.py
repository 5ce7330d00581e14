"""A world published by an earlier attempt is recorded again, never generated again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pool.daemon.collect import published_world
from pool.infra.safefs import OutputRejected, WalkLimits

pytestmark = pytest.mark.unit

LIMITS = WalkLimits(max_files=20, max_depth=3, max_name_bytes=32, max_total_bytes=1 << 20)
JOB = "0123456789abcdef0123456789abcdef"


def test_no_folder_means_no_world(tmp_path: Path) -> None:
    assert published_world(tmp_path, JOB, LIMITS) is None
    assert published_world(tmp_path / "missing-store", JOB, LIMITS) is None


def test_a_published_folder_lists_its_files_with_their_digests(tmp_path: Path) -> None:
    world = tmp_path / JOB
    (world / "maps").mkdir(parents=True)
    (world / "world.json").write_bytes(b'{"seed": "x"}')
    (world / "maps" / "biomes.png").write_bytes(b"\x89PNG" * 10)
    artifacts = published_world(tmp_path, JOB, LIMITS)
    assert artifacts is not None
    assert [a.name for a in artifacts] == ["maps/biomes.png", "world.json"]
    assert artifacts[1].size == 13
    assert artifacts[1].sha256 == hashlib.sha256(b'{"seed": "x"}').hexdigest()
    assert artifacts[1].content_type == "application/json"


def test_a_link_in_place_of_the_world_is_not_a_world(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / JOB)
    with pytest.raises(OutputRejected):
        published_world(tmp_path, JOB, LIMITS)
