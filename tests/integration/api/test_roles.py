"""`vwe-pool serve --role api|worker`: an API process without Docker, a worker without intake."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from apiclient import submit, wait_job
from conftest import DaemonProcess

pytestmark = pytest.mark.integration


def test_api_and_worker_roles_split_one_daemon(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    worker = daemon_factory().start(wait_warm=1, role="worker")
    # The API process gets an engine address where no engine is: it must not need one.
    api = daemon_factory(DOCKER_HOST="unix:///nonexistent/docker.sock").start(role="api")

    ready = httpx.get(f"{api.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"redis"}
    assert ready.json()["workers"] == 1

    # The worker takes no jobs over HTTP and serves only its operational routes.
    assert submit(worker.url, "RoleSeed").status_code == 404
    assert httpx.get(f"{worker.url}/v1/pool", timeout=5).status_code == 404
    assert httpx.get(f"{worker.url}/healthz", timeout=5).status_code == 200
    wready = httpx.get(f"{worker.url}/readyz", timeout=5).json()
    assert wready["checks"]["docker"] is True and wready["warm"] >= 1
    paths = set(httpx.get(f"{worker.url}/openapi.json", timeout=5).json()["paths"])
    assert paths == {"/healthz", "/readyz", "/metrics"}

    # A job accepted by the API process runs on the worker; the API serves its files.
    accepted = submit(api.url, "RoleSeed")
    assert accepted.status_code == 202
    job = wait_job(api.url, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert httpx.get(api.url + job["artifacts"][0]["url"], timeout=10).status_code == 200
    pool = httpx.get(f"{api.url}/v1/pool", timeout=5).json()
    assert pool["containers"] and {c["daemon"] for c in pool["containers"]} == {
        worker.env["VWE_INSTANCE_ID"]}
    metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
    assert 'vwe_jobs_total{status="succeeded"} 1.0' in metrics
