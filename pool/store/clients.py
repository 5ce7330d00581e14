"""The Redis clients of a process, built by the composition root (`pool.entry.root`) with
`pool.store.redis_client.connect_redis` (one address, or the master Sentinel names).

The HTTP handlers, the job-event subscription and the daemon get a client (and a connection
pool) each: none can starve another. All report to one `RedisHealth`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pool.infra.settings import Settings
from pool.store.job_store import JobStore
from pool.store.redis_client import ObservedRedis, RedisHealth, connect_redis


@dataclass(frozen=True)
class RedisClients:
    api: ObservedRedis
    events: ObservedRedis
    daemon: ObservedRedis
    health: RedisHealth = field(default_factory=RedisHealth)

    @classmethod
    def connect(cls, settings: Settings) -> RedisClients:
        health = RedisHealth()
        return cls(api=connect_redis(settings, "api", health),
                   events=connect_redis(settings, "events", health),
                   daemon=connect_redis(settings, "daemon", health), health=health)

    def store(self, client: ObservedRedis, settings: Settings) -> JobStore:
        """The job store of `settings.template` over `client` (one of `api`, `daemon`);
        submits wait for VWE_REDIS_MIN_REPLICAS replicas."""
        return JobStore(client, settings.pool_name, settings.result_ttl_s, settings.queue_max,
                        min_replicas=settings.redis_min_replicas,
                        wait_timeout_s=settings.redis_wait_timeout_s,
                        template=settings.template)

    async def close(self) -> None:
        """Close every client, each whatever happened to the others; raises the first
        failure afterwards."""
        errors: list[Exception] = []
        for client in (self.events, self.api, self.daemon):
            try:
                await client.aclose()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
