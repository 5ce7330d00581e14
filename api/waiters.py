"""Wake HTTP long-polls when a job finishes: one pub/sub subscription per process, shared.

The subscription runs under the supervisor as the component `events` (a lost subscription
raises; the supervisor logs it and subscribes again after a back-off, and every waiter is woken
to re-read its job meanwhile). At shutdown `close()` wakes every waiter at once with `closing`
set, so open long-polls are answered before the server stops (docs/architecture.md,
"Long-polls").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import redis.asyncio as aioredis

from pool.infra.logs import get_logger

log = get_logger("vwe.api.waiters")


class JobWaiters:
    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self.closing = False

    async def run(self) -> None:
        """One subscription, until it is lost (raises) or cancelled."""
        try:
            async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    data = message.get("data")
                    job_id = (data.decode() if isinstance(data, bytes) else str(data))
                    self._wake(job_id.split(" ", 1)[0])
        finally:
            # Events may be missed until the next subscription: everyone re-reads its job.
            self.wake_all()

    def close(self) -> None:
        """Shutdown: wake every waiter now; they answer without waiting further."""
        self.closing = True
        self.wake_all()

    def wake_all(self) -> None:
        for job_id in list(self._waiting):
            self._wake(job_id)

    def _wake(self, job_id: str) -> None:
        for event in self._waiting.get(job_id, ()):
            event.set()

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """Register before reading the job, so a finish between read and wait is not missed."""
        event = asyncio.Event()
        if self.closing:
            event.set()
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[job_id]
