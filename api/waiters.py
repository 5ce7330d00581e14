"""Wake HTTP long-polls when a job finishes: one pub/sub subscription per process, shared."""

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

    async def run(self) -> None:
        """Listen for finished jobs until cancelled (a task the composition root runs)."""
        backoff = 0.1
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    backoff = 0.1
                    async for message in pubsub.listen():
                        data = message.get("data")
                        job_id = (data.decode() if isinstance(data, bytes) else str(data))
                        self._wake(job_id.split(" ", 1)[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job event subscription lost; resubscribing", error=repr(exc))
                # Wake everyone: they re-read the job and wait again.
                for job_id in list(self._waiting):
                    self._wake(job_id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _wake(self, job_id: str) -> None:
        for event in self._waiting.get(job_id, ()):
            event.set()

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """Register before reading the job, so a finish between read and wait is not missed."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[job_id]
