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

Bounded waits (docs/architecture.md, "Bounded waits"). Every client made here:

- fails a call after `VWE_REDIS_TIMEOUT_S` (socket connect and read timeouts), so a hung Redis
  costs a caller seconds, not minutes. A timeout is retried only when Sentinels are set (the
  retry asks them for the master again); against one server it would only multiply the wait;
- takes its connections from a pool of a fixed size per purpose that *waits* up to
  `VWE_REDIS_POOL_TIMEOUT_S` for a free connection instead of failing at once; when the wait
  runs out the caller gets `MaxConnectionsError` (redis-py's "pool exhausted", a subclass of
  `ConnectionError`): load, not an outage, and never reported as one (`is_outage`);
- reports each command's outcome to a `RedisHealth`, which `vwe_up{component="redis"}` shows.

The HTTP handlers, the job-event subscription and the daemon (dispatcher, heartbeat,
maintenance) get separate clients, so no number of HTTP requests can take the connections the
daemon needs.
"""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import urlparse

import redis
import redis.asyncio as aioredis
import redis.exceptions
import redis.sentinel
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry as SyncRetry

from pool.infra.logs import get_logger
from pool.infra.settings import Settings

log = get_logger("vwe.redis")

Purpose = Literal["api", "daemon", "events"]
# Errors that mean Redis did not answer (MaxConnectionsError excluded: see `is_outage`).
OUTAGE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

# A command that fails on a connection error is retried on a fresh connection this many
# times, backing off up to RETRY_CAP_S: stale pooled connections after a Redis restart or a
# failover are replaced, while a Redis that stays down still fails within about a second
# (the API then answers 503 and the daemon's loops back off on their own).
RETRIES = 3
RETRY_BASE_S = 0.05
RETRY_CAP_S = 0.5
HEALTH_CHECK_INTERVAL_S = 15
# Sentinels answer from memory: a Sentinel slower than this is skipped for the next one.
SENTINEL_TIMEOUT_S = 1.0


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
    """A pool that waits for a free connection; past its timeout, `MaxConnectionsError`.

    While calls see Redis down (`health`), a caller finding no free connection fails at once
    with `ConnectionError` instead of queueing behind calls that are timing out: a hung Redis
    is answered in about one socket timeout, not in waves of them."""

    health: RedisHealth | None = None

    async def get_connection(self, command_name: Any = None, *keys: Any,
                             **options: Any) -> Any:
        health = self.health
        if health is not None and not health.up and not self.can_get_connection():
            raise redis.exceptions.ConnectionError(
                f"Redis unreachable ({health.last_error}); not waiting for a connection")
        try:
            if command_name is None and not keys and not options:
                # redis-py >= 5.3 deprecates the arguments (and warns when they are passed).
                return await super().get_connection()  # type: ignore[no-untyped-call]
            return await super().get_connection(  # type: ignore[no-untyped-call]
                command_name, *keys, **options)
        except redis.exceptions.ConnectionError as exc:
            # redis-py reports the wait running out as a plain ConnectionError.
            if isinstance(exc.__cause__, TimeoutError) and "No connection available" in str(exc):
                raise redis.exceptions.MaxConnectionsError(
                    f"all {self.max_connections} Redis connections of this process stayed "
                    f"busy for {self.timeout} s") from exc
            raise


class WaitingSentinelPool(SentinelConnectionPool, WaitingConnectionPool):
    """The Sentinel-managed pool, waiting for a free connection as `WaitingConnectionPool`."""


class ObservedRedis(aioredis.Redis):
    """`redis.asyncio.Redis` that tells a `RedisHealth` how each command went."""

    health: RedisHealth = RedisHealth()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            result = await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except redis.exceptions.ResponseError:
            self.health.observe(True)  # Redis answered, with an error
            raise
        except Exception as exc:
            if is_outage(exc):
                self.health.observe(False, exc)
            raise
        self.health.observe(True)
        return result


class SentinelRedis(ObservedRedis):
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


def _password(settings: Settings) -> dict[str, str]:
    """The `password` connection argument for the jobs' Redis, when one is set."""
    if settings.redis_password is None:
        return {}
    return {"password": settings.redis_password.get_secret_value()}


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    """Connection arguments for the Sentinels themselves (not the master they name)."""
    options: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S,
                               "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password is not None:
        options["password"] = settings.redis_sentinel_password.get_secret_value()
    return options


def connect_redis(settings: Settings, purpose: Purpose = "daemon",
                  health: RedisHealth | None = None, **overrides: Any) -> ObservedRedis:
    """An asyncio client for the jobs' Redis, following failovers when Sentinels are set.

    `purpose` sizes its connection pool: `api` (HTTP handlers, VWE_REDIS_API_CONNECTIONS),
    `daemon` (dispatcher, heartbeat, maintenance, VWE_REDIS_DAEMON_CONNECTIONS) or `events`
    (the long-poll subscription, 2). Its commands report to `health` (a new one if None).
    `overrides` are redis-py connection arguments (for example `max_connections`,
    `socket_timeout`) that replace this module's defaults for this one client."""
    retry_on: tuple[type[redis.exceptions.RedisError], ...] = (
        redis.exceptions.ConnectionError,)
    if settings.redis_sentinels:
        retry_on += (redis.exceptions.TimeoutError,)
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), RETRIES,
                       supported_errors=retry_on),
        "max_connections": {"api": settings.redis_api_connections,
                            "daemon": settings.redis_daemon_connections,
                            "events": 2}[purpose],
        "timeout": settings.redis_pool_timeout_s,  # the wait for a free pooled connection
    }
    options.update(_password(settings))
    options.update(overrides)
    client: ObservedRedis
    if not settings.redis_sentinels:
        pool = WaitingConnectionPool.from_url(settings.redis_url, **options)
        client = ObservedRedis(connection_pool=pool)
        # The client owns its pool (as `Redis.from_pool` makes it): closing the client closes
        # its connections.
        client.auto_close_connection_pool = True
    else:
        # redis-py leaves Sentinel untyped.
        sentinel: Any = Sentinel(list(settings.redis_sentinels),  # type: ignore[no-untyped-call]
                                 sentinel_kwargs=_sentinel_options(settings))
        client = sentinel.master_for(settings.redis_master, redis_class=SentinelRedis,
                                     connection_pool_class=WaitingSentinelPool,
                                     db=database(settings.redis_url), **options)
    client.health = health or RedisHealth()
    if isinstance(client.connection_pool, WaitingConnectionPool):
        client.connection_pool.health = client.health
    return client


def connect_lease_client(settings: Settings, timeout_s: float) -> redis.Redis:
    """A blocking client for the lease keeper's thread (`pool.daemon.lease`): one connection,
    `timeout_s` on connect and on each reply, no retries (the keeper's next tick is the retry)
    and no `RedisHealth` (the lease state is its own report). Blocking, not asyncio: on a
    thread of its own, an event loop for one command a second cost five times the command.
    Follows a failover like `connect_redis`: each new connection asks the Sentinels."""
    options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                               "retry": SyncRetry(NoBackoff(), 0), "health_check_interval": 0,
                               **_password(settings)}
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel: Any = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(settings.redis_sentinels), sentinel_kwargs=_sentinel_options(settings))
    client: redis.Redis = sentinel.master_for(settings.redis_master,
                                              db=database(settings.redis_url), **options)
    return client
