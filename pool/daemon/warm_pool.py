"""The warm pool: containers booting -> warm -> busy -> (warm | retiring) -> gone, plus failed.

Decisions come from `pool.core.policy`; this module carries them out against the runtime and keeps
the bookkeeping. Everything runs on one event loop, so a lease is atomic without locks: no
await sits between choosing a warm container and marking it busy.

Ownership (`pool.store.ownership`): every container this pool creates gets an owner record
and a fencing token first; it is removed only while that record is still this daemon's, and
one taken over by another daemon is dropped from the books untouched ("fenced off").
Adoption of what dead daemons left is `pool.daemon.adoption`, which also opens (`open_pool`)
and closes (`close_pool`) a pool: adoption must come between learning the deployment and the
first boots, and the sweep after the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from pool.core import policy as decide
from pool.core.exceptions import BootFailed, ConfigError, PoolClosed, RuntimeUnavailable
from pool.core.policy import ContainerRecord
from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState, FailurePhase, LaunchType, RecycleReason
from pool.daemon.container import Container, Lease, LeaseNotHeld, container_logs, prepare_dir
from pool.daemon.runtime import (
    LABEL_CREATED,
    LABEL_DEPLOYMENT,
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_SPEC,
    LABEL_TEMPLATE,
    LABEL_USES,
    ContainerRuntime,
    ContainerSpec,
    spec_hash,
)
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.store import keys
from pool.store.ownership import OwnershipStore

log = get_logger("vwe.pool")

# How often a booting container's agent is probed; readiness costs at most this much latency.
READY_POLL_S = 0.02
# How often a booting container is checked for having exited, to fail fast instead of timing out.
EXITED_POLL_S = 1.0


class WarmPool:
    """`ownership` must hold a claimed instance lease; `lease_fresh` says whether the lease
    keeper renewed it within its TTL (a daemon resumed after a freeze longer than that uses
    nothing until it has renewed it and re-proved each container)."""

    def __init__(
        self, settings: Settings, runtime: ContainerRuntime, metrics: Metrics,
        ownership: OwnershipStore, *,
        clock: Callable[[], float] = time.time,
        lease_fresh: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.metrics = metrics
        self.clock = clock
        self.template = settings.template
        self.instance = settings.instance_id
        self.policy = settings.pool_policy()
        metrics.init_template(self.template)
        self.autoscaled: tuple[int, str] | None = None
        self.containers: dict[str, Container] = {}
        # Adopted containers of another image or worker spec: never leased, retired once the
        # target is warm with current ones (rolling, like any recycle).
        self.outdated: dict[str, Container] = {}
        self.ownership = ownership
        self.lease_fresh = lease_fresh
        # Set by `start`: this deployment's id, the worker image's id and the spec hash.
        self.deployment = ""
        self.image_id = ""
        self.spec_hash = ""
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Recent boot durations: the autoscaler plans for one boot time ahead.
        self.boot_times: deque[float] = deque(maxlen=50)
        # Boot times not yet recorded in Redis (the heartbeat takes them).
        self.unrecorded_boots: deque[float] = deque(maxlen=keys.BOOT_TIMES_KEPT)
        self._boot_failures = 0
        self._boots_blocked_until = 0.0
        # Image/boot failures so far, and the last one's message: a job waiting for a container
        # fails its attempt when a boot fails meanwhile (`acquire`).
        self.boot_failures_total = 0
        self.last_boot_error = ""
        # The engine as calls and probes last saw it. While it is unreachable no boot starts
        # (and none counts as an image failure); `engine_probe` resumes them.
        self.engine_up = True
        self.engine_error = ""
        self._closing = False
        # Latched once the pool first reaches its target: readiness means "has booted", and
        # must not flap while each lease's replacement boots.
        self.filled = False
        self.sockets_dir = settings.sockets_dir.resolve()

    # ---------- reading state ----------
    def views(self) -> list[ContainerRecord]:
        return [c.view() for c in self.containers.values()]

    def target(self) -> int:
        if self.policy.autoscale and self.autoscaled is not None:
            return self.autoscaled[0]
        return self.policy.size

    def cap(self) -> int:
        return self.policy.max

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.containers.values():
            counts[c.state.value] = counts.get(c.state.value, 0) + 1
        return counts

    def boots_blocked(self) -> bool:
        return (self._closing or not self.engine_up
                or self.clock() < self._boots_blocked_until)

    def serving(self) -> tuple[bool, str]:
        """Can a job submitted now be taken? (docs/architecture.md, "Readiness")

        Yes when a container is warm or busy (busy ones work the backlog and come back), or
        when none is but one can boot: the engine answers and the last boot did not fail.
        An empty pool whose boots fail, or whose engine is unreachable, cannot.
        """
        counts = self.state_counts()
        if self._closing:
            return False, "the pool is draining"
        if counts.get("warm", 0) or counts.get("busy", 0):
            return True, f"{counts.get('warm', 0)} warm, {counts.get('busy', 0)} busy"
        if not self.engine_up:
            return False, f"no container, and the Docker engine is unreachable: {self.engine_error}"
        if self.cap() == 0:
            return False, "no container, and VWE_POOL_MAX allows none"
        if self._boot_failures:
            return False, (f"no container, and the last {self._boot_failures} boot(s) failed: "
                           f"{self.last_boot_error}")
        return True, f"no container yet; {counts.get('booting', 0)} booting"

    def set_engine_up(self, up: bool, error: str = "") -> None:
        """Record what a call or probe saw of the engine; boots resume when it answers."""
        if up == self.engine_up:
            return
        self.engine_up, self.engine_error = up, error
        if up:
            log.info("docker engine reachable again; boots resume")
            self.reconcile()
        else:
            log.error("docker engine unreachable; boots paused (not an image failure)",
                      error=error)
        self._notify()

    def has_capacity(self) -> bool:
        return not self._closing and decide.has_capacity(self.views(), self.policy,
                                                         self.boots_blocked())

    def snapshot(self) -> list[dict[str, Any]]:
        """Every container this daemon can prove it owns; none while its lease is not fresh."""
        if not self.lease_fresh():
            return []
        now = self.clock()
        return [
            {"id": c.id[:12] or c.name, "name": c.name,
             "state": (ContainerState.RETIRING if c.name in self.outdated else c.state).value,
             "age_s": round(now - c.created_at, 1), "uses": c.uses, "daemon": self.instance}
            for c in [*self.containers.values(), *self.outdated.values()]
        ]

    async def wait_changed(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    def wait_changed_notify(self) -> None:
        """Wake whoever waits in `wait_changed` (a container became leasable again)."""
        self._notify()

    # ---------- life cycle ----------
    @property
    def closing(self) -> bool:
        return self._closing

    async def prepare(self) -> None:
        """Learn the deployment and the worker's make-up (`adoption.open_pool` runs this).

        Raises ConfigError (naming VWE_WORKER_IMAGE) when the engine lacks the worker image."""
        s = self.settings
        self.sockets_dir.mkdir(parents=True, exist_ok=True)
        self.deployment = await self.ownership.deployment_id()
        image = await self.runtime.image_id(s.worker_image)
        if image is None:
            raise ConfigError(
                f"VWE_WORKER_IMAGE={s.worker_image!r}: no such image on the Docker engine; "
                "build it (scripts/worker-image.sh) or point VWE_WORKER_IMAGE at one")
        self.image_id = image
        self.spec_hash = spec_hash(self._spec(self.sockets_dir.name), image)

    def set_policy(self, policy: PoolPolicy) -> None:
        if policy != self.policy:
            log.info("pool policy changed", old=self.policy.__dict__, new=policy.__dict__)
            self.policy = policy
            self.reconcile()

    def reconcile(self) -> None:
        """Boot and retire until warm capacity meets the target: called on every change."""
        if self._closing:
            return
        warm_enough = self.state_counts().get("warm", 0) >= min(self.target(), self.cap())
        if not self.filled:
            self.filled = warm_enough
        if warm_enough:
            for c in list(self.outdated.values()):
                self._retire(c, RecycleReason.OUTDATED)
        plan = decide.plan(self.views(), self.policy, self.clock(), self.target(),
                           self.boots_blocked())
        for name, reason in plan.retire:
            self._retire(self.containers[name], reason)
        for _ in range(plan.boots):
            self._spawn_boot(claimed=False)
        self._notify()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_boot(self, claimed: bool) -> Container:
        now = self.clock()
        name = f"{self.settings.pool_name}-{self.template}-{uuid.uuid4().hex[:10]}"
        c = Container(name=name, host_dir=self.sockets_dir / name, state=ContainerState.BOOTING,
                      created_at=now, last_used_at=now, owner=self.instance, claimed=claimed)
        self.containers[name] = c
        self._spawn(self._boot(c))
        return c

    def _spec(self, name: str, created_at: float = 0.0) -> ContainerSpec:
        s = self.settings
        return ContainerSpec(
            name=name, image=s.worker_image, host_dir=self.sockets_dir / name,
            labels={LABEL_POOL: s.pool_name, LABEL_TEMPLATE: self.template,
                    LABEL_OWNER: self.instance, LABEL_CREATED: f"{created_at:.3f}",
                    LABEL_USES: "0", LABEL_DEPLOYMENT: self.deployment,
                    LABEL_SPEC: self.spec_hash},
            environment={"VWE_WORKER_READY_DELAY_S": str(s.worker_ready_delay_s),
                         "VWE_MAP_RESOLUTION": str(s.map_resolution)},
            memory=s.worker_memory, cpus=s.worker_cpus, pids=s.worker_pids, user=s.worker_user,
            log_driver=s.worker_log_driver, log_max_size=s.worker_log_max_size,
            log_max_file=s.worker_log_max_file,
        )

    async def _boot(self, c: Container) -> None:
        started = time.monotonic()
        outcome = "failed"
        try:
            # The owner record comes first: a create this daemon never learns the id of is
            # still found (by label) and proved its own (by token) when it drains.
            token = await self.ownership.claim_new(c.name)
            if token is None:
                raise LeaseNotHeld(c.name)
            c.token = token
            prepare_dir(c.host_dir, self.settings.worker_user)
            c.id = await self.runtime.start(self._spec(c.name, c.created_at))
            log.info("container booting", container=c.name, container_id=c.id[:12])
            await self._wait_ready(c, started)
            outcome = "ready"
        except TimeoutError:
            outcome = "timeout"
            self.last_boot_error = (f"container {c.name} not ready within "
                                    f"{self.settings.boot_timeout_s:.0f} s (VWE_BOOT_TIMEOUT_S)")
        except (asyncio.CancelledError, LeaseNotHeld) as exc:
            outcome = "cancelled"  # not the image's fault: no failure counted, no back-off
            if isinstance(exc, asyncio.CancelledError):
                raise
        except RuntimeUnavailable as exc:
            outcome = "engine_down"  # the engine's outage, not the image's failure
            self.set_engine_up(False, str(exc))
        except Exception as exc:
            log.warning("container boot error", container=c.name, error=repr(exc))
            self.last_boot_error = f"container {c.name}: {exc}"
        finally:
            elapsed = time.monotonic() - started
            if outcome not in ("cancelled", "engine_down"):
                self.metrics.boot_duration.labels(self.template, outcome).observe(elapsed)
            if outcome == "ready":
                self._boot_failures = 0
                self.boot_times.append(elapsed)
                self.unrecorded_boots.append(elapsed)
                c.state = ContainerState.BUSY if c.claimed else ContainerState.WARM
                c.last_used_at = self.clock()
                c.ready.set_result(None)
                log.info("container warm", container=c.name, boot_s=round(elapsed, 3))
            else:
                await self._boot_failed(c, outcome)
            if not self._closing:
                self.reconcile()

    async def _wait_ready(self, c: Container, started: float) -> None:
        next_exit_check = time.monotonic() + EXITED_POLL_S
        async with asyncio.timeout(self.settings.boot_timeout_s - (time.monotonic() - started)):
            while await c.agent.ping(timeout=1.0) is None:
                if time.monotonic() >= next_exit_check:
                    if not await self.runtime.is_running(c.id):
                        logs = (await container_logs(self.runtime, c)).strip().splitlines()
                        raise BootFailed("container exited before its agent was ready"
                                         + (f" (last log line: {logs[-1][:300]})" if logs
                                            else ""))
                    next_exit_check = time.monotonic() + EXITED_POLL_S
                await asyncio.sleep(READY_POLL_S)
        await c.agent.connect()

    async def _boot_failed(self, c: Container, outcome: str) -> None:
        c.state = ContainerState.FAILED
        if outcome not in ("cancelled", "engine_down"):
            self._boot_failures += 1
            self.boot_failures_total += 1
            backoff = decide.boot_backoff(self._boot_failures, self.settings.boot_backoff_s,
                                          self.settings.boot_backoff_max_s)
            self._boots_blocked_until = self.clock() + backoff
            self.metrics.container_failures.labels(self.template, FailurePhase.BOOT).inc()
            logs = await container_logs(self.runtime, c)
            log.error("container failed to boot", container=c.name, outcome=outcome,
                      backoff_s=backoff, logs=logs)
        if not c.ready.done():
            c.ready.set_exception(BootFailed(f"container {c.name} failed to boot ({outcome})"))
            c.ready.exception()  # mark retrieved: nobody may be waiting on it
        await self._remove(c)

    def _retire(self, c: Container, reason: RecycleReason) -> None:
        if c.state in (ContainerState.RETIRING, ContainerState.GONE):
            return
        c.state = ContainerState.RETIRING
        self.metrics.recycled_total.labels(self.template, reason.value).inc()
        log.info("container retiring", container=c.name, reason=reason.value, uses=c.uses)
        self._spawn(self._remove(c))

    async def _remove(self, c: Container) -> None:
        """Remove a container this daemon still owns by token; drop one it no longer owns."""
        owned = True
        try:
            if c.token:
                owned = (await self.ownership.owners([c.name]))[c.name] == \
                    self.ownership.mine(c.token)
            if owned:
                if c.id:
                    await self.runtime.remove(c.id)
                if c.token:
                    await self.ownership.release(c.name, c.token)
        except Exception as exc:
            # Forget it anyway: the reaper finds it by label, proves it ours by its record and
            # removes it then.
            owned = False
            log.warning("container removal failed", container=c.name, error=repr(exc))
        c.state = ContainerState.GONE
        c.agent.close()
        self.containers.pop(c.name, None)
        self.outdated.pop(c.name, None)
        if owned:
            shutil.rmtree(c.host_dir, ignore_errors=True)
        elif c.token and c.id:
            self.metrics.fenced.labels(self.template).inc()
            log.warning("container fenced off", container=c.name, token=c.token,
                        reason="taken over before its removal")
        self.reconcile()  # a freed slot under the cap may be wanted for a replacement now

    # ---------- leasing ----------
    async def acquire(self) -> Lease:
        """A container for one job: warm if any, else a boot (claimed or new), else wait.

        Raises `BootFailed` when a boot fails while the caller waits (the boot it waits on,
        or any boot while it waits for capacity): that failure counts against the job's
        attempt. Cancelling the wait gives back a container claimed for it.
        """
        failures_seen = self.boot_failures_total
        while True:
            if self._closing:
                raise PoolClosed("the pool is draining")
            if self.boot_failures_total != failures_seen:
                raise BootFailed(f"a container failed to boot while the job waited: "
                                 f"{self.last_boot_error}")
            if not self.lease_fresh():
                await self.wait_changed(timeout=0.2)  # nothing is provably ours right now
                continue
            views = self.views()
            name = decide.pick_lease(views, self.policy, self.clock())
            if name is not None:
                c = self.containers[name]
                c.state = ContainerState.BUSY
                c.uses += 1
                # The caller replenishes (`reconcile`) right after its handoff: starting a
                # boot first would put the Docker SDK's work on this process's GIL in the
                # handoff's path.
                return Lease(c, LaunchType.WARM)
            name = decide.pick_spare_boot(views)
            if name is not None:
                c = self.containers[name]
                c.claimed = True
                self.reconcile()
            elif decide.can_cold_start(views, self.policy, self.boots_blocked()):
                c = self._spawn_boot(claimed=True)
            else:
                await self.wait_changed(timeout=1.0)
                continue
            try:
                await asyncio.shield(c.ready)
            except BootFailed as exc:
                if self.boot_failures_total != failures_seen:
                    raise BootFailed(f"{exc}: {self.last_boot_error}") from None
                continue  # cancelled or an engine outage: not the image's failure
            except asyncio.CancelledError:
                self._unclaim(c)
                raise
            c.uses += 1
            return Lease(c, LaunchType.COLD)

    def _unclaim(self, c: Container) -> None:
        """The job that claimed a booting container gave up on it."""
        if c.ready.done() and not c.ready.cancelled() and c.ready.exception() is None:
            if c.state is ContainerState.BUSY:
                self.release(c, healthy=True)  # it became ready for us: warm for the next
        else:
            c.claimed = False

    def release(self, c: Container, *, healthy: bool, phase: FailurePhase | None = None) -> None:
        """Give a container back after a job: warm again, or retired."""
        c.last_used_at = self.clock()
        c.claimed = False
        if c.state is not ContainerState.BUSY:
            return  # already retired (drain, or killed and noticed)
        if not healthy:
            if phase is not None:
                self.metrics.container_failures.labels(self.template, phase.value).inc()
            self._retire(c, RecycleReason.UNHEALTHY)
        elif c.uses >= self.policy.max_uses:
            self._retire(c, RecycleReason.MAX_USES)
        else:
            c.state = ContainerState.WARM
        self.reconcile()

    # ---------- maintenance ----------
    async def check_health(self) -> None:
        """Probe every warm container; one that does not answer is replaced."""
        warm = [c for c in self.containers.values() if c.state is ContainerState.WARM]
        answers = await asyncio.gather(*(c.agent.ping(timeout=2.0) for c in warm))
        for c, answer in zip(warm, answers, strict=True):
            if answer is None and c.state is ContainerState.WARM:
                log.warning("container failed its health probe", container=c.name)
                self._retire(c, RecycleReason.UNHEALTHY)
        self.reconcile()

    def adopt(self, c: Container, *, outdated: bool) -> None:
        """Take a container over into the books (`pool.daemon.adoption` proved it ours)."""
        c.ready.set_result(None)
        (self.outdated if outdated else self.containers)[c.name] = c
        self._notify()

    async def drain(self, timeout: float) -> None:
        """Stop leasing, let busy containers finish up to `timeout`, then remove everything
        this daemon owns (`adoption.close_pool` then sweeps what is left)."""
        self._closing = True
        self._notify()
        deadline = time.monotonic() + timeout
        while (any(c.state is ContainerState.BUSY for c in self.containers.values())
               and time.monotonic() < deadline):
            await self.wait_changed(timeout=0.2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        owned = [*self.containers.values(), *self.outdated.values()]
        for c in owned:
            if c.state is not ContainerState.GONE:
                self.metrics.recycled_total.labels(self.template, RecycleReason.DRAIN).inc()
        await asyncio.gather(*(self._remove(c) for c in owned), return_exceptions=True)
