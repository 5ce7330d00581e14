"""The worlds store on another filesystem than the data folder, read by a second process."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from apiclient import eventually, get_job, submit, wait_job
from conftest import DaemonProcess

from pool.store import keys

pytestmark = pytest.mark.integration


@pytest.fixture
def shared_store(data_dir: Path) -> Iterator[Path]:
    """A worlds folder on /dev/shm (tmpfs): another filesystem than the data folder in /tmp,
    as an NFS mount would be."""
    path = Path(tempfile.mkdtemp(prefix="vwe-worlds-", dir="/dev/shm"))
    assert path.stat().st_dev != data_dir.stat().st_dev
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_worlds_cross_filesystems_and_any_api_process_serves_them(
    daemon_factory: Callable[..., DaemonProcess], shared_store: Path, data_dir: Path,
) -> None:
    worker = daemon_factory(VWE_WORLDS_DIR=str(shared_store)).start(wait_warm=1)
    other_local = data_dir / "other-host"
    api = daemon_factory(VWE_WORLDS_DIR=str(shared_store),
                         VWE_DATA_DIR=str(other_local)).start(role="api")
    accepted = submit(api.url, "XfsSeed1")
    assert accepted.status_code == 202
    job = wait_job(api.url, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job

    world = shared_store / job["job_id"]
    assert {a["name"] for a in job["artifacts"]} == {
        str(p.relative_to(world)) for p in world.rglob("*") if p.is_file()}
    for artifact in job["artifacts"]:
        r = httpx.get(api.url + artifact["url"], timeout=10)  # the process that did not run it
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).hexdigest() == artifact["sha256"]
    # Nothing is left behind on the worker's local disk, nor half-copied in the store.
    assert not any((data_dir / "staging").iterdir())
    assert not [p for p in shared_store.iterdir() if p.name.startswith(".")]
    assert not (data_dir / "worlds").exists() and not (other_local / "worlds").exists()
    assert worker.proc is not None and worker.proc.poll() is None


def test_a_lost_record_is_recorded_from_the_published_world_not_generated_again(
    daemon_factory: Callable[..., DaemonProcess], redis_client: redis.Redis, pool_name: str,
    data_dir: Path,
) -> None:
    """The failover case of docs/architecture.md, "Exactly once": the world was published,
    its record was lost (here: put back to `running`, its stream entry delivered again), and
    the job is taken again."""
    daemon = daemon_factory().start(wait_warm=1)
    accepted = submit(daemon.url, "LostRec01")
    assert accepted.status_code == 202, accepted.text
    first = wait_job(daemon.url, accepted.json()["job_id"])
    assert first["status"] == "succeeded", first
    job_id = first["job_id"]

    job_key = keys.key(keys.JOB_KEY_PREFIX, pool_name, job_id)
    stream = keys.key(keys.JOB_STREAM, pool_name)
    redis_client.hset(job_key, mapping={"status": "running", "message": "handing off"})
    redis_client.xadd(stream, {"job": job_id})

    def reclaimed() -> dict[str, Any] | None:
        job = get_job(daemon.url, job_id)
        return job if job["status"] == "succeeded" and job["attempts"] == 2 else None

    again = eventually(reclaimed, timeout=30)
    assert again["artifacts"] == first["artifacts"]  # same files, same digests
    log = daemon.log_path.read_text(errors="replace")
    assert log.count('"world published"') == 1, "the world was generated twice"
    assert '"job already generated; recorded its published world"' in log
    for artifact in again["artifacts"]:
        body = httpx.get(daemon.url + artifact["url"], timeout=10).content
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"]


def test_an_artifact_changed_after_its_job_finished_is_not_served(
    daemon_factory: Callable[..., DaemonProcess], data_dir: Path,
) -> None:
    """What a worker that kept a descriptor of its output could do: change a published file.
    The record's size and finish time are the serve-time check."""
    daemon = daemon_factory().start(wait_warm=1)
    job = wait_job(daemon.url, submit(daemon.url, "Changed01").json()["job_id"])
    assert job["status"] == "succeeded", job
    world = data_dir / "worlds" / job["job_id"]
    grown, touched = job["artifacts"][0], job["artifacts"][1]
    with (world / grown["name"]).open("ab") as f:
        f.write(b"appended later")
    later = job["finished_at"] + 3600
    os.utime(world / touched["name"], (later, later))  # same size, rewritten in place
    for artifact in (grown, touched):
        r = httpx.get(daemon.url + artifact["url"], timeout=10)
        assert r.status_code == 403, (artifact["name"], r.status_code)
        assert r.json()["error"]["code"] == "artifact_refused"
        assert "changed after the job recorded it" in r.json()["error"]["message"]
    untouched = job["artifacts"][2]
    assert httpx.get(daemon.url + untouched["url"], timeout=10).status_code == 200
