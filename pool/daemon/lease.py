"""The lease keeper: renews this daemon's instance lease on a thread of its own.

The lease (`{p}:daemon:{instance}`, see `pool.ownership`) is how peers tell a live daemon from
a dead one, so its renewal must never wait behind anything else the daemon does: a Docker call
stuck on a slow engine, an APScheduler job still running, a busy event loop, or a connection
pool drained by the API. Hence a plain thread with its own blocking Redis connection and short
timeouts (`connect_lease_client`) that does one thing: every `HEARTBEAT_INTERVAL_S` it compares
the lease with this process's nonce and extends it (`REFRESH_LEASE_LUA`).

States: `held` -> `lapsed` (the key expired: a stall or freeze longer than the TTL, or Redis
unreachable for that long) -> `held` again once re-claimed with the same nonce; or `taken`
(another process now holds this instance id). Every change is reported to `on_change`, called
on the keeper's thread: the daemon hands it to its event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import redis
import redis.exceptions

from pool.core import constants
from pool.infra.logs import get_logger
from pool.store.ownership import REFRESH_LEASE_LUA

log = get_logger("vwe.lease")

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError,
                TimeoutError)


class LeaseState(StrEnum):
    HELD = "held"
    LAPSED = "lapsed"
    TAKEN = "taken"


class LeaseKeeper:
    """Keeps one instance lease alive; `state` and `renewed_at` are read from any thread.

    `connect` makes the keeper's own blocking client (called on the keeper's thread): give it
    short timeouts and no retries, as `connect_lease_client` does; the next tick is the retry,
    and a retry loop would hold this one past it."""

    def __init__(self, connect: Callable[[], redis.Redis], key: str, nonce: str,
                 ttl_s: float, on_change: Callable[[LeaseState], None],
                 interval_s: float = constants.HEARTBEAT_INTERVAL_S) -> None:
        self.connect = connect
        self.key = key
        self.nonce = nonce
        self.ttl_ms = int(ttl_s * 1000)
        self.ttl_s = ttl_s
        self.interval_s = interval_s
        self.on_change = on_change
        self.state = LeaseState.HELD  # claimed by the daemon before the keeper starts
        self.renewed_at = time.monotonic()
        self.lapses = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self.renewed_at = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 3 * constants.LEASE_SOCKET_TIMEOUT_S)

    def _set(self, state: LeaseState) -> None:
        if state is self.state:
            return
        if state is LeaseState.LAPSED:
            self.lapses += 1
        self.state = state
        log.warning("instance lease changed", key=self.key, state=state.value)
        try:
            self.on_change(state)
        except Exception as exc:  # the keeper must keep renewing whatever a listener does
            log.error("lease listener failed", error=repr(exc))

    def tick(self, client: redis.Redis, refresh: Any) -> None:
        """One renewal attempt; each command gives up after the client's socket timeout."""
        started = time.monotonic()
        try:
            code = int(refresh(keys=[self.key], args=[self.nonce, self.ttl_ms]))
            if code == 0:
                # Expired: this process was frozen or cut off for longer than the TTL.
                # Claim it again; the daemon then re-proves each container by its token.
                self._set(LeaseState.LAPSED)
                reclaimed = client.set(self.key, self.nonce, nx=True, px=self.ttl_ms)
                code = 1 if reclaimed else -1
            if code == 1:
                self.renewed_at = started
                self._set(LeaseState.HELD)
            else:
                self._set(LeaseState.TAKEN)
        except REDIS_ERRORS as exc:
            # Not renewed. Once the TTL has passed since the last renewal, peers may already
            # treat this daemon as dead: stop trusting the lease until Redis confirms it.
            if time.monotonic() - self.renewed_at >= self.ttl_s:
                self._set(LeaseState.LAPSED)
            log.warning("lease renewal failed", error=repr(exc))

    def _run(self) -> None:
        client = self.connect()
        refresh = client.register_script(REFRESH_LEASE_LUA)
        try:
            next_tick = time.monotonic()
            while not self._stop.is_set():
                self.tick(client, refresh)
                next_tick += self.interval_s
                now = time.monotonic()
                if next_tick < now:  # resumed after a freeze: no burst of catch-up ticks
                    next_tick = now + self.interval_s
                self._stop.wait(next_tick - now)  # set by `stop`
        finally:
            client.close()
