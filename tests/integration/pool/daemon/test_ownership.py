"""The pool owns exactly its own containers (issue 13): real daemons, real engine, real Redis.

One test per failure of the issue (1-6), the freeze-and-burst acceptance test, the slow engine
(a delaying proxy in front of the real engine's socket), and deployment identity.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import redis
from apiclient import eventually, pool_state, submit, wait_job
from conftest import RUN_ID, WORKER_IMAGE, DaemonProcess
from slowdocker import DelayingDockerProxy

from pool.store import keys

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
# Short leases keep these tests short; the default is 10 s.
TTL = "4"


def managed(docker_client: docker.DockerClient, pool_name: str) -> set[str]:
    rows = docker_client.api.containers(all=True, filters={"label": f"vwe.pool={pool_name}"})
    return {row["Names"][0].lstrip("/") for row in rows}


def owners(d: DaemonProcess) -> dict[str, str]:
    """Container name -> owning instance, from the owner records in Redis."""
    r = redis.Redis.from_url(d.env["VWE_REDIS_URL"])
    prefix = f"{d.env['VWE_POOL_NAME']}:owner:"
    keys = list(r.scan_iter(match=prefix + "*"))
    values = r.mget(keys) if keys else []
    r.close()
    return {k.decode()[len(prefix):]: _text(v).partition(":")[2]
            for k, v in zip(keys, values, strict=True) if v}


def owned_by(d: DaemonProcess) -> set[str]:
    return {name for name, owner in owners(d).items() if owner == d.instance}


def run_jobs(daemons: list[DaemonProcess], n: int, prefix: str,
             timeout: float = 90) -> list[dict[str, object]]:
    """`n` jobs submitted at once, spread over `daemons`; their final records."""
    def one(i: int) -> dict[str, object]:
        d = daemons[i % len(daemons)]
        return wait_job(d.url, submit(d.url, f"{prefix}{i}").json()["job_id"], timeout=timeout)

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(one, range(n)))


def taken_over_in_log(d: DaemonProcess) -> set[str]:
    """Containers the daemon's log says it took over."""
    names = set()
    for line in d.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "container taken over":
                names.add(entry["container"])
    return names


def assert_all_first_try(jobs: list[dict[str, object]]) -> None:
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    assert [j["attempts"] for j in jobs] == [1] * len(jobs), jobs


@pytest.fixture(scope="module")
def alt_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """The worker image again under another image id (one more label)."""
    tag = f"vwe-worker:alt-{RUN_ID}"
    dockerfile = f"FROM {WORKER_IMAGE}\nLABEL vwe.test.variant=alt-{RUN_ID}\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


