"""The warm pool: the container state machine driven against the real Docker engine.

Every decision and every state change is `pool.core.machine.PoolMachine`'s, the same machine
the simulator drives on a virtual clock (docs/architecture.md, "One state machine"): what to
boot and retire, whom to lease, back to warm or retired after a job, boot deadlines and the
boot back-off. This module carries out its effects (`Boot`: claim an owner record, create and
start the container, wait for its agent; `Retire`: remove it) and reports what came of them
(`boot_ready`, `boot_failed`, `removed`). Everything runs on one event loop, so a lease is
atomic without locks: no await sits between choosing a warm container and marking it busy.

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
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from pool.core import constants
from pool.core.exceptions import BootFailed, PoolClosed, RuntimeUnavailable
from pool.core.machine import Boot, Effect, PoolMachine
from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState, FailurePhase, LaunchType, RecycleReason
from pool.daemon import preflight
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
        self.machine = PoolMachine(
            settings.pool_policy(), new_id=self._new_name, boot_timeout_s=settings.boot_timeout_s,
            boot_backoff_s=settings.boot_backoff_s, boot_backoff_max_s=settings.boot_backoff_max_s)
        metrics.init_template(self.template)
        # The effects side of the machine's records: containers in its decisions, and outdated
        # adopted ones (another image or worker spec) held only until it retires them.
        self.containers: dict[str, Container] = {}
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
        self.boot_times: deque[float] = deque(maxlen=constants.BOOT_HISTORY)
        # Boot times not yet recorded in Redis (the heartbeat takes them).
        self.unrecorded_boots: deque[float] = deque(maxlen=keys.BOOT_TIMES_KEPT)
        # Image/boot failures so far, and the last one's message: a job waiting for a container
        # fails its attempt when a boot fails meanwhile (`acquire`).
        self.boot_failures_total = 0
        self.last_boot_error = ""
        # Why the engine was last seen unreachable (the machine holds whether it is).
        self.engine_error = ""
        self.sockets_dir = settings.sockets_dir.resolve()

    def _new_name(self) -> str:
        return f"{self.settings.pool_name}-{self.template}-{uuid.uuid4().hex[:10]}"

    # ---------- reading state (the machine's) ----------
    @property
    def policy(self) -> PoolPolicy:
        return self.machine.policy

    @policy.setter
    def policy(self, policy: PoolPolicy) -> None:
        """Set before the pool opens (the stored policy); later, `set_policy` replans."""
        self.machine.policy = policy

    @property
    def autoscaled(self) -> tuple[int, str] | None:
        """The autoscaler's (target, reason), or None while autoscaling is off."""
        return self.machine.autoscaled

    @autoscaled.setter
    def autoscaled(self, choice: tuple[int, str] | None) -> None:
        self.machine.set_autoscaled(choice)

    @property
    def engine_up(self) -> bool:
        return self.machine.engine_up

    @property
    def closing(self) -> bool:
        return self.machine.closing

    def target(self) -> int:
        return self.machine.target()

    def cap(self) -> int:
        return self.machine.cap()

    def state_counts(self) -> dict[str, int]:
        return self.machine.state_counts()

    def has_capacity(self) -> bool:
        return self.machine.has_capacity(self.clock())

    def serving(self) -> tuple[bool, str]:
        """Can a job submitted now be taken? (docs/architecture.md, "Readiness")

        Yes when a container is warm or busy (busy ones work the backlog and come back), or
        when none is but one can boot: the engine answers and the last boot did not fail.
        An empty pool whose boots fail, or whose engine is unreachable, cannot.
        """
        counts = self.state_counts()
        if self.closing:
            return False, "the pool is draining"
        if counts.get("warm", 0) or counts.get("busy", 0):
            return True, f"{counts.get('warm', 0)} warm, {counts.get('busy', 0)} busy"
        if not self.engine_up:
            return False, f"no container, and the Docker engine is unreachable: {self.engine_error}"
        if self.cap() == 0:
            return False, "no container, and VWE_POOL_MAX allows none"
        failures = self.machine.boot_failures
        if failures:
            return False, (f"no container, and the last {failures} boot(s) failed: "
                           f"{self.last_boot_error}")
        return True, f"no container yet; {counts.get('booting', 0)} booting"

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

    # ---------- life cycle ----------
    async def prepare(self) -> None:
        """Learn the deployment and the worker's make-up (`adoption.open_pool` runs this).

        Raises ConfigError naming the variable when every boot would fail (`preflight`)."""
        s = self.settings
        self.sockets_dir.mkdir(parents=True, exist_ok=True)
        self.deployment = await self.ownership.deployment_id()
        image = preflight.check_worker_image(s.worker_image,
                                             await self.runtime.image_id(s.worker_image))
        preflight.check_worker_resources(s.worker_cpus, s.worker_memory,
                                         s.worker_memory_bytes, *await self.runtime.capacity())
        self.image_id = image
        self.spec_hash = spec_hash(self._spec(self.sockets_dir.name), image)

    # ---------- feeding the machine ----------
    def set_engine_up(self, up: bool, error: str = "") -> None:
        """Record what a call or probe saw of the engine; boots resume when it answers."""
        if up == self.engine_up:
            return
        self.machine.set_engine_up(up)
        self.engine_error = error
        if up:
            log.info("docker engine reachable again; boots resume")
            self.reconcile()
        else:
            log.error("docker engine unreachable; boots paused (not an image failure)",
                      error=error)
        self._notify()

    def set_policy(self, policy: PoolPolicy) -> None:
        if policy != self.policy:
            log.info("pool policy changed", old=self.policy.__dict__, new=policy.__dict__)
            self._apply(self.machine.set_policy(policy, self.clock()))
            self._notify()

    def reconcile(self) -> None:
        """Boot and retire until warm capacity meets the target: called on every change."""
        if self.closing:
            return
        self._apply(self.machine.reconcile(self.clock()))
        self._notify()

    # ---------- carrying out the machine's effects ----------
    def _apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Boot):
                self._start_boot(effect.id)
                continue
            c = self.containers.get(effect.id) or self.outdated.get(effect.id)
            if c is None:
                continue
            self.metrics.recycled_total.labels(self.template, effect.reason.value).inc()
            log.info("container retiring", container=c.name, reason=effect.reason.value,
                     uses=c.uses)
            self._spawn(self._remove(c))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_boot(self, name: str) -> Container:
        c = Container(name=name, host_dir=self.sockets_dir / name, owner=self.instance,
                      record=self.machine.records[name])
        self.containers[name] = c
        self._spawn(self._boot(c, self.machine.boot_deadline(name)))
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

    async def _boot(self, c: Container, deadline: float) -> None:
        """Carry out `Boot`: ready by `deadline` (the machine's, on `clock`) or failed."""
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
            await self._wait_ready(c, deadline - self.clock())
            outcome = "ready"
        except TimeoutError:
            outcome = "timeout"
            self.last_boot_error = (f"container {c.name} not ready within "
                                    f"{self.machine.boot_timeout_s:.0f} s (VWE_BOOT_TIMEOUT_S)")
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
                self.boot_times.append(elapsed)
                self.unrecorded_boots.append(elapsed)
                self._apply(self.machine.boot_ready(c.name, self.clock()))
                if not c.ready.done():
                    c.ready.set_result(None)
                log.info("container warm", container=c.name, boot_s=round(elapsed, 3))
                self._notify()
            else:
                await self._boot_failed(c, outcome)

    async def _wait_ready(self, c: Container, timeout_s: float) -> None:
        next_exit_check = time.monotonic() + EXITED_POLL_S
        async with asyncio.timeout(timeout_s):
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
        counted = outcome not in ("cancelled", "engine_down")
        backoff = self.machine.boot_failed(c.name, self.clock(), counted=counted)
        if counted:
            self.boot_failures_total += 1
            self.metrics.container_failures.labels(self.template, FailurePhase.BOOT).inc()
            logs = await container_logs(self.runtime, c)
            log.error("container failed to boot", container=c.name, outcome=outcome,
                      backoff_s=backoff, logs=logs)
        if not c.ready.done():
            c.ready.set_exception(BootFailed(f"container {c.name} failed to boot ({outcome})"))
            c.ready.exception()  # mark retrieved: nobody may be waiting on it
        await self._remove(c)

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
        if owned:
            shutil.rmtree(c.host_dir, ignore_errors=True)
        elif c.token and c.id:
            self.metrics.fenced.labels(self.template).inc()
            log.warning("container fenced off", container=c.name, token=c.token,
                        reason="taken over before its removal")
        self.forget(c)

    def forget(self, c: Container) -> None:
        """Drop a container from the books (removed, or fenced off untouched): the machine
        replans at once, since a freed slot under the cap may be wanted for a replacement."""
        c.agent.close()
        self.containers.pop(c.name, None)
        self.outdated.pop(c.name, None)
        self._apply(self.machine.removed(c.name, self.clock()))
        self._notify()

    # ---------- leasing ----------
    async def acquire(self) -> Lease:
        """A container for one job: warm if any, else a boot (claimed or new), else wait.

        Raises `BootFailed` when a boot fails while the caller waits (the boot it waits on,
        or any boot while it waits for capacity): that failure counts against the job's
        attempt. Cancelling the wait gives back a container claimed for it.
        """
        failures_seen = self.boot_failures_total
        while True:
            if self.closing:
                raise PoolClosed("the pool is draining")
            if self.boot_failures_total != failures_seen:
                raise BootFailed(f"a container failed to boot while the job waited: "
                                 f"{self.last_boot_error}")
            if not self.lease_fresh():
                await self.wait_changed(timeout=0.2)  # nothing is provably ours right now
                continue
            step = self.machine.lease(self.clock())
            if step is None:
                await self.wait_changed(timeout=1.0)
                continue
            if step.launch_type is LaunchType.WARM:
                # The caller replenishes (`reconcile`) right after its handoff: starting a
                # boot first would put the Docker SDK's work on this process's GIL in the
                # handoff's path.
                return Lease(self.containers[step.id], LaunchType.WARM)
            self._apply(step.effects)  # a new boot promised to this job, or replenishing
            self._notify()
            c = self.containers[step.id]
            try:
                await asyncio.shield(c.ready)
            except BootFailed as exc:
                if self.boot_failures_total != failures_seen:
                    raise BootFailed(f"{exc}: {self.last_boot_error}") from None
                continue  # cancelled or an engine outage: not the image's failure
            except asyncio.CancelledError:
                self._unclaim(c)
                raise
            return Lease(c, LaunchType.COLD)  # busy with this job since `boot_ready`

    def _unclaim(self, c: Container) -> None:
        """The job that claimed a booting container gave up on it."""
        if c.ready.done() and not c.ready.cancelled() and c.ready.exception() is None:
            if c.state is ContainerState.BUSY:
                self.give_back(c)  # it became ready for us: warm for the next
                self.reconcile()
        else:
            self.machine.unpromise(c.name)

    def give_back(self, c: Container) -> None:
        """Undo a lease no job used: warm again, the use not counted."""
        if self.containers.get(c.name) is c:
            self.machine.give_back(c.name)
            self._notify()

    def release(self, c: Container, *, healthy: bool, phase: FailurePhase | None = None,
                reason: RecycleReason = RecycleReason.UNHEALTHY) -> None:
        """Give a container back after a job: warm again, or retired (the machine decides;
        `reason` when not `healthy`)."""
        busy = c.state is ContainerState.BUSY  # else already retired (drain, or killed)
        if busy and not healthy and phase is not None:
            self.metrics.container_failures.labels(self.template, phase.value).inc()
        self._apply(self.machine.release(c.name, self.clock(), healthy=healthy, reason=reason))
        if busy:
            self._notify()

    # ---------- maintenance ----------
    async def check_health(self) -> None:
        """Probe every warm container; one that does not answer is replaced."""
        warm = [c for c in self.containers.values() if c.state is ContainerState.WARM]
        answers = await asyncio.gather(*(c.agent.ping(timeout=2.0) for c in warm))
        for c, answer in zip(warm, answers, strict=True):
            if answer is None and c.state is ContainerState.WARM:
                log.warning("container failed its health probe", container=c.name)
                self._apply(self.machine.retire(c.name, RecycleReason.UNHEALTHY))
        self.reconcile()

    def adopt(self, name: str, *, host_dir: Path, container_id: str, token: int,
              created_at: float, uses: int, outdated: bool) -> Container:
        """Take a running container over into the books, warm (`pool.daemon.adoption` proved
        it ours); `outdated` ones are never leased and retired once the target is warm."""
        record = self.machine.adopt(name, created_at=created_at, now=self.clock(), uses=uses,
                                    outdated=outdated)
        c = Container(name=name, host_dir=host_dir, owner=self.instance, record=record,
                      id=container_id, token=token)
        c.ready.set_result(None)
        (self.outdated if outdated else self.containers)[name] = c
        self._notify()
        return c

    def stop_booting(self) -> None:
        """The drain begins: no lease, boot or plan from now on (jobs in flight finish on the
        containers they hold), so nothing is booted only to be removed."""
        self.machine.close()
        self._notify()

    async def drain(self, timeout: float) -> None:
        """Stop leasing, let busy containers finish up to `timeout`, then remove everything
        this daemon owns (`adoption.close_pool` then sweeps what is left)."""
        self.machine.close()
        self._notify()
        deadline = time.monotonic() + timeout
        while (any(c.state is ContainerState.BUSY for c in self.containers.values())
               and time.monotonic() < deadline):
            await self.wait_changed(timeout=0.2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        owned = [*self.containers.values(), *self.outdated.values()]
        for c in owned:  # a retiring one was counted when it began to retire
            if c.state not in (ContainerState.GONE, ContainerState.RETIRING):
                self.metrics.recycled_total.labels(self.template, RecycleReason.DRAIN).inc()
        await asyncio.gather(*(self._remove(c) for c in owned), return_exceptions=True)
