"""A job that needs more memory than the worker has (issue 12, resource bounds): the kernel's
OOM kill is named, with the limit and `VWE_WORKER_MEMORY`, and the job fails at once instead
of killing a container on every attempt. Real daemon, real engine, real Redis."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from apiclient import submit, wait_job
from conftest import DaemonProcess

pytestmark = pytest.mark.integration

# Small enough that a 4096-cell height map cannot fit, big enough for the agent to boot.
MEMORY = "160m"


@pytest.mark.slow
def test_an_out_of_memory_worker_fails_the_job_at_once_naming_the_limit(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory(VWE_WORKER_MEMORY=MEMORY, VWE_JOB_MAX_ATTEMPTS="3").start(wait_warm=1)
    r = httpx.post(f"{d.url}/v1/worlds", json={"seed": "oomheavy", "layers": ["heights"],
                                                "resolution": 4096}, timeout=10)
    assert r.status_code == 202, r.text
    job = wait_job(d.url, r.json()["job_id"], timeout=90)
    assert job["status"] == "failed", job
    assert job["attempts"] == 1, job  # deterministic: not retried
    assert "out of memory" in job["error"], job
    assert f"VWE_WORKER_MEMORY={MEMORY}" in job["error"], job
    assert d.metric("vwe_jobs_total", status="retried") == 0.0
    assert d.metric("vwe_container_failures_total", template="default",
                    phase="generation") == 1.0
    # One container lost, not three; the pool goes on serving.
    ok = wait_job(d.url, submit(d.url, "afteroom").json()["job_id"], timeout=60)
    assert ok["status"] == "succeeded", ok
