"""Reclaiming a dead daemon's jobs against the real Redis: only consumers without a lease lose
their entries, and the check costs the same whatever the size of the keyspace."""

from __future__ import annotations

import pytest
import redis

from pool.store import keys
from pool.store.job_store import JobStore

pytestmark = pytest.mark.integration


def calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)) if isinstance(stats, dict) else 0


async def test_only_a_consumer_without_a_lease_loses_its_entries(
        job_store: JobStore, own_client: redis.Redis) -> None:
    lease = keys.key(keys.HEARTBEAT_KEY_PREFIX, job_store.pool)
    for job, consumer in (("j-live", "live"), ("j-dead", "dead")):
        await job_store.redis.xadd(job_store.stream, {"job": job})
        assert await job_store.read_new(consumer, block_ms=10) is not None
    own_client.set(lease + "live", "nonce", px=10_000)
    # A dead consumer with nothing pending is dropped from the group.
    await job_store.redis.xgroup_createconsumer(job_store.stream, keys.JOB_GROUP, "gone")
    # Thousands of unrelated keys: the check must not walk them.
    own_client.mset({f"{job_store.pool}:job:{i}": "x" for i in range(5000)})
    scans = calls(own_client, "scan")

    entry = await job_store.reclaim_from_dead("me")
    assert entry is not None and entry.job_id == "j-dead"
    assert await job_store.reclaim_from_dead("me") is None  # the live one keeps its entry
    consumers = {c["name"].decode(): int(c["pending"])
                 for c in own_client.xinfo_consumers(job_store.stream, keys.JOB_GROUP)}
    assert consumers.get("live") == 1 and consumers.get("me") == 1 and "gone" not in consumers
    assert calls(own_client, "scan") == scans
