"""Redis high availability with real Debian processes: a primary, a replica and three Sentinels
started by the test on their own ports (never the shared Redis), then killed on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis.exceptions
from apiclient import eventually, submit
from conftest import DaemonProcess
from redisha import RedisHA, env_for, have_binaries

from api.waiters import JobWaiters
from pool.core.exceptions import NotReplicated
from pool.infra.settings import Settings
from pool.store.job_store import JobStore
from pool.store.redis_client import connect_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]
T = TypeVar("T")


@pytest.fixture
def ha() -> Iterator[RedisHA]:
    missing = have_binaries()
    if missing:
        pytest.fail(missing)
    folder = Path(tempfile.mkdtemp(prefix="vwe-ha-", dir="/tmp"))
    group = RedisHA(folder, password="s3cret-for-tests").start()
    yield group
    group.stop()
    shutil.rmtree(folder, ignore_errors=True)


def ha_settings(ha: RedisHA, **overrides: Any) -> Settings:
    values: dict[str, Any] = {k[4:].lower(): v for k, v in env_for(ha).items()}
    values.update(overrides)
    return Settings(_env_file=None, pool_name="ha", **values)


async def until_ok(call: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """Retry `call` on Redis connection errors (a failover in progress) until it succeeds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_every_client_follows_a_failover(ha: RedisHA) -> None:
    settings = ha_settings(ha)
    assert settings.redis_password is not None
    assert "s3cret" not in repr(settings)  # a secret, never printed
    client = connect_redis(settings)
    store = JobStore(client, "ha", 3600, 100)
    await store.ensure_group()
    waiters = JobWaiters(client, store.events)
    async def subscribed() -> None:
        # As the daemon's supervisor does: one subscription ends when its primary is lost,
        # and the next one is made through the Sentinel-aware client.
        while True:
            with contextlib.suppress(Exception):
                await waiters.run()
            await asyncio.sleep(0.2)

    listening = asyncio.create_task(subscribed())
    try:
        first = await store.submit("before", 1, "2", {})
        old = ha.primary()
        assert old.client(password=ha.password).exists(store.job_key(first.job_id))
        replica = next(n for n in ha.servers if n is not old).client(password=ha.password)
        eventually(lambda: replica.exists(store.job_key(first.job_id)))
        old.kill()
        new = await asyncio.to_thread(ha.wait_failover, old.port)
        assert new.port != old.port

        # The submit auto-pipeline, plain commands and the stream consumer all reach the new
        # primary through the same client, with nothing reconfigured.
        second = await until_ok(lambda: store.submit("after", 2, "2", {}))
        assert new.client(password=ha.password).exists(store.job_key(second.job_id))
        assert (await store.get(first.job_id)) is not None  # replicated before the kill
        entries = [await until_ok(lambda: store.read_new("d1", 100)) for _ in range(2)]
        assert [e.job_id for e in entries if e] == [first.job_id, second.job_id]

        # The waiters' pub/sub resubscribed on the new primary.
        with waiters.watch(second.job_id) as finished:
            async def publish_until_heard() -> None:
                while not finished.is_set():
                    await until_ok(lambda: client.publish(store.events, f"{second.job_id} x"))
                    await asyncio.sleep(0.1)
            await asyncio.wait_for(publish_until_heard(), timeout=30)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await client.aclose()


async def test_submit_is_acknowledged_only_once_a_replica_holds_it(ha: RedisHA) -> None:
    client = connect_redis(ha_settings(ha))
    replica = next(n for n in ha.servers if n.port != ha.master_port())
    # A loaded machine can take longer than half a second to replicate: the timeout under test
    # is the paused replica's below, not this one.
    store = JobStore(client, "ha", 3600, 100, min_replicas=1, wait_timeout_s=10)
    impatient = JobStore(client, "ha", 3600, 100, min_replicas=1, wait_timeout_s=0.5)
    try:
        done = await asyncio.gather(*(store.submit(f"s{i}", i, "2", {}) for i in range(20)))
        # WAIT returned: the replica holds every one of them at the moment of the answer.
        on_replica = replica.client(password=ha.password)
        assert all(on_replica.exists(store.job_key(s.job_id)) for s in done)

        replica.pause()  # a replica that stops acknowledging
        try:
            started = time.monotonic()
            with pytest.raises(NotReplicated, match="VWE_REDIS_MIN_REPLICAS"):
                await impatient.submit("unconfirmed", 99, "2", {})
            assert time.monotonic() - started >= 0.5  # waited for the timeout, no longer
        finally:
            replica.resume()
        # Asking for more replicas than exist is refused, never silently accepted.
        strict = JobStore(client, "ha", 3600, 100, min_replicas=2, wait_timeout_s=0.2)
        with pytest.raises(NotReplicated):
            await strict.submit("two-replicas", 7, "2", {})
    finally:
        await client.aclose()


def test_api_answers_503_unreplicated_then_202_after_a_primary_kill(
    ha: RedisHA, daemon_factory: Callable[..., DaemonProcess],
) -> None:
    env = {**env_for(ha), "VWE_REDIS_MIN_REPLICAS": "1", "VWE_REDIS_WAIT_TIMEOUT_S": "0.3"}
    api = daemon_factory(**env).start(role="api")
    assert submit(api.url, "seed1").status_code == 202

    replica = next(n for n in ha.servers if n.port != ha.master_port())
    replica.pause()
    try:
        r = submit(api.url, "seed2")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "not_replicated"
        assert r.headers["retry-after"]
    finally:
        replica.resume()
    eventually(lambda: submit(api.url, "seed2").status_code == 202)

    # Kill the primary: the replica takes over, and with no replica left WAIT cannot be met,
    # so the API refuses (503) rather than acknowledging a job one crash could lose ...
    old = ha.primary()
    old.kill()
    ha.wait_failover(old.port)
    r = submit(api.url, "seed3")
    assert r.status_code == 503, r.text
    # ... until the old primary is back, as a replica of the new one.
    ha.restart(old)
    job = eventually(lambda: (r := submit(api.url, "seed3")).status_code == 202 and r.json(),
                     timeout=60)
    assert job["status"] == "queued"
    got = httpx.get(f"{api.url}/v1/jobs/{job['job_id']}", timeout=10)
    assert got.status_code == 200 and got.json()["seed"] == "seed3"


def test_master_name_must_exist(ha: RedisHA) -> None:
    async def ping() -> Any:
        client = connect_redis(ha_settings(ha, redis_master="nosuch"))
        try:
            return await client.ping()
        finally:
            await client.aclose()

    with pytest.raises(redis.exceptions.ConnectionError, match="No master found for 'nosuch'"):
        asyncio.run(ping())
