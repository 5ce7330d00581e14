"""Reclaiming a dead daemon's jobs against the real Redis: only consumers without a lease lose
their entries, and the check costs the same whatever the size of the keyspace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from ownprocs import RedisServer

from pool.store import keys
from pool.store.job_store import JobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(own_redis: RedisServer) -> redis.Redis:
    """A private server: its command counts are this test's alone."""
    return redis.Redis.from_url(own_redis.url())


@pytest.fixture
async def store(own_redis: RedisServer) -> AsyncIterator[JobStore]:
    client = aioredis.Redis.from_url(own_redis.url())
    s = JobStore(client, f"test-{uuid.uuid4().hex[:8]}", 60, 100, template="preview")
    await s.ensure_group()
    yield s
    await client.aclose()


def calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)) if isinstance(stats, dict) else 0


async def test_only_a_consumer_without_a_lease_loses_its_entries(
        store: JobStore, redis_client: redis.Redis) -> None:
    lease = keys.key(keys.HEARTBEAT_KEY_PREFIX, store.pool)
    for job, consumer in (("j-live", "live"), ("j-dead", "dead")):
        await store.redis.xadd(store.stream, {"job": job})
        assert await store.read_new(consumer, block_ms=10) is not None
    redis_client.set(lease + "live", "nonce", px=10_000)
    # A dead consumer with nothing pending is dropped from the group.
    await store.redis.xgroup_createconsumer(store.stream, keys.JOB_GROUP, "gone")
    # Thousands of unrelated keys: the check must not walk them.
    redis_client.mset({f"{store.pool}:job:{i}": "x" for i in range(5000)})
    scans = calls(redis_client, "scan")

    entry = await store.reclaim_from_dead("me")
    assert entry is not None and entry.job_id == "j-dead"
    assert await store.reclaim_from_dead("me") is None  # the live one keeps its entry
    consumers = {c["name"].decode(): int(c["pending"])
                 for c in redis_client.xinfo_consumers(store.stream, keys.JOB_GROUP)}
    assert consumers.get("live") == 1 and consumers.get("me") == 1 and "gone" not in consumers
    assert calls(redis_client, "scan") == scans
