"""Redis clients with bounded waits, and what their calls observe about Redis.

Every client made here (docs/architecture.md, "Bounded waits"):

- fails a call after `VWE_REDIS_TIMEOUT_S` (socket connect and read timeouts), so a hung Redis
  costs a caller about a second, not minutes; a stale pooled connection after a Redis restart
  is retried once on a fresh connection (`ConnectionError` only: a timeout is not retried);
- takes its connections from a `BlockingConnectionPool` of a fixed size that *waits* up to
  `VWE_REDIS_POOL_TIMEOUT_S` for a free connection instead of failing at once; when the wait
  runs out the caller gets `MaxConnectionsError` (redis-py's own "pool exhausted" error, a
  subclass of `ConnectionError`), which is load, not an outage, and is never reported as one;
- reports each call's outcome to a `RedisHealth`, which `vwe_up{component="redis"}` shows.

The HTTP side and the daemon (dispatcher, heartbeat, maintenance) get separate clients, so no
number of HTTP requests can take the connections the daemon needs.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

from pool.logs import get_logger
from pool.settings import Settings

log = get_logger("vwe.redis")

Purpose = Literal["api", "daemon", "events"]
# Errors that mean Redis itself did not answer (MaxConnectionsError excluded: see `is_outage`).
OUTAGE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says Redis is unreachable or hangs; False for a full local pool."""
    return (isinstance(exc, OUTAGE_ERRORS)
            and not isinstance(exc, redis.exceptions.MaxConnectionsError))


class RedisHealth:
    """The last thing calls observed: Redis answered (up) or did not (down)."""

    def __init__(self) -> None:
        self.up = True
        self.since = time.monotonic()
        self.last_error = ""

    def observe(self, ok: bool, error: BaseException | None = None) -> None:
        if ok != self.up:
            self.since = time.monotonic()
            if ok:
                log.info("redis reachable again")
            else:
                log.error("redis unreachable", error=repr(error))
        self.up = ok
        if error is not None:
            self.last_error = f"{type(error).__name__}: {error}"


class WaitingConnectionPool(BlockingConnectionPool):
    """A pool that waits for a free connection; past its timeout, `MaxConnectionsError`."""

    async def get_connection(self, command_name: Any = None, *keys: Any,
                             **options: Any) -> Any:
        try:
            return await super().get_connection(command_name, *keys, **options)
        except redis.exceptions.ConnectionError as exc:
            # redis-py reports the wait running out as a plain ConnectionError.
            if isinstance(exc.__cause__, TimeoutError) and "No connection available" in str(exc):
                raise redis.exceptions.MaxConnectionsError(
                    f"all {self.max_connections} Redis connections of this process stayed "
                    f"busy for {self.timeout} s") from exc
            raise


class ObservedRedis(aioredis.Redis):
    """`redis.asyncio.Redis` that tells a `RedisHealth` how each command went."""

    health: RedisHealth

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            result = await super().execute_command(*args, **options)
        except redis.exceptions.ResponseError:
            self.health.observe(True)  # Redis answered, with an error
            raise
        except Exception as exc:
            if is_outage(exc):
                self.health.observe(False, exc)
            raise
        self.health.observe(True)
        return result


def connect_redis(settings: Settings, purpose: Purpose = "daemon",
                  health: RedisHealth | None = None) -> ObservedRedis:
    """A client for one purpose: `api` (HTTP handlers), `daemon` (dispatcher, heartbeat,
    maintenance) or `events` (the long-poll subscription). Sizes and timeouts from settings."""
    size = {"api": settings.redis_api_connections,
            "daemon": settings.redis_daemon_connections, "events": 2}[purpose]
    pool = WaitingConnectionPool.from_url(
        settings.redis_url, max_connections=size, timeout=settings.redis_pool_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=15,
        # A stale connection left by a Redis restart fails with ConnectionError: one retry on
        # a fresh connection hides it. A timeout is not retried: it would double the wait.
        retry=Retry(ConstantBackoff(0.05), 1,
                    supported_errors=(redis.exceptions.ConnectionError,)),
    )
    client = ObservedRedis(connection_pool=pool)
    client.health = health or RedisHealth()
    return client
