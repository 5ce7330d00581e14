"""The daemon: the pool, the dispatcher and the maintenance schedule.

Start: recover containers, fill the pool, schedule maintenance. The composition root
(`pool.entry.root`) runs the dispatcher loop (`Daemon.tasks`) and carries out the shutdown one
step at a time, in the order docs/architecture.md gives: stop taking jobs, wait for in-flight
ones up to the drain timeout, drain the pool's containers, close the Docker client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pool.core import constants
from pool.core.autoscale import autoscale_target, boot_estimate
from pool.daemon.dispatcher import REDIS_ERRORS, Dispatcher
from pool.daemon.runtime import ContainerRuntime
from pool.daemon.warm_pool import WarmPool
from pool.infra.crossfs import remove_stale_incoming
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.store.job_store import JobStore

log = get_logger("vwe.daemon")

# A `.incoming-*` folder untouched this long is a crashed copy (even a slow shared store copies
# a world in seconds), not one in progress on another host.
STALE_INCOMING_S = 3600.0


class Daemon:
    def __init__(self, settings: Settings, metrics: Metrics, store: JobStore,
                 runtime: ContainerRuntime) -> None:
        self.settings = settings
        self.metrics = metrics
        self.runtime = runtime
        self.store = store
        self.pool = WarmPool(settings, self.runtime, metrics,
                             alive_daemons=self.store.alive_daemons)
        self.dispatcher = Dispatcher(settings, self.pool, self.store, metrics)
        self.scheduler = AsyncIOScheduler()
        self.queue_depth = 0
        self._docker_up = True
        # Metrics read this daemon as a live snapshot at scrape time.
        self.pool_view = _PoolView(self)
        metrics.pool_collector.pools.append(self.pool_view)

    async def start(self) -> None:
        s = self.settings
        await self.store.ensure_group()
        # A crash mid-publish leaves a hidden temporary folder in the worlds store.
        await asyncio.to_thread(remove_stale_incoming, s.worlds_dir, STALE_INCOMING_S)
        self.pool.policy = await self.store.load_policy(self.pool.policy)
        await self.heartbeat()
        await self.pool.start()
        every = self.scheduler.add_job
        opts: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        every(self.maintain, "interval", seconds=s.maintenance_interval_s, id="recycle", **opts)
        every(self.pool.check_health, "interval", seconds=s.health_interval_s, id="health",
              **opts)
        every(self.heartbeat, "interval", seconds=constants.HEARTBEAT_INTERVAL_S, id="heartbeat",
              **opts)
        every(self.pool.recover, "interval", seconds=constants.REAP_INTERVAL_S, id="reap",
              **opts)
        every(self.autoscale, "interval", seconds=constants.AUTOSCALE_INTERVAL_S,
              id="autoscale", **opts)
        self.scheduler.start()
        log.info("daemon started", instance=s.instance_id, size=self.pool.policy.size,
                 max=self.pool.policy.max, image=s.worker_image)

    async def maintain(self) -> None:
        """Recycle and replenish; the pure plan decides, the pool acts."""
        self.pool.reconcile()

    async def heartbeat(self) -> None:
        """Announce this daemon, publish its containers, refresh policy and queue depth,
        and keep running jobs' stream entries claimed."""
        boots = list(self.pool.unrecorded_boots)
        try:
            await self.store.heartbeat(self.settings.instance_id,
                                       {"daemon": self.settings.instance_id,
                                        "containers": self.pool.snapshot()}, boots)
            for _ in boots:  # recorded; newer ones may have arrived meanwhile
                self.pool.unrecorded_boots.popleft()
            policy = await self.store.load_policy(self.pool.policy)
            self.pool.set_policy(policy)
            self.queue_depth = await self.store.depth()
            await self.store.keep_claimed(self.dispatcher.consumer,
                                          list(self.dispatcher.inflight))
            self.dispatcher.redis_up = True
        except REDIS_ERRORS as exc:
            self.dispatcher.redis_up = False
            log.warning("heartbeat failed: redis unreachable", error=repr(exc))
        self._docker_up = await self.runtime.ping()

    async def autoscale(self) -> None:
        p = self.pool.policy
        if not p.autoscale:
            self.pool.set_autoscaled(None)
            return
        now = time.time()
        arrivals = await self.store.arrivals(now - self.settings.autoscale_window_s)
        boot_s = boot_estimate(self.pool.boot_times, self.settings.boot_timeout_s)
        current = self.pool.target()
        target, reason = autoscale_target(
            arrivals, now, window_s=self.settings.autoscale_window_s, boot_s=boot_s,
            quantile=self.settings.autoscale_quantile, waiting=self.queue_depth, policy=p,
            current=current, step_down=self.settings.autoscale_step_down)
        if (target, reason) != self.pool.autoscaled:
            log.info("autoscale target", target=target, reason=reason, boot_s=round(boot_s, 2))
        self.pool.set_autoscaled((target, reason))

    def tasks(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The long-running loops the composition root runs (and supervises) for the daemon."""
        return {"dispatcher": self.dispatcher.run}

    def stop_taking_jobs(self) -> None:
        """Shutdown step 2: take no new job (the root then cancels the dispatcher loop)."""
        log.info("draining", inflight=len(self.dispatcher.inflight))
        self.dispatcher.stop_accepting()

    async def wait_inflight(self) -> None:
        """Shutdown step 3: let jobs in flight finish, up to VWE_DRAIN_TIMEOUT_S."""
        await self.dispatcher.wait_inflight(self.settings.drain_timeout_s)

    async def drain(self) -> None:
        """Shutdown step 4: stop maintenance, remove the pool's containers, leave the pool."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        try:
            await self.pool.drain(timeout=1.0)
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.store.forget_daemon(self.settings.instance_id)
            with contextlib.suppress(ValueError):
                self.metrics.pool_collector.pools.remove(self.pool_view)
        log.info("daemon stopped")


class _PoolView:
    """The daemon as the metrics collector sees it."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.template = daemon.pool.template

    def state_counts(self) -> dict[str, int]:
        return self.d.pool.state_counts()

    def target(self) -> int:
        return self.d.pool.target()

    def cap(self) -> int:
        return self.d.pool.cap()

    def queue_depth(self) -> int:
        return self.d.queue_depth

    def component_up(self) -> dict[str, bool]:
        return {"redis": self.d.dispatcher.redis_up, "docker": self.d._docker_up}

    def autoscale_choice(self) -> tuple[int, str] | None:
        return self.d.pool.autoscaled

