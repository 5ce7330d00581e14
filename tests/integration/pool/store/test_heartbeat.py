"""A daemon's heartbeat against the real Redis (`JobStore.beat`): what it publishes and reads
back, the entries it keeps claimed, and its recovery from a Redis that lost its data."""

from __future__ import annotations

import json

import pytest
import redis

from pool.core.pool_policy import PoolPolicy
from pool.store import keys
from pool.store.job_store import JobStore

pytestmark = pytest.mark.integration

BASE = PoolPolicy(size=2, max=4)


def idle_ms(client: redis.Redis, store: JobStore, entry_id: str) -> int:
    pending = client.xpending_range(store.stream, keys.JOB_GROUP, entry_id, entry_id, 1)
    return int(pending[0]["time_since_delivered"])


async def test_a_beat_publishes_the_containers_and_reads_policy_and_depth_back(
        job_store: JobStore, own_client: redis.Redis) -> None:
    await job_store.save_policy(PoolPolicy(size=3, max=5))
    own_client.set(job_store.depth_key, 7)
    beat = await job_store.beat("d1", {"daemon": "d1", "containers": [{"name": "c1"}]},
                                [1.5, 2.25], [], BASE)
    assert beat.policy == PoolPolicy(size=3, max=5) and beat.depth == 7
    published = own_client.get(keys.key(keys.CONTAINERS_KEY, job_store.scope, "d1"))
    assert published is not None
    assert json.loads(published)["containers"] == [{"name": "c1"}]
    assert 0 < own_client.ttl(keys.key(keys.CONTAINERS_KEY, job_store.scope, "d1")) \
        <= keys.CONTAINER_RECORD_TTL_S
    assert own_client.lrange(keys.key(keys.BOOT_TIMES_KEY, job_store.scope), 0, -1) == \
        [b"2.25", b"1.5"]
    # Nothing persisted yet: the base policy, and no queue.
    other = JobStore(job_store.redis, job_store.pool, 60, 100, template="other")
    await other.ensure_group()
    empty = await other.beat("d1", {"daemon": "d1", "containers": []}, [], [], BASE)
    assert empty.policy == BASE and empty.depth == 0


async def test_a_beat_keeps_the_running_entries_claimed(
        job_store: JobStore, own_client: redis.Redis) -> None:
    await job_store.redis.xadd(job_store.stream, {"job": "j1"})
    entry = await job_store.read_new("d1", block_ms=10)
    assert entry is not None
    own_client.xclaim(job_store.stream, keys.JOB_GROUP, "d1", 0, [entry.entry_id],
                      idle=60_000, justid=True)
    assert idle_ms(own_client, job_store, entry.entry_id) >= 60_000
    await job_store.beat("d1", {"daemon": "d1", "containers": []}, [], [entry.entry_id], BASE)
    assert idle_ms(own_client, job_store, entry.entry_id) < 5_000


async def test_a_beat_after_redis_lost_its_data_recreates_the_group(
        job_store: JobStore, own_client: redis.Redis) -> None:
    await job_store.redis.xadd(job_store.stream, {"job": "j1"})
    entry = await job_store.read_new("d1", block_ms=10)
    assert entry is not None
    own_client.flushdb()
    beat = await job_store.beat("d1", {"daemon": "d1", "containers": []}, [],
                                [entry.entry_id], BASE)
    assert beat.depth == 0
    groups = own_client.xinfo_groups(job_store.stream)
    assert [g["name"] for g in groups] == [keys.JOB_GROUP.encode()]
