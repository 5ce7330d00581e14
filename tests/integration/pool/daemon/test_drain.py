"""The drain (SIGTERM) against a real daemon, engine and Redis: once draining starts the pool
boots nothing (issue 12, shutdown), and a job the drain timeout cuts off retires its container
for `drain`, not as `unhealthy`."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from datetime import datetime

import docker
import httpx
import pytest
import redis
from apiclient import eventually, get_job
from conftest import DaemonProcess

from pool.store import keys

pytestmark = pytest.mark.integration

# A job that outlives a 1 s drain timeout on any machine: a 4096-cell biome map.
HEAVY = {"layers": ["biomes"], "resolution": 4096}


@pytest.mark.slow
def test_a_drain_boots_nothing_and_a_cut_off_job_retires_its_container_for_drain(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="2", VWE_POOL_MAX="4", VWE_DRAIN_TIMEOUT_S="1",
                       VWE_WORKER_MEMORY="2g", VWE_JOB_TIMEOUT_S="300").start(wait_warm=2)

    def post(i: int) -> str:
        r = httpx.post(f"{d.url}/v1/worlds", json={"seed": f"drain{i}", **HEAVY}, timeout=10)
        assert r.status_code == 202, r.text
        return str(r.json()["job_id"])

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        ids = list(ex.map(post, range(4)))
    # Every container busy (2 warm, 2 cold): each finished job would want a replacement.
    eventually(lambda: sum(get_job(d.url, i)["status"] == "running" for i in ids) >= 2,
               timeout=60)
    since = int(time.time())
    assert d.stop(timeout=90) == 0, d.logs()
    until = int(time.time()) + 1

    draining = d.events("draining")
    assert draining and int(str(draining[0]["inflight"])) >= 2, d.logs()
    # Cold boots for the jobs beyond the warm two may still start before the drain: only
    # creates after the drain began count.
    drain_began_ns = int(datetime.fromisoformat(str(draining[0]["timestamp"])).timestamp() * 1e9)
    creates = [e for e in docker_client.events(
        since=since, until=until, decode=True,
        filters={"label": f"vwe.pool={pool_name}", "type": "container", "event": "create"})
        if int(e["timeNano"]) > drain_began_ns]
    assert creates == [], f"{len(creates)} container(s) booted during the drain"
    reasons = {str(e["reason"]) for e in d.events("container retiring")}
    assert "unhealthy" not in reasons, d.logs()
    assert "drain" in reasons, d.logs()  # the cut-off jobs' containers
    # The cut-off jobs went back to the queue, not lost and not failed.
    r = redis.Redis.from_url(d.env["VWE_REDIS_URL"], decode_responses=True)
    statuses = [r.hget(keys.key(keys.JOB_KEY_PREFIX, pool_name, i), "status") for i in ids]
    assert "failed" not in statuses, statuses
    assert "queued" in statuses, statuses
