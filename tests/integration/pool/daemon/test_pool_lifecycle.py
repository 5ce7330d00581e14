"""The warm pool against the real Docker engine and the real Redis, through a real daemon."""

from __future__ import annotations

import concurrent.futures
import os
import signal
from collections.abc import Callable

import docker
import httpx
import pytest
import redis
from apiclient import eventually, get_job, pool_state, submit, wait_job, warm_names
from conftest import DaemonProcess

from pool.store import keys

pytestmark = pytest.mark.integration


def managed(docker_client: docker.DockerClient, pool_name: str) -> set[str]:
    """Names of the pool's containers, from one list call: the pool may remove one at any
    moment, so no per-container inspect."""
    rows = docker_client.api.containers(all=True, filters={"label": f"vwe.pool={pool_name}"})
    return {row["Names"][0].lstrip("/") for row in rows}


def test_pool_fills_and_sequential_jobs_are_warm(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="2", VWE_POOL_MAX="4").start(wait_warm=2)
    assert len(managed(docker_client, pool_name)) == 2
    for i in range(4):
        job = submit(d.url, f"seq{i}").json()
        done = wait_job(d.url, job["job_id"])
        assert done["status"] == "succeeded", done
        assert done["launch_type"] == "warm"
        assert done["attempts"] == 1
        eventually(lambda: len(warm_names(d.url)) >= 2, timeout=15)
    # Back to size, and never a container the pool does not track.
    state = pool_state(d.url)
    tracked = {c["name"] for c in state["containers"]}
    eventually(lambda: managed(docker_client, pool_name) <= tracked, timeout=10)


def test_sequential_jobs_reuse_the_container_back_from_the_last_one(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    # The first lease boots a replacement; from then on the container back from each job
    # (kept for VWE_SURPLUS_IDLE_S) serves the next: no boot per job.
    d = daemon_factory(VWE_POOL_SIZE="1", VWE_POOL_MAX="3").start(wait_warm=1)
    seen = set(managed(docker_client, pool_name))
    for i in range(5):
        done = wait_job(d.url, submit(d.url, f"reuse{i}").json()["job_id"])
        assert done["status"] == "succeeded" and done["launch_type"] == "warm", done
        eventually(lambda: len(warm_names(d.url)) >= 2, timeout=15)
        seen |= managed(docker_client, pool_name)
    assert len(seen) == 2, seen


def test_worker_containers_are_hardened(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    daemon_factory(VWE_POOL_SIZE="1").start(wait_warm=1)
    (name,) = managed(docker_client, pool_name)
    container = docker_client.containers.get(name)
    host = container.attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0
    assert "/tmp" in host["Tmpfs"]
    assert container.attrs["Config"]["User"] not in ("", "0", "root")
    assert not any("docker.sock" in m["Source"] for m in container.attrs["Mounts"])
    labels = container.labels
    assert {"vwe.pool", "vwe.template", "vwe.owner", "vwe.created", "vwe.uses"} <= set(labels)


def test_pool_of_one_runs_three_concurrent_jobs(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="1", VWE_POOL_MAX="2",
                       VWE_MAP_RESOLUTION="1024").start(wait_warm=1)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        jobs = list(ex.map(lambda s: submit(d.url, s).json(), ["con1", "con2", "con3"]))
    done = [wait_job(d.url, j["job_id"], timeout=90) for j in jobs]
    assert all(j["status"] == "succeeded" for j in done), done
    launches = sorted(j["launch_type"] for j in done)
    assert launches.count("warm") >= 1
    assert len(pool_state(d.url)["containers"]) <= 2


def test_killed_warm_container_is_replaced(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="1").start(wait_warm=1)
    (victim,) = warm_names(d.url)
    docker_client.containers.get(victim).kill()
    new = eventually(lambda: warm_names(d.url) - {victim}, timeout=20)
    assert victim not in warm_names(d.url) and len(new) == 1
    eventually(lambda: victim not in managed(docker_client, pool_name), timeout=10)
    job = wait_job(d.url, submit(d.url, "afterkill").json()["job_id"])
    assert job["status"] == "succeeded"


def test_busy_container_killed_mid_job_is_retried_elsewhere(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="2", VWE_MAP_RESOLUTION="4096").start(wait_warm=2)
    job_id = submit(d.url, "killme").json()["job_id"]

    def container_of() -> str | None:
        job = httpx.get(f"{d.url}/v1/jobs/{job_id}", timeout=5).json()
        return _container(d, job_id) if job["status"] == "running" and job["launch_type"] else None

    victim = eventually(container_of, timeout=20, interval=0.01)
    docker_client.containers.get(victim).kill()
    done = wait_job(d.url, job_id, timeout=60)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert _container(d, job_id) != victim


def _container(d: DaemonProcess, job_id: str) -> str | None:
    r = redis.Redis.from_url(d.env["VWE_REDIS_URL"], decode_responses=True)
    value = r.hget(keys.key(keys.JOB_KEY_PREFIX, d.env["VWE_POOL_NAME"], job_id), "container")
    return str(value) if value else None


def test_kill9_then_restart_leaves_no_untracked_container(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    first = daemon_factory(VWE_POOL_SIZE="2", VWE_MAP_RESOLUTION="4096").start(wait_warm=2)
    job_id = submit(first.url, "kill9").json()["job_id"]
    eventually(lambda: get_job(first.url, job_id)["status"] == "running",
               interval=0.01)
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    before = managed(docker_client, pool_name)
    assert before, "the killed daemon's containers should still exist"

    second = daemon_factory(VWE_POOL_SIZE="2", VWE_MAP_RESOLUTION="4096").start()

    def converged() -> bool:
        tracked = {c["name"] for c in pool_state(second.url)["containers"]
                   if c["daemon"] == second.env["VWE_INSTANCE_ID"]}
        actual = managed(docker_client, pool_name)
        return actual == tracked and len(warm_names(second.url)) >= 2

    eventually(converged, timeout=40, interval=0.5)
    # The job accepted before the crash still completes, exactly once.
    done = wait_job(second.url, job_id, timeout=60)
    assert done["status"] == "succeeded", done


def test_sigterm_drains_and_removes_every_container(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    d = daemon_factory(VWE_POOL_SIZE="2").start(wait_warm=2)
    job_id = submit(d.url, "drain").json()["job_id"]
    # A job in flight when the signal comes: the drain lets it finish.
    eventually(lambda: get_job(d.url, job_id)["status"] in ("running", "succeeded"),
               interval=0.01)
    assert d.stop(timeout=60) == 0
    assert managed(docker_client, pool_name) == set()
    status = redis.Redis.from_url(d.env["VWE_REDIS_URL"]).hget(
        f"{pool_name}:job:{job_id}", "status")
    assert status == b"succeeded"
