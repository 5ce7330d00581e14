"""Bounded attempts and truthful readiness (issue 12, failures 2 and 10), through a real daemon
on the real engine and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import httpx
import pytest
import redis
from apiclient import eventually, readyz, submit, wait_job
from conftest import DaemonProcess

pytestmark = pytest.mark.integration

NEVER_BOOTS = [
    pytest.param({"VWE_WORKER_IMAGE": "vwe-base:bookworm"}, id="image-exits-at-once"),
    pytest.param({"VWE_WORKER_READY_DELAY_S": "1000"}, id="agent-never-ready"),
]


@pytest.mark.slow
@pytest.mark.parametrize("env", NEVER_BOOTS)
def test_a_worker_that_never_boots_fails_the_job_after_its_attempts(
    daemon_factory: Callable[..., DaemonProcess], redis_client: redis.Redis,
    docker_client: docker.DockerClient, pool_name: str, env: dict[str, str],
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="1", VWE_JOB_TIMEOUT_S="10", VWE_JOB_MAX_ATTEMPTS="2",
                       VWE_BOOT_BACKOFF_S="0.5", VWE_BOOT_BACKOFF_MAX_S="2",
                       VWE_BOOT_TIMEOUT_S="60", **env).start(ready=False)
    job = submit(d.url, "neverboot").json()
    started = time.monotonic()
    done = wait_job(d.url, job["job_id"], timeout=45)
    assert done["status"] == "failed", done
    assert done["attempts"] == 2, done
    # The last boot error or the attempt's deadline, never "handing off" for ever.
    assert "boot" in done["error"] or "VWE_JOB_TIMEOUT_S" in done["error"], done["error"]
    assert time.monotonic() - started < 40
    if env.get("VWE_WORKER_IMAGE"):
        # An empty pool whose boots fail cannot take a job: not ready, and says why.
        _, body = eventually(lambda: (r := readyz(d.url))[0] == 503 and r, timeout=10)
        assert "pool" in body["down"] and "boot" in body["reasons"]["pool"], body
    # A second job submitted now is not left `running` by SIGTERM either.
    second = submit(d.url, "neverboot2").json()
    eventually(lambda: httpx.get(f"{d.url}/v1/jobs/{second['job_id']}").json()["status"]
               == "running", timeout=15)
    assert d.stop(timeout=60) == 0, d.logs()
    record = redis_client.hget(f"{pool_name}:job:{second['job_id']}", "status")
    assert record == b"queued", record  # given back, not `running` without an owner
    rows = docker_client.api.containers(all=True, filters={"label": f"vwe.pool={pool_name}"})
    assert rows == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_after_kill_9_busy_containers_working_the_backlog_are_ready(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    env = {"VWE_POOL_SIZE": "2", "VWE_POOL_MAX": "2", "VWE_MAP_RESOLUTION": "1024",
           "VWE_RECLAIM_IDLE_S": "5"}
    d = daemon_factory(**env).start(wait_warm=2)
    jobs = [submit(d.url, f"kill9-{i}").json()["job_id"] for i in range(16)]
    eventually(lambda: httpx.get(f"{d.url}/v1/jobs/{jobs[0]}").json()["status"]
               != "queued", timeout=20)
    d.kill()
    again = daemon_factory(**env).start(ready=False, timeout=60)  # serving HTTP
    started = time.monotonic()
    # Ready as soon as it can take a job: it can boot, then its containers are busy with the
    # backlog; never "not booted" while serving.
    eventually(lambda: readyz(again.url)[0] == 200, timeout=10)
    ready_after = time.monotonic() - started
    assert ready_after < 10
    backlog = [j for j in jobs if httpx.get(f"{again.url}/v1/jobs/{j}").json()["status"]
               != "succeeded"]
    assert backlog, "the backlog was gone before readiness was checked"
    while backlog:  # every probe during the backlog says ready
        status, body = readyz(again.url)
        assert status == 200, body
        backlog = [j for j in backlog
                   if httpx.get(f"{again.url}/v1/jobs/{j}").json()["status"] != "succeeded"]
        if time.monotonic() - started > 180:
            pytest.fail(f"backlog not worked off: {backlog}")
        time.sleep(0.2)
    for job_id in jobs:
        assert wait_job(again.url, job_id)["status"] == "succeeded"