# ---------------------------------------------------------------- failure 1
def test_a_second_daemon_with_a_live_instance_id_refuses_to_start(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    first = daemon_factory(VWE_POOL_SIZE="2", VWE_POOL_MAX="4").start(wait_warm=2,
                                                                      instance_id="dup")
    mine = owned_by(first)
    assert len(mine) == 2
    second = daemon_factory(VWE_POOL_SIZE="2", VWE_POOL_MAX="4")
    with pytest.raises(RuntimeError, match="VWE_INSTANCE_ID='dup' is held by another live"):
        second.start(instance_id="dup", timeout=30)
    assert second.proc is not None and second.proc.returncode != 0
    # The first daemon keeps its containers and runs every job at the first attempt.
    assert mine <= owned_by(first) and mine <= managed(docker_client, pool_name)
    assert_all_first_try(run_jobs([first], 6, "dup"))


def test_a_restart_with_the_same_instance_id_after_kill9_waits_out_the_old_lease(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    env = {"VWE_POOL_SIZE": "1", "VWE_HEARTBEAT_TTL_S": TTL}
    first = daemon_factory(**env).start(wait_warm=1, instance_id="fixed")
    old = owned_by(first)
    first.kill()
    # The killed process's lease is not renewed: the restart waits it out instead of refusing.
    again = daemon_factory(**env).start(wait_warm=1, instance_id="fixed", timeout=60)
    eventually(lambda: old <= owned_by(again), timeout=30, interval=0.5)
    assert again.metric("vwe_takeovers_total", template="default") >= len(old)
    assert_all_first_try(run_jobs([again], 2, "fixed"))


def test_sigterm_of_one_daemon_removes_only_its_own_containers(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    a = daemon_factory(VWE_POOL_SIZE="2", VWE_POOL_MAX="4").start(wait_warm=2)
    b = daemon_factory(VWE_POOL_SIZE="2", VWE_POOL_MAX="4").start(wait_warm=2)
    a_names, b_names = owned_by(a), owned_by(b)
    assert len(a_names) == 2 and len(b_names) == 2 and not a_names & b_names
    assert a.stop(timeout=60) == 0
    left = managed(docker_client, pool_name)
    assert not a_names & left and b_names <= left
    assert_all_first_try(run_jobs([b], 3, "term"))


# ---------------------------------------------------------------- failure 2 + acceptance
def test_a_frozen_daemon_resumed_never_uses_what_was_taken_over(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    env = {"VWE_POOL_SIZE": "2", "VWE_POOL_MAX": "4", "VWE_HEARTBEAT_TTL_S": TTL}
    e1 = daemon_factory(**env).start(wait_warm=2)
    e2 = daemon_factory(**env).start(wait_warm=2)
    e1_names = owned_by(e1)
    assert e1.proc is not None
    frozen_at = time.monotonic()
    os.kill(e1.proc.pid, signal.SIGSTOP)
    try:
        # Frozen past its TTL, e1 is dead to e2, which takes its warm containers over.
        eventually(lambda: e1_names <= owned_by(e2), timeout=30, interval=0.2)
        assert e2.metric("vwe_takeovers_total", template="default") >= len(e1_names)
        time.sleep(max(0.0, 2 * float(TTL) - (time.monotonic() - frozen_at)))
    finally:
        os.kill(e1.proc.pid, signal.SIGCONT)

    # Sample GET /v1/pool from both daemons all through the burst.
    seen: dict[str, set[str]] = {}
    stop = threading.Event()
    problems: list[str] = []

    def sample() -> None:
        while not stop.is_set():
            for d in (e1, e2):
                names = [(c["name"], c["daemon"]) for c in pool_state(d.url)["containers"]]
                if len({n for n, _ in names}) != len(names):
                    problems.append(f"a container listed twice by {d.instance}: {names}")
                for name, daemon in names:
                    seen.setdefault(name, set()).add(daemon)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        jobs = run_jobs([e1, e2], 12, "frz")
    finally:
        stop.set()
        sampler.join(10)
    assert not problems, problems[:3]
    assert seen and all(len(daemons) == 1 for daemons in seen.values()), seen
    assert all(seen[n] == {e2.instance} for n in e1_names if n in seen), seen
    assert_all_first_try(jobs)
    # e1 noticed: its lease lapsed, and it dropped the containers it no longer owns.
    assert e1.metric("vwe_lease_lost_total") >= 1
    assert e1.metric("vwe_fenced_containers_total", template="default") >= len(e1_names)


def test_a_slow_engine_does_not_lapse_the_lease(
    daemon_factory: Callable[..., DaemonProcess], data_dir: Path,
) -> None:
    proxy = DelayingDockerProxy(data_dir / "slow-docker.sock", delay_s=0).start()
    env = {"VWE_POOL_SIZE": "1", "VWE_POOL_MAX": "3", "VWE_HEARTBEAT_TTL_S": TTL}
    slow = daemon_factory(DOCKER_HOST=proxy.docker_host, **env)
    try:
        slow.start(wait_warm=1)
        peer = daemon_factory(**env).start(wait_warm=1)
        # From now on each engine ping of `slow` takes 7 s (the daemon then also counts the
        # engine as down and boots nothing: its containers must stay its own all the same).
        proxy.delay_s = 7
        slow_names = owned_by(slow)
        r = redis.Redis.from_url(slow.env["VWE_REDIS_URL"])
        lease_key = f"{slow.env['VWE_POOL_NAME']}:daemon:{slow.instance}"
        # Three TTLs, in which each engine ping of the slow daemon takes 7 s.
        delayed_before = proxy.delayed
        deadline = time.monotonic() + 3 * float(TTL)
        lowest = float("inf")
        while time.monotonic() < deadline:
            lowest = min(lowest, r.pttl(lease_key) / 1000)
            time.sleep(0.2)
        r.close()
        assert proxy.delayed - delayed_before >= 1, "the engine pings were not delayed"
        assert lowest > float(TTL) - 2.5, f"the lease ran down to {lowest} s"
        assert slow.metric("vwe_lease_lost_total") == 0
        assert peer.metric("vwe_takeovers_total", template="default") == 0
        assert slow_names and slow_names <= owned_by(slow)
    finally:
        # Drain through the proxy while it still runs, so nothing is left behind.
        proxy.delay_s = 0
        if slow.proc is not None:
            slow.stop(timeout=60)
        proxy.stop()


# ---------------------------------------------------------------- failure 3
@pytest.mark.parametrize("change", ["image", "spec"])
def test_a_restart_with_another_image_or_spec_never_serves_from_the_old_containers(
    change: str, daemon_factory: Callable[..., DaemonProcess],
    docker_client: docker.DockerClient, pool_name: str, alt_image: str,
) -> None:
    env = {"VWE_POOL_SIZE": "2", "VWE_POOL_MAX": "5", "VWE_HEARTBEAT_TTL_S": TTL}
    first = daemon_factory(**env).start(wait_warm=2)
    old = owned_by(first)
    first.kill()
    new_env = ({"VWE_WORKER_IMAGE": alt_image} if change == "image"
               else {"VWE_WORKER_MEMORY": "600m"})
    second = daemon_factory(**env, **new_env).start(wait_warm=2)
    # Once the killed daemon's lease runs out, the old containers are taken over ...
    eventually(lambda: second.metric("vwe_takeovers_total", template="default") >= len(old),
               timeout=30, interval=0.5)
    jobs = [wait_job(second.url, submit(second.url, f"img{change}{i}").json()["job_id"])
            for i in range(6)]
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    r = redis.Redis.from_url(second.env["VWE_REDIS_URL"])
    used = {_text(r.hget(keys.key(keys.JOB_KEY_PREFIX, pool_name, j["job_id"]), "container"))
            for j in jobs}
    r.close()
    # ... and never serve a job: they are retired (rolling) once the target is warm.
    assert not used & old, (used, old)
    eventually(lambda: not old & managed(docker_client, pool_name), timeout=30)
    assert second.metric("vwe_recycled_total", template="default",
                         reason="outdated") == len(old)


# ---------------------------------------------------------------- failure 4
@pytest.mark.parametrize(("env", "variable"), [
    ({"VWE_WORKER_IMAGE": "vwe-worker:no-such-image"}, "VWE_WORKER_IMAGE"),
    ({"VWE_WORKER_USER": "root"}, "VWE_WORKER_USER"),
    ({"VWE_WORKER_USER": "0:0"}, "VWE_WORKER_USER"),
    ({"VWE_DATA_DIR": "LONG"}, "VWE_DATA_DIR"),
    ({"VWE_WORKER_CPUS": "4096"}, "VWE_WORKER_CPUS"),  # more than the engine has
    ({"VWE_WORKER_MEMORY": "4096g"}, "VWE_WORKER_MEMORY"),
])
def test_settings_that_make_the_pool_unusable_stop_the_start_naming_the_variable(
    env: dict[str, str], variable: str, daemon_factory: Callable[..., DaemonProcess],
    docker_client: docker.DockerClient, pool_name: str, data_dir: Path,
) -> None:
    if env.get("VWE_DATA_DIR") == "LONG":
        long_dir = data_dir / ("d" * (80 - len(str(data_dir)) - 1))
        assert len(str(long_dir)) == 80
        env = {"VWE_DATA_DIR": str(long_dir)}
    d = daemon_factory(**env)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=variable):
        d.start(timeout=60)
    assert time.monotonic() - started < 30  # refused at start, not after endless boots
    assert d.proc is not None and d.proc.returncode != 0
    assert managed(docker_client, pool_name) == set()


def test_a_non_root_daemon_with_another_worker_uid_is_refused_naming_the_variable(
    data_dir: Path,
) -> None:
    # The daemon's own interpreter lives under /root (mode 0700 here), so a process of uid
    # 10002 runs the very start-up check with the system python3 on this tree.
    data_dir.chmod(0o777)
    code = ("import sys; from pool.daemon.preflight import check_settings\n"
            f"check_settings(__import__('pathlib').Path({str(data_dir / 'data')!r}), "
            "'vwe', 'default', '10001:10001')")
    proc = subprocess.run(["/usr/bin/python3", "-c", code], user=10002, group=10002,
                          extra_groups=[105], env={"PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert "VWE_WORKER_USER=10001:10001 cannot work with a daemon running as uid 10002" \
        in proc.stderr, proc.stderr
    assert sys.executable  # the daemon proper is exercised by the root-run tests above


# ---------------------------------------------------------------- failure 5
def test_a_quick_restart_after_kill9_then_sigterm_leaves_no_container(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    env = {"VWE_POOL_SIZE": "2", "VWE_POOL_MAX": "4"}  # the default 10 s lease
    first = daemon_factory(**env).start(wait_warm=2)
    killed = owned_by(first)
    first.kill()
    second = daemon_factory(**env).start(wait_warm=2)
    time.sleep(3)  # the scenario: stopped 3 s after it is ready, the killed lease still live
    assert killed <= managed(docker_client, pool_name)
    assert second.stop(timeout=60) == 0
    assert managed(docker_client, pool_name) == set()
    assert owners(second) == {}


# ---------------------------------------------------------------- failure 6
def test_two_daemons_racing_to_adopt_a_dead_ones_containers_exactly_one_wins_each(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    env = {"VWE_POOL_SIZE": "2", "VWE_POOL_MAX": "4", "VWE_HEARTBEAT_TTL_S": TTL}
    a = daemon_factory(**env).start(wait_warm=2)
    dead = owned_by(a)
    a.kill()
    b, c = daemon_factory(**env), daemon_factory(**env)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda d: d.start(wait_warm=2), (b, c)))
    eventually(lambda: all(owners(b).get(n) in (b.instance, c.instance) or n not in owners(b)
                           for n in dead) and
               b.metric("vwe_takeovers_total", template="default")
               + c.metric("vwe_takeovers_total", template="default") >= len(dead),
               timeout=30, interval=0.5)
    taken = (b.metric("vwe_takeovers_total", template="default")
             + c.metric("vwe_takeovers_total", template="default"))
    assert taken == len(dead)  # each container taken over exactly once
    by_b, by_c = taken_over_in_log(b), taken_over_in_log(c)
    assert dead <= by_b | by_c and not by_b & by_c, (by_b, by_c)
    listed = [(x["name"], x["daemon"]) for d in (b, c) for x in pool_state(d.url)["containers"]]
    by_name: dict[str, set[str]] = {}
    for name, daemon in listed:
        by_name.setdefault(name, set()).add(daemon)
    assert all(len(v) == 1 for v in by_name.values()), by_name
    assert_all_first_try(run_jobs([b, c], 8, "race"))


# ---------------------------------------------------------------- identity
def test_a_container_of_another_deployment_with_the_same_pool_name_is_never_touched(
    daemon_factory: Callable[..., DaemonProcess], docker_client: docker.DockerClient,
    pool_name: str,
) -> None:
    foreign = docker_client.containers.run(
        WORKER_IMAGE, name=f"{pool_name}-default-foreign0000", detach=True,
        network_mode="none", labels={"vwe.pool": pool_name, "vwe.template": "default",
                                     "vwe.owner": "ghost", "vwe.deployment": "elsewhere"})
    d = daemon_factory(VWE_POOL_SIZE="1").start(wait_warm=1)
    assert d.metric("vwe_takeovers_total", template="default") == 0
    time.sleep(6)  # a negative: at least one reaping tick (every 5 s) must leave it alone
    assert foreign.name in managed(docker_client, pool_name)
    assert d.stop(timeout=60) == 0
    assert managed(docker_client, pool_name) == {foreign.name}
    assert "another deployment" in d.logs()


def _text(value: object) -> str:
    assert isinstance(value, bytes), value
    return value.decode()
