"""The supervisor restarts failed tasks with back-off, counts and names them, stops cleanly."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from prometheus_client import CollectorRegistry

from pool.infra.metrics import Metrics
from pool.infra.supervisor import ComponentState, Supervisor

pytestmark = pytest.mark.unit


def _restarts(registry: CollectorRegistry, task: str) -> float:
    value = registry.get_sample_value("vwe_task_restarts_total", {"task": task})
    return value or 0.0


async def test_a_failing_task_is_restarted_counted_and_shown_down() -> None:
    metrics = Metrics()
    registry = metrics.registry
    sup = Supervisor(metrics.task_restarts, base_s=0.01, max_s=0.05)
    runs = 0
    recovered = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise ValueError(f"boom {runs}")
        recovered.set()
        await asyncio.Event().wait()  # then runs for ever

    sup.spawn("dispatcher", flaky)
    await asyncio.wait_for(recovered.wait(), 5)
    assert runs == 4
    assert _restarts(registry, "dispatcher") == 3
    assert sup.down() == {}
    assert sup.alive("dispatcher")
    assert await sup.stop() is True
    assert sup.components["dispatcher"].state is ComponentState.STOPPED


async def test_a_task_is_down_while_it_waits_for_its_restart() -> None:
    sup = Supervisor(base_s=30, max_s=30)
    failed = asyncio.Event()

    async def broken() -> None:
        failed.set()
        raise RuntimeError("NOGROUP no such key")

    sup.spawn("dispatcher", broken)
    await asyncio.wait_for(failed.wait(), 5)
    await asyncio.sleep(0)
    down = sup.down()
    assert "dispatcher" in down and "NOGROUP" in down["dispatcher"]
    assert not sup.alive("dispatcher")
    assert await sup.stop(timeout=2) is True  # the back-off sleep is cancelled


async def test_a_task_that_returns_is_a_failure() -> None:
    metrics = Metrics()
    registry = metrics.registry
    sup = Supervisor(metrics.task_restarts, base_s=0.01, max_s=0.01)
    runs = 0
    third = asyncio.Event()

    async def quits() -> None:
        nonlocal runs
        runs += 1
        if runs >= 3:
            third.set()
            await asyncio.Event().wait()

    sup.spawn("events", quits)
    await asyncio.wait_for(third.wait(), 5)
    assert _restarts(registry, "events") == 2
    await sup.stop()


async def test_back_off_doubles_up_to_the_max() -> None:
    sup = Supervisor(base_s=0.01, max_s=0.04, stable_s=60)
    times: list[float] = []
    loop = asyncio.get_running_loop()
    sixth = asyncio.Event()

    async def always_fails() -> None:
        times.append(loop.time())
        if len(times) == 6:
            sixth.set()
        raise OSError("down")

    sup.spawn("heartbeat", always_fails)
    await asyncio.wait_for(sixth.wait(), 5)
    await sup.stop()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039
    assert all(g < 0.2 for g in gaps[3:])  # capped


async def test_periodic_job_failure_is_counted_and_cleared_by_a_success() -> None:
    metrics = Metrics()
    registry = metrics.registry
    now = [100.0]
    sup = Supervisor(metrics.task_restarts, clock=lambda: now[0])
    fail = [True]

    async def heartbeat() -> None:
        if fail[0]:
            raise ConnectionError("redis went away")

    job = sup.job("heartbeat", heartbeat, stale_after_s=5)
    await job()  # never raises: the scheduler must keep calling it
    assert "redis went away" in sup.down()["heartbeat"]
    assert _restarts(registry, "heartbeat") == 1
    fail[0] = False
    await job()
    assert sup.down() == {}


async def test_periodic_job_that_stops_succeeding_goes_stale() -> None:
    now = [0.0]
    sup = Supervisor(clock=lambda: now[0])

    async def ok() -> None:
        return None

    job = sup.job("heartbeat", ok, stale_after_s=5)
    await job()
    now[0] = 4.0
    assert sup.down() == {}
    now[0] = 10.0  # hung, or its runs skipped: no success for 10 s
    assert "no successful run" in sup.down()["heartbeat"]


async def test_stop_reports_a_task_that_does_not_stop() -> None:
    sup = Supervisor()

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await asyncio.sleep(0.5)  # ignores the first cancellation for a while
                return

    sup.spawn("stubborn", stubborn)
    await asyncio.sleep(0)
    assert await sup.stop(timeout=0.1) is False


async def test_an_outage_failure_leaves_the_job_up_until_it_goes_stale() -> None:
    """The expiry sweep runs once a minute: a Redis blip must not keep it (and /readyz) down
    until its next tick; Redis' own check shows the outage."""
    metrics = Metrics()
    now = [0.0]
    sup = Supervisor(metrics.task_restarts, clock=lambda: now[0])

    async def sweep() -> None:
        raise TimeoutError("Timeout reading from redis")

    job = sup.job("expiry", sweep, stale_after_s=30, outages=(TimeoutError,))
    await job()
    assert sup.down() == {}
    assert _restarts(metrics.registry, "expiry") == 1
    now[0] = 31.0  # failing on every tick for longer than it may: down after all
    await job()
    assert "no successful run" in sup.down()["expiry"]


async def test_a_failure_outside_the_outages_still_takes_the_job_down() -> None:
    sup = Supervisor()

    async def sweep() -> None:
        raise ValueError("a bug")

    await sup.job("expiry", sweep, outages=(TimeoutError,))()
    assert "ValueError: a bug" in sup.down()["expiry"]
