"""Jobs through the HTTP API, the Redis queue and the pool: submit, track, download, recover."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from apiclient import eventually, get_job, submit, wait_job
from conftest import DaemonProcess, free_port

pytestmark = pytest.mark.integration


def test_submit_wait_download_artifacts_match_the_record(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory().start(wait_warm=1)
    accepted = submit(d.url, "MWd8eV6svz")
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "queued"
    assert accepted.json()["seed_hash"] == -1772362158
    job = wait_job(d.url, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["launch_type"] in ("warm", "cold") and job["attempts"] == 1
    assert job["finished_at"] >= job["started_at"] >= job["queued_at"]
    names = {a["name"] for a in job["artifacts"]}
    assert {"biomes.npy", "biomes.png", "world.json"} <= names
    for artifact in job["artifacts"]:
        r = httpx.get(d.url + artifact["url"], timeout=10)
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == artifact["sha256"]
        assert len(r.content) == artifact["size"]
        assert r.headers["content-type"].startswith(artifact["content_type"])
    world = json.loads(httpx.get(f"{d.url}/v1/jobs/{job['job_id']}/artifacts/world.json").content)
    assert world["seed"] == -1772362158


def test_same_seed_at_once_shares_one_generation_then_is_cached(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory().start(wait_warm=1)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        answers = list(ex.map(lambda _: submit(d.url, "twice"), range(4)))
    ids = {a.json()["job_id"] for a in answers}
    assert len(ids) == 1
    # The first is accepted; the others join it (202) or, if it already finished, hit the cache.
    assert answers[0].status_code in (200, 202)
    assert all(a.status_code in (200, 202) for a in answers)
    done = wait_job(d.url, ids.pop())
    assert done["status"] == "succeeded" and done["attempts"] == 1
    again = submit(d.url, "twice")
    assert again.status_code == 200
    assert again.json()["status"] == "succeeded"
    assert again.json()["job_id"] == done["job_id"]
    assert again.json()["cached"] is True
    # The first cached answer came from Redis; this one from the API's memory: the same bytes.
    from_memory = submit(d.url, "twice")
    assert from_memory.status_code == 200 and from_memory.content == again.content
    metrics = httpx.get(f"{d.url}/metrics").text
    cached_before = sum(a.status_code == 200 for a in answers)
    assert f'vwe_jobs_total{{status="cached"}} {2.0 + cached_before}' in metrics
    assert 'vwe_jobs_total{status="succeeded"} 1.0' in metrics


def _succeeded_lines(logs: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in logs.splitlines():
        if '"job succeeded"' in line:
            job_id = json.loads(line)["job_id"]
            counts[job_id] = counts.get(job_id, 0) + 1
    return counts


def test_kill9_with_jobs_queued_and_running_each_succeeds_exactly_once(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    first = daemon_factory(VWE_POOL_SIZE="1", VWE_POOL_MAX="2",
                           VWE_MAP_RESOLUTION="4096").start(wait_warm=1)
    ids = [submit(first.url, f"crash{i}").json()["job_id"] for i in range(4)]
    eventually(lambda: get_job(first.url, ids[0])["status"] == "running", interval=0.01)
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    second = daemon_factory(VWE_POOL_SIZE="1", VWE_POOL_MAX="2",
                            VWE_MAP_RESOLUTION="4096").start()
    done = [wait_job(second.url, job_id, timeout=90) for job_id in ids]
    assert [j["status"] for j in done] == ["succeeded"] * 4, done
    counts = _succeeded_lines(first.logs() + second.logs())
    assert {job_id: counts.get(job_id, 0) for job_id in ids} == dict.fromkeys(ids, 1)


@pytest.fixture
def private_redis(data_dir: Path) -> Iterator[Callable[[bool], str]]:
    """A Redis of this test's own, so it can be stopped and started again."""
    port = free_port()
    folder = data_dir / "redis"
    folder.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def run(up: bool) -> str:
        if up:
            procs.append(subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                 "127.0.0.1", "--dir", str(folder), "--appendonly", "yes", "--save", ""],
                stdout=subprocess.DEVNULL))
            eventually(lambda: _pings(port), timeout=10, interval=0.05)
        else:
            procs[-1].terminate()
            procs[-1].wait(10)
        return f"redis://127.0.0.1:{port}/0"

    yield run
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(10)


def _pings(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.ConnectionError:
        return False


def test_redis_down_gives_503_and_the_daemon_recovers_without_restart(
    daemon_factory: Callable[..., DaemonProcess], private_redis: Callable[[bool], str],
) -> None:
    url = private_redis(True)
    d = daemon_factory(VWE_REDIS_URL=url).start(wait_warm=1)
    before = wait_job(d.url, submit(d.url, "before").json()["job_id"])
    assert before["status"] == "succeeded"
    private_redis(False)
    down = submit(d.url, "during")
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "redis_unavailable"
    assert httpx.get(f"{d.url}/readyz").status_code == 503
    # The dispatcher, too, has met the outage before Redis comes back.
    eventually(lambda: "redis unreachable" in d.logs(), timeout=20)
    private_redis(True)
    after = eventually(lambda: (r := submit(d.url, "after")).status_code == 202 and r, timeout=20)
    done = wait_job(d.url, after.json()["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    # Accepted before the outage, still there afterwards (AOF).
    assert get_job(d.url, before["job_id"])["status"] == "succeeded"


def test_patch_pool_takes_effect_and_persists(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    # The token and the body's validation are tested in process (test_validation.py).
    d = daemon_factory(VWE_API_TOKEN="s3cret").start(wait_warm=1)
    assert httpx.patch(f"{d.url}/v1/pool", json={"size": 2}).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    bad = httpx.patch(f"{d.url}/v1/pool", json={"size": 9, "max": 3}, headers=auth)
    assert bad.status_code == 409 and "size" in bad.json()["error"]["message"]
    ok = httpx.patch(f"{d.url}/v1/pool", json={"size": 2, "max": 3, "surplus_idle_s": 15},
                     headers=auth)
    assert ok.status_code == 200 and ok.json()["size"] == 2
    assert ok.json()["surplus_idle_s"] == 15
    eventually(lambda: sum(c["state"] == "warm"
                           for c in httpx.get(f"{d.url}/v1/pool").json()["containers"]) == 2,
               timeout=20)
    assert 'vwe_pool_target{template="default"} 2.0' in httpx.get(f"{d.url}/metrics").text
    d.stop()
    again = daemon_factory(VWE_API_TOKEN="s3cret").start(wait_warm=2)
    persisted = httpx.get(f"{again.url}/v1/pool").json()
    assert persisted["size"] == 2 and persisted["surplus_idle_s"] == 15
