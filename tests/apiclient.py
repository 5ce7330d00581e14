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


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample of the daemon's /metrics, or None when it is not exported."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def readyz(url: str, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    r = httpx.get(f"{url}/readyz", timeout=timeout)
    return r.status_code, r.json()
