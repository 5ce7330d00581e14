"""The expiry sweep removes exactly the world folders whose records are gone."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from pool.daemon.worlds import MIN_AGE_S, DiskCollector, sweep_expired

pytestmark = pytest.mark.unit


class Records:
    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.asked: list[str] = []

    async def jobs_exist(self, job_ids: Sequence[str]) -> list[bool]:
        self.asked.extend(job_ids)
        return [j in self.live for j in job_ids]


def world(root: Path, name: str, age_s: float, now: float) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "biomes.npy").write_bytes(b"x" * 10)
    os.utime(path, (now - age_s, now - age_s))
    return path


async def test_only_folders_of_expired_records_are_removed(tmp_path: Path) -> None:
    now = 1_000_000.0
    live, gone, young = "a" * 32, "b" * 32, "c" * 32
    for name, age in ((live, 100), (gone, 100), (young, MIN_AGE_S / 2)):
        world(tmp_path, name, age, now)
    other = world(tmp_path, "not-a-job-folder", 100, now)
    records = Records({live})
    assert await sweep_expired(tmp_path, records, clock=now) == 1
    assert sorted(os.listdir(tmp_path)) == sorted([live, young, other.name])
    assert young not in records.asked  # too young to judge: its job may be recording now


async def test_a_missing_worlds_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert await sweep_expired(tmp_path / "none", Records(set())) == 0


def test_disk_use_is_exported(tmp_path: Path) -> None:
    families = {m.name: m for m in DiskCollector(tmp_path).collect()}
    free = families["vwe_data_disk_free_bytes"].samples[0].value
    size = families["vwe_data_disk_size_bytes"].samples[0].value
    assert 0 < free <= size
