"""`PoolControl` for a process that serves HTTP without running a pool (`--role api`).

It sees the pool the way every daemon publishes it in Redis: the persisted policy, the
containers' records and the queue depth.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pool.core.pool_policy import PoolPolicy
from pool.core.ports import PoolStatus, Readiness
from pool.store.job_store import JobStore
from pool.store.ownership import recorded_owners


async def published_containers(store: JobStore, skip_daemon: str | None = None
                               ) -> list[dict[str, Any]]:
    """Every daemon's published container records, except those of `skip_daemon`."""
    containers: list[dict[str, Any]] = []
    for snap in await store.pool_snapshots():
        if snap.get("daemon") != skip_daemon:
            containers.extend(snap.get("containers", []))
    return containers


async def owned_only(store: JobStore, containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each container under the daemon its owner record names, once: a published snapshot
    outlives a dead or frozen daemon's ownership by up to its TTL."""
    owners = await recorded_owners(store.redis, store.pool, [c["name"] for c in containers])
    return [c for c in containers
            if (o := owners.get(c["name"])) is not None and o.instance == c["daemon"]]


class StoredPool:
    """The pool as Redis holds it; policy changes are persisted for the daemons to pick up."""

    def __init__(self, store: JobStore, configured: PoolPolicy, redis_timeout_s: float) -> None:
        self.store = store
        self.configured = configured
        self.redis_timeout_s = redis_timeout_s

    async def policy(self) -> PoolPolicy:
        return await self.store.load_policy(self.configured)

    async def set_policy(self, policy: PoolPolicy) -> None:
        await self.store.save_policy(policy)

    async def status(self) -> PoolStatus:
        policy = await self.policy()
        return PoolStatus(policy=policy, target=policy.size, autoscale_reason=None,
                          queue_depth=await self.store.depth(),
                          containers=await owned_only(
                              self.store, await published_containers(self.store)))

    async def readiness(self) -> Readiness:
        """Jobs are accepted (and wait in the queue) with no worker alive, so the live
        workers are information, not a check."""
        try:
            async with asyncio.timeout(self.redis_timeout_s * 2):
                workers: int | None = len(await self.store.alive_daemons())
        except Exception:
            workers = None
        return Readiness({}, workers=workers)
