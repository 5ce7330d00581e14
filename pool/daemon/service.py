"""The daemon: the pool, the dispatcher and the maintenance schedule, started and stopped as one.

Start: check the settings, claim the instance lease (refused while another live process holds
this VWE_INSTANCE_ID), start the lease keeper, take over what dead daemons left, fill the pool,
take jobs. Stopping is a sequence of steps the composition root runs in order, each whatever
failed before it (`pool.entry.root.Root.shutdown`): `stop_taking_jobs`, `wait_inflight`,
`give_back_unfinished`, `remove_containers`, `leave`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pool.core import constants
from pool.core.autoscale import autoscale_target, boot_estimate
from pool.core.exceptions import ConfigError, StoreUnavailable
from pool.daemon import adoption, preflight
from pool.daemon.dispatcher import Dispatcher
from pool.daemon.lease import LeaseKeeper, LeaseState
from pool.daemon.runtime import ContainerRuntime
from pool.daemon.warm_pool import WarmPool
from pool.daemon.worlds import sweep_expired
from pool.infra.crossfs import remove_stale_incoming
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.infra.supervisor import Supervisor
from pool.store.job_store import JobStore
from pool.store.ownership import InstanceTaken, OwnershipStore
from pool.store.redis_client import OUTAGE_ERRORS, RedisHealth, connect_lease_client, is_outage

log = get_logger("vwe.daemon")

# A `.incoming-*` folder untouched this long is a crashed copy (even a slow shared store copies
# a world in seconds), not one in progress on another host.
STALE_INCOMING_S = 3600.0


class Daemon:
    """The worker side of one process. `supervisor` watches its long-running work: the
    dispatcher (a task) and the scheduled jobs (heartbeat, recycle, health, reap, engine probe,
    expiry sweep, autoscale); `/readyz` reads it."""

    def __init__(self, settings: Settings, metrics: Metrics, store: JobStore,
                 runtime: ContainerRuntime, supervisor: Supervisor) -> None:
        self.settings = settings
        self.metrics = metrics
        # The store's client is the daemon's own (pool/store/clients.py): HTTP load cannot
        # take the dispatcher's and the heartbeat's connections.
        self.redis = store.redis
        self.redis_health: RedisHealth = getattr(self.redis, "health", RedisHealth())
        self.runtime = runtime
        self.supervisor = supervisor
        self.store = store
        self.ownership = OwnershipStore(self.redis, settings.pool_name, settings.instance_id)
        self.keeper = LeaseKeeper(
            lambda: connect_lease_client(settings, constants.LEASE_SOCKET_TIMEOUT_S),
            self.ownership.lease_key, self.ownership.nonce, settings.heartbeat_ttl_s,
            self._lease_changed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lease_claimed = False
        self._foreign = False  # logged once: Redis holds another deployment id than ours
        self._engine_period = constants.ENGINE_PROBE_INTERVAL_S  # the engine job's, seconds
        self.pool = WarmPool(settings, self.runtime, metrics, self.ownership,
                             lease_fresh=self.lease_fresh)
        self.dispatcher = Dispatcher(settings, self.pool, self.store, metrics)
        self.scheduler = AsyncIOScheduler()
        self.queue_depth = 0
        # Metrics read this daemon as a live snapshot at scrape time.
        self.pool_view = _PoolView(self)
        metrics.pool_collector.pools.append(self.pool_view)

    def lease_fresh(self) -> bool:
        """The lease was renewed within its TTL (by this process's clock): what this daemon
        holds is still its own. False after a freeze or stall longer than the TTL, until the
        keeper renews it and the containers are re-proved."""
        k = self.keeper
        return (self._lease_claimed and k.state is LeaseState.HELD
                and time.monotonic() - k.renewed_at < k.ttl_s)

    def _lease_changed(self, state: LeaseState) -> None:
        """Called on the keeper's thread: hand the change to the event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_lease, state)

    def _on_lease(self, state: LeaseState) -> None:
        if state is LeaseState.HELD:
            log.warning("instance lease renewed after a lapse: re-proving every container")
            task = asyncio.ensure_future(adoption.revalidate(self.pool))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return
        self.metrics.lease_lost.inc()
        if state is LeaseState.TAKEN:
            log.error("another process holds this daemon's VWE_INSTANCE_ID lease now: "
                      "stopping the use of every container and taking no more jobs",
                      instance=self.settings.instance_id)
            self.dispatcher.stop_accepting()
            for c in [*self.pool.containers.values(), *self.pool.outdated.values()]:
                adoption.fence_off(self.pool, c, "this daemon's instance id was taken")
        else:
            log.error("instance lease lapsed (silent past VWE_HEARTBEAT_TTL_S): using no "
                      "container until it is renewed and each is re-proved by its token",
                      ttl_s=self.settings.heartbeat_ttl_s)

    async def _claim_instance(self) -> None:
        """Claim this instance id's lease. A holder that is not renewing it (this daemon's own
        predecessor, just killed) is waited out, up to one TTL; one that renews it is a live
        daemon with the same VWE_INSTANCE_ID: ConfigError."""
        ttl = self.settings.heartbeat_ttl_s
        try:
            await self.ownership.claim_instance(ttl)
            return
        except InstanceTaken as exc:
            first = exc
        watch = 2 * constants.HEARTBEAT_INTERVAL_S + 0.5
        await asyncio.sleep(watch)
        left = await self.ownership.lease_ttl(self.settings.instance_id)
        if left is not None and left > first.ttl_s - watch + 0.5:
            raise ConfigError(str(first))  # renewed meanwhile: a live daemon holds it
        log.warning("waiting for a silent predecessor's lease on this VWE_INSTANCE_ID to run "
                    "out", instance=self.settings.instance_id, left_s=left)
        if left is not None:
            await asyncio.sleep(left + 0.05)
        try:
            await self.ownership.claim_instance(ttl)
        except InstanceTaken as exc:
            raise ConfigError(str(exc)) from None

    async def start(self) -> None:
        """Raises ConfigError (naming the variable) for settings that make the pool unusable
        and for an instance id a live daemon holds."""
        s = self.settings
        self._loop = asyncio.get_running_loop()
        preflight.check_settings(s.data_dir, s.pool_name, s.template, s.worker_user,
                                 os.geteuid())
        await self._claim_instance()
        self._lease_claimed = True
        self.keeper.start()
        await self.store.ensure_group()
        # A crash mid-publish leaves a hidden temporary folder in the worlds store.
        await asyncio.to_thread(remove_stale_incoming, s.worlds_dir, STALE_INCOMING_S)
        self.pool.policy = await self.store.load_policy(self.pool.policy)
        await self.engine_probe()
        await adoption.open_pool(self.pool)
        await self.heartbeat()
        job = self.supervisor.job
        every = self.scheduler.add_job
        opts: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        hb = constants.PUBLISH_INTERVAL_S
        # A job is down when it has not succeeded for a few of its periods (it fails, hangs,
        # or its runs are being skipped).
        every(job("recycle", self.maintain, stale_after_s=5 * s.maintenance_interval_s + 5),
              "interval", seconds=s.maintenance_interval_s, id="recycle", **opts)
        every(job("health", self.pool.check_health, stale_after_s=3 * s.health_interval_s + 5),
              "interval", seconds=s.health_interval_s, id="health", **opts)
        # Redis being unreachable is `/readyz`'s "redis" check; the jobs that need it are not
        # reported down for it as well (the heartbeat still goes down once its lease lapses).
        redis_down = (*OUTAGE_ERRORS, StoreUnavailable)
        every(job("heartbeat", self.heartbeat, stale_after_s=s.heartbeat_ttl_s,
                  outages=redis_down), "interval", seconds=hb, id="heartbeat", **opts)
        every(job("engine", self.engine_probe), "interval", seconds=self._engine_period,
              id="engine", **opts)
        every(job("reap", self.reap, outages=redis_down), "interval",
              seconds=constants.REAP_INTERVAL_S, id="reap", **opts)
        every(job("autoscale", self.autoscale, outages=redis_down), "interval",
              seconds=constants.AUTOSCALE_INTERVAL_S, id="autoscale", **opts)
        every(job("expiry", self.sweep_worlds, outages=redis_down), "interval",
              seconds=s.expiry_sweep_interval_s, id="expiry", **opts)
        self.scheduler.start()
        self.supervisor.spawn("dispatcher", self.dispatcher.run)
        log.info("daemon started", instance=s.instance_id, size=self.pool.policy.size,
                 max=self.pool.policy.max, image=s.worker_image)

    async def maintain(self) -> None:
        """Recycle and replenish; the pure plan decides, the pool acts."""
        self.pool.reconcile()

    async def reap(self) -> None:
        """Re-prove what this daemon holds, then take over what dead daemons left."""
        await adoption.revalidate(self.pool)
        await adoption.reap(self.pool)

    async def heartbeat(self) -> None:
        """Publish this daemon's containers, refresh policy and queue depth, and keep running
        jobs' stream entries claimed. Raises when Redis does not answer (the supervisor shows
        it). Liveness is not this: it is the lease keeper's thread (`pool.daemon.lease`)."""
        boots = list(self.pool.unrecorded_boots)
        try:
            # After a data loss: the deployment id back first (SET NX), or the next daemon to
            # start makes a new one and leaves this one's containers alone for ever.
            held = await self.ownership.restore_deployment(self.pool.deployment)
            if held is not None and held != self.pool.deployment and not self._foreign:
                self._foreign = True
                log.error("Redis holds another deployment id than this daemon's (it lost its "
                          "data and another deployment started meanwhile): daemons of that "
                          "one will leave this one's containers alone",
                          ours=self.pool.deployment, redis=held)
            beat = await self.store.beat(
                self.settings.instance_id, {"daemon": self.settings.instance_id,
                                            "containers": self.pool.snapshot()},
                boots, list(self.dispatcher.inflight), self.pool.policy)
            for _ in boots:  # recorded; newer ones may have arrived meanwhile
                self.pool.unrecorded_boots.popleft()
            self.pool.set_policy(beat.policy)
            self.queue_depth = beat.depth
            self.dispatcher.redis_up = True
            self.redis_health.observe(True)
        except Exception as exc:
            if is_outage(exc):
                self.dispatcher.redis_up = False
                self.redis_health.observe(False, exc)
            raise

    async def engine_probe(self) -> None:
        """Ask the engine whether it answers; the pool pauses and resumes boots from it.
        Runs every ENGINE_PROBE_INTERVAL_S while the engine answers (a docker-py ping costs a
        few ms of CPU: once the largest part of an idle daemon's cost), every
        ENGINE_RETRY_INTERVAL_S while it does not, so boots resume soon after it is back."""
        try:
            async with asyncio.timeout(2.0):
                up = await self.runtime.ping()
        except TimeoutError:
            up = False
        self.pool.set_engine_up(up, "" if up else "the Docker engine did not answer a ping")
        period = (constants.ENGINE_PROBE_INTERVAL_S if up
                  else constants.ENGINE_RETRY_INTERVAL_S)
        if period != self._engine_period and self.scheduler.get_job("engine") is not None:
            self.scheduler.reschedule_job("engine", trigger="interval", seconds=period)
        self._engine_period = period

    async def sweep_worlds(self) -> None:
        removed = await sweep_expired(self.settings.worlds_dir, self.store)
        if removed:
            log.info("expired worlds removed", count=removed)

    async def autoscale(self) -> None:
        p = self.pool.policy
        if not p.autoscale:
            self.pool.autoscaled = None
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
        self.pool.autoscaled = (target, reason)
        self.pool.reconcile()

    def readiness(self) -> dict[str, tuple[bool, str]]:
        """The worker side's checks for `/readyz`: {check: (ok, why)}."""
        checks: dict[str, tuple[bool, str]] = {}
        down = self.supervisor.down()
        dispatcher_ok = self.supervisor.alive("dispatcher") and self.dispatcher.redis_up
        checks["dispatcher"] = (dispatcher_ok, down.get("dispatcher", "")
                                or ("" if self.dispatcher.redis_up else "redis unreachable"))
        for name, why in down.items():
            if name != "dispatcher":
                checks[name] = (False, why)
        checks["docker"] = (self.pool.engine_up, self.pool.engine_error)
        checks["pool"] = self.pool.serving()
        return checks

    # ---------- shutdown steps (the composition root runs them in order) ----------
    async def stop_taking_jobs(self) -> bool:
        """Shutdown step: the dispatcher takes no more entries, the pool boots nothing more;
        the supervised loops and the maintenance schedule stop. False when a loop did not
        stop within 5 s."""
        log.info("draining", inflight=len(self.dispatcher.inflight))
        self.dispatcher.stop_accepting()
        self.pool.stop_booting()
        try:
            return await self.supervisor.stop(timeout=5.0)
        finally:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)

    async def wait_inflight(self) -> None:
        """Shutdown step: let the jobs in flight finish, up to VWE_DRAIN_TIMEOUT_S."""
        await self.dispatcher.wait_inflight(self.settings.drain_timeout_s)

    async def give_back_unfinished(self) -> None:
        """Shutdown step: jobs still running go back to the queue for another daemon."""
        await self.dispatcher.release_inflight()

    async def remove_containers(self) -> None:
        """Shutdown step: remove every container this daemon owns (ones whose creation was in
        flight too) and what dead daemons left, waiting a little for a silent one's lease."""
        if not self._lease_claimed:  # a start refused before the claim owns nothing
            return
        s = self.settings
        await adoption.close_pool(self.pool, timeout=1.0,
                                  leftovers_s=min(s.heartbeat_ttl_s + 1, s.drain_timeout_s))

    async def leave(self) -> None:
        """Shutdown step: forget this daemon's heartbeat record and release its instance
        lease; the lease keeper and the metrics view stop whatever happens. Raises the first
        Redis error after attempting both."""
        errors: list[Exception] = []
        try:
            if self._lease_claimed:
                for action in (self.store.forget_daemon(self.settings.instance_id),
                               self.ownership.release_instance()):
                    try:
                        await action
                    except Exception as exc:  # release the lease even if forgetting failed
                        errors.append(exc)
        finally:
            self.keeper.stop()
            with contextlib.suppress(ValueError):
                self.metrics.pool_collector.pools.remove(self.pool_view)
        log.info("daemon stopped", clean=not errors)
        if errors:
            raise errors[0]


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
        return {"redis": self.d.redis_health.up, "docker": self.d.pool.engine_up}

    def autoscale_choice(self) -> tuple[int, str] | None:
        return self.d.pool.autoscaled

