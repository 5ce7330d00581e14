"""World files live as long as their records (issue 12, failure 6), and the data folder's disk
use is exported."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from apiclient import eventually, metric, submit, wait_job
from conftest import DaemonProcess

pytestmark = pytest.mark.integration


def test_a_world_folder_is_removed_when_its_record_expires(
    daemon_factory: Callable[..., DaemonProcess], redis_client: redis.Redis, pool_name: str,
    data_dir: Path,
) -> None:
    d = daemon_factory(VWE_EXPIRY_SWEEP_INTERVAL_S="1").start(wait_warm=1)
    first = wait_job(d.url, submit(d.url, "expiring").json()["job_id"])
    assert first["status"] == "succeeded", first
    folder = data_dir / "worlds" / first["job_id"]
    assert (folder / "biomes.npy").is_file()
    # The record expires as VWE_RESULT_TTL_S would make it (Redis deletes it on expiry).
    redis_client.pexpire(f"{pool_name}:job:{first['job_id']}", 1)
    redis_client.delete(*redis_client.keys(f"{pool_name}:seed:*"))  # the seed cache too
    eventually(lambda: not folder.exists(), timeout=10)

    # Asking again makes a new world and a new folder; nothing of the old one is left.
    second = wait_job(d.url, submit(d.url, "expiring").json()["job_id"])
    assert second["status"] == "succeeded" and second["job_id"] != first["job_id"]
    assert sorted(p.name for p in (data_dir / "worlds").iterdir()) == [second["job_id"]]

    free = metric(d.url, "vwe_data_disk_free_bytes")
    size = metric(d.url, "vwe_data_disk_size_bytes")
    assert free is not None and size is not None and 0 < free <= size


def test_a_full_data_disk_fails_the_attempt_with_a_clear_error(
    daemon_factory: Callable[..., DaemonProcess], data_dir: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    small = data_dir / "small"
    small.mkdir()
    # A real full disk: a 1.5 MiB tmpfs, where a 1024-cell map's biomes.npy (2 MiB) cannot fit.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(small)],
                   check=True)
    try:
        d = daemon_factory(VWE_DATA_DIR=str(small), VWE_MAP_RESOLUTION="1024",
                           VWE_JOB_MAX_ATTEMPTS="1").start(wait_warm=1)
        done = wait_job(d.url, submit(d.url, "fulldisk").json()["job_id"])
        assert done["status"] == "failed", done
        assert "disk is full" in done["error"], done["error"]
        worlds = small / "worlds"
        assert not worlds.exists() or list(worlds.iterdir()) == []  # nothing partial
        assert d.stop(timeout=60) == 0
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
