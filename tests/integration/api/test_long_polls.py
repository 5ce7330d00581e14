"""Long-polls (issue 12, failures 4 and 5): a wait ends when its client hangs up, and at
shutdown every open wait is answered at once in the JSON error model."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Callable
from urllib.parse import urlparse

import httpx
import pytest
from apiclient import eventually, metric, submit
from conftest import DaemonProcess

pytestmark = pytest.mark.integration

ROUTE = "/v1/jobs/{job_id}"
# A worker that never answers readiness: a job submitted stays unfinished.
STUCK = {"VWE_POOL_SIZE": "1", "VWE_WORKER_READY_DELAY_S": "1000", "VWE_BOOT_TIMEOUT_S": "300",
         "VWE_JOB_TIMEOUT_S": "300"}


def answered(url: str) -> float:
    """GET /v1/jobs/{id} requests the server has finished, whatever their code."""
    total = 0.0
    for code in ("200", "499", "503", "404"):
        total += metric(url, "vwe_http_requests_total", method="GET", route=ROUTE,
                        code=code) or 0.0
    return total


def hang_up_after(url: str, path: str, seconds: float) -> None:
    parts = urlparse(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        time.sleep(seconds)


def test_long_polls_end_when_their_clients_hang_up(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory(**STUCK).start(ready=False)
    job = submit(d.url, "waitme").json()
    before = answered(d.url)
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        list(pool.map(lambda _: hang_up_after(d.url, f"/v1/jobs/{job['job_id']}?wait=20",
                                              0.3), range(50)))
    # All 50 handlers are done within seconds, not when their 20 s run out.
    eventually(lambda: answered(d.url) - before >= 50, timeout=5)


def test_shutdown_answers_open_long_polls_at_once_in_json(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory(**STUCK).start(ready=False)
    job = submit(d.url, "waitlong").json()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(httpx.get, f"{d.url}/v1/jobs/{job['job_id']}",
                              params={"wait": 300}, timeout=60)
        eventually(lambda: metric(d.url, "vwe_http_requests_total", method="GET",
                                  route="/metrics", code="200") is not None, timeout=5)
        time.sleep(0.5)  # the request is in its wait (nothing observable to await)
        started = time.monotonic()
        assert d.proc is not None
        d.proc.terminate()
        r = waiting.result(timeout=30)
        assert time.monotonic() - started < 3, "the long-poll was not answered at once"
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "shutting_down"
    assert int(r.headers["Retry-After"]) > 0
    assert d.proc.wait(60) == 0, d.logs()
