"""Issue 16's proof: three hosts (own dockerd each), two API processes, Redis with Sentinel,
one shared worlds folder; a host and the Redis primary die under steady load."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from multihost import prove
from redisha import have_binaries

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(900)  # three engines, five Redis processes, two failures and a drain
def test_a_host_and_the_redis_primary_die_and_no_job_is_lost_or_run_twice() -> None:
    missing = have_binaries()
    if missing:
        pytest.fail(missing)
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is missing: run scripts/ensure-docker.sh")
    root = Path(tempfile.mkdtemp(prefix="vwe-mh-", dir="/tmp"))
    try:
        report = prove(root, rate=4.0, hosts=3, replicas=2, min_replicas=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(report)
    assert report["host_killed_mid_job"], "the host died with no job running on it"
    assert report["accepted"] > 50
    assert report["lost"] == 0, report
    assert report["duplicated"] == 0, report
    assert report["failed"] == 0, report
    assert report["finished_exactly_once"] == report["accepted"], report
    # The dead host's jobs were taken over by the others, its containers cleaned up when it
    # came back, and nothing is left once every daemon drained.
    assert report["jobs_reclaimed"] >= 1, report
    assert report["orphans_removed"] >= 1, report
    assert report["leaked_containers"] == 0, report
    assert report["engines_removed"], report  # the run's engines folder, mounts and all
    assert 0 < report["failover_s"] < 30, report
