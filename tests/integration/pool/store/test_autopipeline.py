"""Automatic pipelining against the real Redis: shared round trips, per-caller replies."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from pool.store.autopipeline import AutoPipeline

pytestmark = pytest.mark.integration

# Echoes its argument doubled, counts its calls, and fails on request.
SCRIPT = """
redis.call('INCR', KEYS[1])
if ARGV[1] == 'bad' then return redis.error_reply('asked to fail') end
return tonumber(ARGV[1]) * 2
"""
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


@pytest.fixture
async def client(redis_url: str, redis_client: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    await r.aclose()


async def test_concurrent_calls_share_round_trips_and_each_gets_its_own_reply(
    client: aioredis.Redis,
) -> None:
    ap = AutoPipeline(client)
    replies = await asyncio.gather(*(ap.run_script(SCRIPT, SHA, ["calls"], [i])
                                     for i in range(200)))
    assert replies == [2 * i for i in range(200)]
    assert await client.get("calls") == b"200"
    # The first call finds the script missing (one trip, then a reload and a resend); the
    # other 199 ride in batches of at most MAX_BATCH.
    assert ap.round_trips <= 1 + 1 + -(-199 // ap.max_batch)


async def test_an_error_reply_reaches_only_its_caller(client: aioredis.Redis) -> None:
    ap = AutoPipeline(client)
    results = await asyncio.gather(ap.run_script(SCRIPT, SHA, ["calls"], [1]),
                                   ap.run_script(SCRIPT, SHA, ["calls"], ["bad"]),
                                   ap.run_script(SCRIPT, SHA, ["calls"], [3]),
                                   return_exceptions=True)
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ResponseError) and "asked to fail" in str(results[1])


async def test_scripts_flushed_from_redis_are_loaded_again(client: aioredis.Redis) -> None:
    ap = AutoPipeline(client)
    assert await ap.run_script(SCRIPT, SHA, ["calls"], [5]) == 10
    await client.script_flush()
    assert await asyncio.gather(*(ap.run_script(SCRIPT, SHA, ["calls"], [i])
                                  for i in range(3))) == [0, 2, 4]
    assert await client.get("calls") == b"4"  # nothing ran twice


async def test_a_caller_that_gives_up_does_not_disturb_the_others(
    client: aioredis.Redis,
) -> None:
    ap = AutoPipeline(client)
    first = asyncio.ensure_future(ap.run_script(SCRIPT, SHA, ["calls"], [1]))
    doomed = asyncio.ensure_future(ap.run_script(SCRIPT, SHA, ["calls"], [2]))
    later = asyncio.ensure_future(ap.run_script(SCRIPT, SHA, ["calls"], [3]))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await first == 2 and await later == 6
    assert doomed.cancelled()


async def test_an_unreachable_redis_fails_every_caller_with_a_connection_error() -> None:
    unreachable = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    ap = AutoPipeline(unreachable)
    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(ap.run_script(SCRIPT, SHA, ["calls"], [i]) for i in range(5)),
            return_exceptions=True), timeout=30)
    finally:
        await unreachable.aclose()
    assert all(isinstance(r, RedisConnectionError) for r in results), results
