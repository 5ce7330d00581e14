"""Autoscaling on a real daemon: the target follows demand, then steps down to the floor."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from apiclient import eventually, pool_state, submit, wait_job
from conftest import ROOT, DaemonProcess

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


def test_boot_times_are_recorded_and_feed_the_simulator(
    daemon_factory: Callable[..., DaemonProcess], settings_env: dict[str, str],
    redis_client: redis.Redis, data_dir: Path,
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="2").start(wait_warm=2)
    key = f"{settings_env['VWE_POOL_NAME']}:boots"
    boots = eventually(lambda: (b := redis_client.lrange(key, 0, -1)) and len(b) >= 2 and b,
                       timeout=10)
    assert all(0 < float(b) < float(settings_env["VWE_BOOT_TIMEOUT_S"]) for b in boots)
    ids = [submit(d.url, f"sim{i}").json()["job_id"] for i in range(3)]
    assert all(wait_job(d.url, job_id)["status"] == "succeeded" for job_id in ids)
    run = subprocess.run(
        [str(ROOT / ".venv/bin/vwe-pool"), "simulate", "--from-redis", "--fit", "empirical",
         "--sizes", "0-1", "--json"],
        env={"PATH": os.environ["PATH"], **settings_env}, cwd=data_dir, capture_output=True,
        text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    inputs = json.loads(run.stdout)["inputs"]
    assert inputs["jobs"] == 3
    recorded = re.match(r"empirical:(\d+) values", inputs["boot"])
    assert recorded and int(recorded.group(1)) >= 2, inputs["boot"]
