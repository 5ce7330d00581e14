"""Automatic pipelining: script calls made while a round trip is in flight share the next one.

On its own, redis-py spends about 130 us of CPU per command (a pool checkout, packing, waking a
reader), against about 30 us per command inside a pipeline. Under load the API's submits
arrive many per event-loop turn, so they are queued here and written as one batch, one
batch at a time: while a batch is on the wire the next one fills up, and an idle
caller pays one round trip as before. ioredis calls this `enableAutoPipelining`.

Each script still runs atomically in Redis; only the round trip is shared. A reply error
reaches its own caller; a connection error reaches every caller of that batch.

With `min_replicas` >= 1 each batch ends with `WAIT min_replicas timeout` on the same
connection: one command per batch, not per call, confirms that the replicas hold every write
of the batch. Fewer replicas in time fail every call of the batch with `NotReplicated`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command
from redis.exceptions import NoScriptError, ResponseError

from pool.core.exceptions import NotReplicated

# Larger batches add latency for the first caller without saving more CPU.
MAX_BATCH = 128

_Call = tuple[str, str, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class AutoPipeline:
    def __init__(self, redis: aioredis.Redis, max_batch: int = MAX_BATCH,
                 min_replicas: int = 0, wait_timeout_s: float = 1.0) -> None:
        self.redis: Any = redis
        self.max_batch = max_batch
        self.min_replicas = min_replicas
        wait_args: tuple[Any, ...] = (min_replicas, max(1, int(wait_timeout_s * 1000)))
        self._wait = pack_command(("WAIT", *wait_args)) if min_replicas > 0 else b""
        self.wait_timeout_s = wait_timeout_s
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self.round_trips = 0  # batches sent, for tests and debugging

    async def run_script(self, source: str, sha: str, keys: Sequence[Any],
                         args: Sequence[Any]) -> Any:
        """EVALSHA `sha` (the SHA-1 of `source`, loaded again if Redis lost it)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((source, sha, keys, args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:self.max_batch]
                del self._queue[:self.max_batch]
                await self._send(batch)
        finally:
            for *_, future in self._queue:  # left only if this task was cancelled
                future.cancel()
            self._queue.clear()

    async def _send(self, batch: list[_Call], reloaded: bool = False) -> None:
        batch = [call for call in batch if not call[4].done()]  # callers that gave up
        if not batch:
            return
        # hiredis packs in C what redis-py's asyncio connection packs in Python, argument by
        # argument: a third of a submit's client-side cost.
        packed = b"".join(pack_command(("EVALSHA", sha, len(keys), *keys, *args))
                          for _source, sha, keys, args, _future in batch) + self._wait
        pool = self.redis.connection_pool
        self.round_trips += 1
        try:
            conn = await pool.get_connection()
            try:
                replies = await conn.retry.call_with_retry(
                    lambda: self._exchange(conn, packed, len(batch) + bool(self._wait)),
                    lambda _error: conn.disconnect())
            finally:
                await pool.release(conn)
            if self._wait:
                acked = replies.pop()
                if isinstance(acked, Exception) or int(acked) < self.min_replicas:
                    raise NotReplicated(
                        f"Redis confirmed {acked!r} of the {self.min_replicas} replica(s) "
                        f"required (VWE_REDIS_MIN_REPLICAS) within {self.wait_timeout_s} s")
        except Exception as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            for *_, future in batch:
                future.cancel()
            raise
        lost: list[_Call] = []
        for call, reply in zip(batch, replies, strict=True):
            future = call[4]
            if future.done():
                continue
            if isinstance(reply, NoScriptError) and not reloaded:
                lost.append(call)  # Redis restarted or its scripts were flushed
            elif isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        if lost:
            try:
                for source in {call[0] for call in lost}:
                    await self.redis.script_load(source)
            except Exception as exc:
                for *_, future in lost:
                    if not future.done():
                        future.set_exception(exc)
                return
            await self._send(lost, reloaded=True)

    @staticmethod
    async def _exchange(conn: Any, packed: bytes, count: int) -> list[Any]:
        """Send a batch and read its replies; an error reply is a value, not a raise."""
        await conn.send_packed_command(packed)
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
