"""The pool in-process against the real engine: the agent protocol, and failing boots."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from pool.core.exceptions import GenerationFailed, HandoffFailed
from pool.core.states import LaunchType
from pool.daemon import adoption
from pool.daemon.runtime import DockerRuntime
from pool.daemon.warm_pool import WarmPool
from pool.infra.metrics import Metrics
from pool.store.ownership import OwnershipStore

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running_pool(settings: Any) -> AsyncIterator[WarmPool]:
    """A started pool holding a real instance lease, drained and closed afterwards whatever
    the test did."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    ownership = OwnershipStore(redis, settings.pool_name, settings.instance_id)
    await ownership.claim_instance(ttl_s=120)  # longer than any test: no keeper needed
    pool = WarmPool(settings, DockerRuntime(), Metrics(), ownership)
    await adoption.open_pool(pool)
    try:
        yield pool
    finally:
        await adoption.close_pool(pool, timeout=1)
        await pool.runtime.close()
        await ownership.release_instance()
        await redis.aclose()


async def test_generator_error_is_a_failed_job_not_a_hang(
    make_settings: Callable[..., Any],
) -> None:
    async with running_pool(make_settings(pool_size=1)) as pool:
        lease = await asyncio.wait_for(pool.acquire(), 30)
        handoff = await lease.container.agent.handoff("ab" * 16, "x" * 11, {}, 5.0)
        with pytest.raises(GenerationFailed, match="seed"):
            await handoff.result(timeout=10)
        # The agent survives its generator's error and still answers.
        assert await lease.container.agent.ping() is not None
        pool.release(lease.container, healthy=True)


async def test_agent_refuses_bad_requests_and_concurrent_jobs(
    make_settings: Callable[..., Any],
) -> None:
    async with running_pool(make_settings(pool_size=1, map_resolution=4096)) as pool:
        lease = await asyncio.wait_for(pool.acquire(), 60)
        assert lease.launch_type in (LaunchType.WARM, LaunchType.COLD)
        agent = lease.container.agent
        with pytest.raises(HandoffFailed, match="bad job_id"):
            await agent.handoff("../../etc", "abc", {}, 5.0)
        first = await agent.handoff("cd" * 16, "abc", {}, 5.0)
        with pytest.raises(HandoffFailed, match="busy"):
            await agent.handoff("ef" * 16, "abc", {}, 5.0)
        done = await first.result(timeout=60)
        assert done["event"] == "done" and done["world"]["seed"] == 1099313834
        names = {f["name"] for f in done["files"]}
        assert {"biomes.npy", "biomes.png", "world.json"} <= names
        pool.release(lease.container, healthy=True)


async def test_a_broken_image_backs_off_instead_of_spinning(
    make_settings: Callable[..., Any],
) -> None:
    # The base image has no agent: every container exits at once.
    settings = make_settings(pool_size=2, worker_image="vwe-base:bookworm", boot_backoff_s=1,
                             boot_backoff_max_s=8, boot_timeout_s=10)
    registry = None

    def failed_boots() -> float:
        assert registry is not None
        return registry.get_sample_value("vwe_container_failures_total",
                                         {"template": "default", "phase": "boot"}) or 0.0

    async with running_pool(settings) as pool:
        registry = pool.metrics.registry
        started = time.monotonic()
        while failed_boots() < 4:  # each boot fails within a second or two
            await pool.wait_changed(timeout=1.0)
            pool.reconcile()  # the daemon's maintenance tick: boots resume after a back-off
            assert time.monotonic() - started < 60, "the boots did not fail"
        elapsed = time.monotonic() - started
        # Two boots fail together (max_concurrent_boots 2); the next ones wait 1 s, then 2 s:
        # without back-off four failures would take about as long as two boots.
        assert elapsed >= 1 + 2, elapsed
        timed = registry.get_sample_value("vwe_boot_duration_seconds_count",
                                          {"template": "default", "outcome": "failed"})
        assert timed == failed_boots()
        assert pool.state_counts().get("warm", 0) == 0
    leftovers = DockerRuntime()
    assert await leftovers.list({"vwe.pool": settings.pool_name}) == []
    await leftovers.close()
