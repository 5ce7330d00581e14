"""A Docker engine restart (issue 12, failure 9) on a second engine of the test's own: an
engine outage, not image failures; boots resume as soon as it answers again."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from apiclient import eventually, metric, pool_state, readyz, submit, wait_job
from conftest import DaemonProcess
from ownprocs import Dockerd

pytestmark = pytest.mark.integration


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_engine_restart_is_an_outage_not_a_boot_failure(
    daemon_factory: Callable[..., DaemonProcess], own_dockerd: Dockerd, pool_name: str,
) -> None:
    d = daemon_factory(DOCKER_HOST=own_dockerd.host, VWE_POOL_SIZE="2", VWE_POOL_MAX="3",
                       VWE_BOOT_BACKOFF_S="1", VWE_BOOT_BACKOFF_MAX_S="60").start(wait_warm=2)
    boot_failures = metric(d.url, "vwe_container_failures_total", template="default",
                           phase="boot")
    before = {c["name"] for c in pool_state(d.url)["containers"]}
    own_dockerd.stop()  # stops its containers, as a real engine restart does
    _, body = eventually(lambda: (r := readyz(d.url))[0] == 503 and r, timeout=10)
    assert "docker" in body["down"], body
    jobs = [submit(d.url, f"engine{i}").json()["job_id"] for i in range(4)]
    eventually(lambda: metric(d.url, "vwe_up", component="docker") == 0.0, timeout=5)
    time.sleep(5)  # the outage lasts a while: boots would have been tried and failed

    own_dockerd.start()
    back = time.monotonic()
    # Boots resume within a second or two of the engine answering (no back-off to sit out).
    eventually(lambda: any(c["name"] not in before for c in pool_state(d.url)["containers"]),
               timeout=5)
    assert time.monotonic() - back < 5
    for job_id in jobs:
        done = wait_job(d.url, job_id, timeout=60)
        assert done["status"] == "succeeded", done
    eventually(lambda: readyz(d.url)[0] == 200, timeout=10)
    assert metric(d.url, "vwe_container_failures_total", template="default",
                  phase="boot") == boot_failures
    assert d.stop(timeout=60) == 0, d.logs()
    client = own_dockerd.client()
    try:
        left = client.api.containers(all=True, filters={"label": f"vwe.pool={pool_name}"})
    finally:
        client.close()
    assert left == []
