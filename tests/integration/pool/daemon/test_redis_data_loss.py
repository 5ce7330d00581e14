"""Redis losing its data under a running daemon (issue 12, "Redis losing data"; issue 13,
ownership): what the daemon owns is written back, so a later restart adopts or removes every
container instead of leaking it, and the fence counter never goes backwards from what an agent
holds. Real daemons, the real engine, and a Redis server of the test's own (it is flushed).
"""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest
import redis
from apiclient import eventually, submit, wait_job, warm_names
from conftest import DaemonProcess
from ownprocs import RedisServer

from pool.store import keys

pytestmark = pytest.mark.integration

# Tokens well above what a counter restarted from 0 reaches in a test: the report's 31-34.
FENCE_START = 30


def managed(docker_client: docker.DockerClient, pool_name: str) -> set[str]:
    rows = docker_client.api.containers(all=True, filters={"label": f"vwe.pool={pool_name}"})
    return {row["Names"][0].lstrip("/") for row in rows}


def owner_records(r: redis.Redis, pool: str) -> dict[str, tuple[int, str]]:
    prefix = keys.key(keys.OWNER_KEY_PREFIX, pool)
    found = {}
    for k in r.scan_iter(match=prefix + "*"):
        raw = r.get(k)
        if raw:
            text = raw if isinstance(raw, str) else raw.decode()
            name = k if isinstance(k, str) else k.decode()
            token, _, instance = text.partition(":")
            found[name[len(prefix):]] = (int(token), instance)
    return found


def run_jobs(d: DaemonProcess, prefix: str, n: int) -> list[dict[str, object]]:
    return [wait_job(d.url, submit(d.url, f"{prefix}{i}").json()["job_id"], timeout=60)
            for i in range(n)]


@pytest.mark.slow
def test_a_flushed_redis_gets_back_what_the_daemon_owns_so_a_restart_leaks_nothing(
    daemon_factory: Callable[..., DaemonProcess], own_redis: RedisServer,
    docker_client: docker.DockerClient, pool_name: str,
) -> None:
    r = redis.Redis.from_url(own_redis.url(), decode_responses=True)
    r.set(keys.key(keys.FENCE_KEY, pool_name), FENCE_START)
    env = {"VWE_REDIS_URL": own_redis.url(), "VWE_POOL_SIZE": "2", "VWE_HEARTBEAT_TTL_S": "4"}
    d1 = daemon_factory(**env).start(wait_warm=2)
    assert all(j["status"] == "succeeded" for j in run_jobs(d1, "pre", 2))
    deployment = r.get(keys.key(keys.DEPLOYMENT_KEY, pool_name))
    assert deployment is not None
    held = eventually(lambda: warm_names(d1.url) if len(warm_names(d1.url)) == 2 else None)

    r.flushdb()  # every key gone under the running daemon

    # The running daemon writes back its deployment id and each container's owner record,
    # with the fence counter raised to at least every token it holds.
    eventually(lambda: r.get(keys.key(keys.DEPLOYMENT_KEY, pool_name)) == deployment,
               timeout=10)
    records = eventually(lambda: (o := owner_records(r, pool_name)).keys() >= held and o,
                         timeout=20)
    assert {records[n][1] for n in held} == {d1.instance}
    assert min(records[n][0] for n in held) > FENCE_START
    fence = int(r.get(keys.key(keys.FENCE_KEY, pool_name)) or 0)
    assert fence >= max(records[n][0] for n in held)
    # It goes on serving on the same containers, no job refused for ownership.
    after = run_jobs(d1, "post", 2)
    assert [j["status"] for j in after] == ["succeeded"] * 2, after
    assert all(j["attempts"] == 1 for j in after), after
    assert not d1.events("container fenced off"), d1.logs()

    d1.kill()  # kill -9: nothing drained
    left = managed(docker_client, pool_name)
    assert left >= held
    d2 = daemon_factory(**env).start(wait_warm=2)
    # The restarted daemon is of the same deployment: it takes the containers over (adopts or
    # removes them), instead of leaving them alone for ever.
    assert not d2.events("containers of this pool name belong to another deployment (or "
                          "predate deployment ids): left alone"), d2.logs()
    eventually(lambda: {e["container"] for e in d2.events("container taken over")} >= left,
               timeout=30)
    # B: takeovers got tokens above what the agents held; no job is refused as fenced.
    jobs = run_jobs(d2, "restart", 4)
    assert all(j["status"] == "succeeded" and j["attempts"] == 1 for j in jobs), jobs
    assert not d2.events("container fenced off"), d2.logs()
    assert d2.stop(timeout=60) == 0, d2.logs()
    assert managed(docker_client, pool_name) == set()


@pytest.mark.slow
def test_a_fence_counter_reset_never_makes_agents_refuse_an_adopting_daemon(
    daemon_factory: Callable[..., DaemonProcess], redis_client: redis.Redis,
    docker_client: docker.DockerClient, pool_name: str,
) -> None:
    fence_key = keys.key(keys.FENCE_KEY, pool_name)
    redis_client.set(fence_key, FENCE_START)
    env = {"VWE_POOL_SIZE": "2", "VWE_HEARTBEAT_TTL_S": "4"}
    d1 = daemon_factory(**env).start(wait_warm=2)
    assert all(j["status"] == "succeeded" for j in run_jobs(d1, "one", 2))
    d1.kill()
    left = managed(docker_client, pool_name)
    # The counter alone goes back to 0 (a partial loss); the agents hold tokens above 30.
    redis_client.delete(fence_key)

    d2 = daemon_factory(**env).start(wait_warm=2)
    taken = eventually(lambda: {e["container"]: e["token"]
                                for e in d2.events("container taken over")}
                       if {e["container"] for e in d2.events("container taken over")} >= left
                       else None, timeout=30)
    assert all(int(str(t)) > FENCE_START for t in taken.values()), taken
    jobs = run_jobs(d2, "two", 4)
    assert all(j["status"] == "succeeded" and j["attempts"] == 1 for j in jobs), jobs
    assert {j["launch_type"] for j in jobs} == {"warm"}, jobs
    assert not d2.events("container fenced off"), d2.logs()
    assert d2.metric("vwe_fenced_containers_total", template="default") == 0.0
    assert d2.stop(timeout=60) == 0
    assert managed(docker_client, pool_name) == set()
