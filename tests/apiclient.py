"""Small HTTP helpers for tests that drive a real daemon through its API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def submit(url: str, seed: str, **options: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/worlds", json={"seed": seed, **options}, timeout=10)


def wait_job(url: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/v1/jobs/{job_id}", params={"wait": 2}, timeout=10)
        assert r.status_code == 200, f"GET job {job_id}: {r.status_code} {r.text}"
        job: dict[str, Any] = r.json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job


def pool_state(url: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{url}/v1/pool", timeout=10).json()
    return result


def warm_names(url: str) -> set[str]:
    return {c["name"] for c in pool_state(url)["containers"] if c["state"] == "warm"}


def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll until `check()` is truthy; return its value, or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    assert value, f"condition not met within {timeout} s (last value: {value!r})"
    return value


def get_job(url: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()
    return job
