"""The Redis clients of a process, built by the composition root (`pool.entry.root`) with
`pool.store.redis_client.connect_redis` (one address, or the master Sentinel names).

The HTTP side and the daemon side get a client (and so a connection pool) each: a burst of
long-polls or submits cannot starve the dispatcher and the heartbeat of connections.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from pool.infra.settings import Settings
from pool.store.job_store import JobStore
from pool.store.redis_client import connect_redis

Redis = aioredis.Redis


@dataclass(frozen=True)
class RedisClients:
    """One client for the HTTP API, one for the daemon (dispatcher, heartbeat, scheduler)."""

    api: Redis
    daemon: Redis

    @classmethod
    def connect(cls, settings: Settings) -> RedisClients:
        return cls(api=connect_redis(settings), daemon=connect_redis(settings))

    def store(self, client: Redis, settings: Settings) -> JobStore:
        """The job store over `client` (one of `api`, `daemon`); submits wait for
        VWE_REDIS_MIN_REPLICAS replicas."""
        return JobStore(client, settings.pool_name, settings.result_ttl_s, settings.queue_max,
                        min_replicas=settings.redis_min_replicas,
                        wait_timeout_s=settings.redis_wait_timeout_s)

    async def close(self) -> None:
        await self.api.aclose()
        await self.daemon.aclose()
