"""Every Redis client of the process comes from here: one address, or a master found by Sentinel.

With `VWE_REDIS_SENTINELS` set, clients are redis-py's Sentinel-managed ones: each new
connection asks the Sentinels for the current master of `VWE_REDIS_MASTER`, a connection to
a master that died fails with `ConnectionError`, one to a master demoted to a replica fails
its first write with `ReadOnlyError` and is turned into a `ConnectionError` by redis-py; the
retry policy below reconnects on both, so the API, the dispatcher, the heartbeat, the job
waiters' pub/sub and the submit auto-pipeline (which borrows the client's connection pool)
all follow a failover without code of their own. See docs/deploy.md for the guarantees.

Without Sentinels, `VWE_REDIS_URL` names the server as before. With them, only the URL's
database number (its path) is used.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from pool.infra.settings import Settings

# A command that fails on a connection error is retried on a fresh connection this many
# times, backing off up to RETRY_CAP_S: stale pooled connections after a Redis restart or a
# failover are replaced, while a Redis that stays down still fails within about a second
# (the API then answers 503 and the daemon's loops back off on their own).
RETRIES = 3
RETRY_BASE_S = 0.05
RETRY_CAP_S = 0.5
SOCKET_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_INTERVAL_S = 15
# Sentinels answer from memory: a Sentinel slower than this is skipped for the next one.
SENTINEL_TIMEOUT_S = 1.0


class SentinelRedis(aioredis.Redis):
    """A master client that also closes its Sentinel connections when closed."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        await super().aclose(close_connection_pool)
        if manager is not None:
            await manager.aclose()


def database(url: str) -> int:
    """The database number in a `redis://host:port/N` URL (0 when absent).

    Raises ValueError when the path is not a number."""
    path = urlparse(url).path.strip("/")
    return int(path) if path else 0


def connect_redis(settings: Settings, **overrides: Any) -> aioredis.Redis:
    """An asyncio client for the jobs' Redis, following failovers when Sentinels are set.

    `overrides` are redis-py connection arguments (for example `max_connections`,
    `socket_timeout`) that replace this module's defaults for this one client."""
    options: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), RETRIES),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    }
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    options.update(overrides)
    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(settings.redis_url, **options)
    sentinel_options: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S,
                                        "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password is not None:
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    # redis-py leaves Sentinel untyped.
    sentinel: Any = Sentinel(list(settings.redis_sentinels),  # type: ignore[no-untyped-call]
                             sentinel_kwargs=sentinel_options)
    client: SentinelRedis = sentinel.master_for(settings.redis_master, redis_class=SentinelRedis,
                               db=database(settings.redis_url), **options)
    return client
