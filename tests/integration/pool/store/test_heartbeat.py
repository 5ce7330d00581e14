"""A daemon's heartbeat against the real Redis (`JobStore.beat`): what it publishes and reads
back, the entries it keeps claimed, and its recovery from a Redis that lost its data."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from ownprocs import RedisServer

from pool.core.pool_policy import PoolPolicy
from pool.store import keys
from pool.store.job_store import JobStore

pytestmark = pytest.mark.integration

BASE = PoolPolicy(size=2, max=4)


@pytest.fixture
def redis_client(own_redis: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(own_redis.url())


@pytest.fixture
async def store(own_redis: RedisServer) -> AsyncIterator[JobStore]:
    client = aioredis.Redis.from_url(own_redis.url())
    s = JobStore(client, f"test-{uuid.uuid4().hex[:8]}", 60, 100)
    await s.ensure_group()
    yield s
    await client.aclose()


def idle_ms(client: redis.Redis, store: JobStore, entry_id: str) -> int:
    pending = client.xpending_range(store.stream, keys.JOB_GROUP, entry_id, entry_id, 1)
    return int(pending[0]["time_since_delivered"])


async def test_a_beat_publishes_the_containers_and_reads_policy_and_depth_back(
        store: JobStore, redis_client: redis.Redis) -> None:
    await store.save_policy(PoolPolicy(size=3, max=5))
    redis_client.set(store.depth_key, 7)
    beat = await store.beat("d1", {"daemon": "d1", "containers": [{"name": "c1"}]},
                            [1.5, 2.25], [], BASE)
    assert beat.policy == PoolPolicy(size=3, max=5) and beat.depth == 7
    published = redis_client.get(keys.key(keys.CONTAINERS_KEY, store.scope, "d1"))
    assert published is not None
    assert json.loads(published)["containers"] == [{"name": "c1"}]
    assert 0 < redis_client.ttl(keys.key(keys.CONTAINERS_KEY, store.scope, "d1")) \
        <= keys.CONTAINER_RECORD_TTL_S
    assert redis_client.lrange(keys.key(keys.BOOT_TIMES_KEY, store.scope), 0, -1) == \
        [b"2.25", b"1.5"]
    # Nothing persisted yet: the base policy, and no queue.
    other = JobStore(store.redis, store.pool, 60, 100, template="other")
    await other.ensure_group()
    empty = await other.beat("d1", {"daemon": "d1", "containers": []}, [], [], BASE)
    assert empty.policy == BASE and empty.depth == 0


async def test_a_beat_keeps_the_running_entries_claimed(
        store: JobStore, redis_client: redis.Redis) -> None:
    await store.redis.xadd(store.stream, {"job": "j1"})
    entry = await store.read_new("d1", block_ms=10)
    assert entry is not None
    redis_client.xclaim(store.stream, keys.JOB_GROUP, "d1", 0, [entry.entry_id],
                        idle=60_000, justid=True)
    assert idle_ms(redis_client, store, entry.entry_id) >= 60_000
    await store.beat("d1", {"daemon": "d1", "containers": []}, [], [entry.entry_id], BASE)
    assert idle_ms(redis_client, store, entry.entry_id) < 5_000


async def test_a_beat_after_redis_lost_its_data_recreates_the_group(
        store: JobStore, redis_client: redis.Redis) -> None:
    await store.redis.xadd(store.stream, {"job": "j1"})
    entry = await store.read_new("d1", block_ms=10)
    assert entry is not None
    redis_client.flushdb()
    beat = await store.beat("d1", {"daemon": "d1", "containers": []}, [], [entry.entry_id],
                            BASE)
    assert beat.depth == 0
    groups = redis_client.xinfo_groups(store.stream)
    assert [g["name"] for g in groups] == [keys.JOB_GROUP.encode()]
