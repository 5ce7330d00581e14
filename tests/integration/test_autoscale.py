"""Autoscaling on a real daemon: the target follows demand, then steps down to the floor."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from apiclient import eventually, pool_state, submit, wait_job
from conftest import DaemonProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(180)
def test_target_follows_demand_and_steps_down(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory(VWE_AUTOSCALE="true", VWE_POOL_MIN="1", VWE_POOL_MAX="3",
                       VWE_AUTOSCALE_WINDOW_S="8").start(wait_warm=1)
    eventually(lambda: pool_state(d.url)["autoscale_reason"] == "min", timeout=15)
    ids = [submit(d.url, f"burst{i}").json()["job_id"] for i in range(12)]
    raised = eventually(lambda: (p := pool_state(d.url))["target"] >= 2 and p, timeout=15)
    assert raised["autoscale_reason"] in ("demand", "max")
    exported = [line for line in httpx.get(f"{d.url}/metrics").text.splitlines()
                if line.startswith('vwe_autoscale_target{reason="')
                and 'template="default"' in line]
    assert len(exported) == 1 and float(exported[0].rsplit(" ", 1)[1]) >= 1
    assert all(wait_job(d.url, job_id, timeout=90)["status"] == "succeeded" for job_id in ids)
    # With no arrivals in the window the target falls one step per decision, to the floor.
    final = eventually(lambda: (p := pool_state(d.url))["target"] == 1 and p, timeout=60,
                       interval=0.5)
    assert final["autoscale_reason"] in ("min", "step_down")
