"""The warm pool: the Docker side of the container state machine (`pool.core.machine`).

The machine decides every transition (booting -> warm -> busy -> warm | retiring -> gone, plus
failed) with the pure decisions of `pool.core.policy`; this module carries out its effects
against the runtime and reports boots, failures and removals back. Everything runs on one
event loop, so a lease is atomic without locks: no await sits between choosing a warm
container and marking it busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pool.core import constants
from pool.core.exceptions import BootFailed, RuntimeUnavailable
from pool.core.machine import Boot, Effect, PoolMachine
from pool.core.policy import ContainerRecord
from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState, FailurePhase, LaunchType, RecycleReason
from pool.daemon.agent_client import AgentClient
from pool.daemon.runtime import (
    LABEL_CREATED,
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_TEMPLATE,
    LABEL_USES,
    ContainerRuntime,
    ContainerSpec,
)
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.store import keys

log = get_logger("vwe.pool")

# How often a booting container's agent is probed; readiness costs at most this much latency.
READY_POLL_S = 0.02
# How often a booting container is checked for having exited, to fail fast instead of timing out.
EXITED_POLL_S = 1.0


@dataclass(eq=False)
class Container:
    """One worker container: its record in the state machine plus what Docker and the agent
    need (the container id, its bind-mounted folder, the agent's socket)."""

    record: ContainerRecord
    host_dir: Path
    owner: str
    id: str = ""
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())
    agent: AgentClient = field(init=False)

    def __post_init__(self) -> None:
        self.agent = AgentClient(self.host_dir)

    @property
    def name(self) -> str:
        return self.record.id

    @property
    def state(self) -> ContainerState:
        return self.record.state

    @property
    def uses(self) -> int:
        return self.record.uses

    @property
    def created_at(self) -> float:
        return self.record.created_at


@dataclass(frozen=True)
class Lease:
    container: Container
    launch_type: LaunchType


class WarmPool:
    """The pool's Docker effects around its `PoolMachine`: the machine decides each
    transition; this class boots, probes and removes containers and reports back."""

    def __init__(
        self, settings: Settings, runtime: ContainerRuntime, metrics: Metrics, *,
        clock: Callable[[], float] = time.time,
        alive_daemons: Callable[[], Awaitable[set[str]]] | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.metrics = metrics
        self.clock = clock
        self.template = settings.template
        self.instance = settings.instance_id
        self.machine = PoolMachine(
            settings.pool_policy(), new_id=self._new_name,
            boot_backoff_s=settings.boot_backoff_s,
            boot_backoff_max_s=settings.boot_backoff_max_s)
        metrics.init_template(self.template)
        self.containers: dict[str, Container] = {}
        self._alive_daemons = alive_daemons
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
        # The engine as calls and probes last saw it. While it is unreachable no boot starts
        # (and none counts as an image failure); `engine_probe` resumes them.
        self.engine_error = ""
        self.sockets_dir = settings.sockets_dir.resolve()

    def _new_name(self) -> str:
        return f"{self.settings.pool_name}-{self.template}-{uuid.uuid4().hex[:10]}"

    # ---------- reading state ----------
    @property
    def policy(self) -> PoolPolicy:
        return self.machine.policy

    @policy.setter
    def policy(self, policy: PoolPolicy) -> None:
        """Set without replanning (start-up, before the first plan); else `set_policy`."""
        self.machine.policy = policy

    @property
    def autoscaled(self) -> tuple[int, str] | None:
        return self.machine.autoscaled

    @property
    def filled(self) -> bool:
        return self.machine.filled

    def target(self) -> int:
        return self.machine.target()

    def cap(self) -> int:
        return self.machine.cap()

    def state_counts(self) -> dict[str, int]:
        return self.machine.state_counts()

    @property
    def engine_up(self) -> bool:
        return self.machine.engine_up

    def boots_blocked(self) -> bool:
        return self.machine.boots_blocked(self.clock())

    def serving(self) -> tuple[bool, str]:
        """Can a job submitted now be taken? (docs/architecture.md, "Readiness")

        Yes when a container is warm or busy (busy ones work the backlog and come back), or
        when none is but one can boot: the engine answers and the last boot did not fail.
        An empty pool whose boots fail, or whose engine is unreachable, cannot.
        """
        counts = self.state_counts()
        if self.machine.closing:
            return False, "the pool is draining"
        if counts.get("warm", 0) or counts.get("busy", 0):
            return True, f"{counts.get('warm', 0)} warm, {counts.get('busy', 0)} busy"
        if not self.engine_up:
            return False, f"no container, and the Docker engine is unreachable: {self.engine_error}"
        if self.cap() == 0:
            return False, "no container, and VWE_POOL_MAX allows none"
        if self.machine.boot_failures:
            return False, (f"no container, and the last {self.machine.boot_failures} boot(s) "
                           f"failed: {self.last_boot_error}")
        return True, f"no container yet; {counts.get('booting', 0)} booting"

    def set_engine_up(self, up: bool, error: str = "") -> None:
        """Record what a call or probe saw of the engine; boots resume when it answers."""
        if up == self.engine_up:
            return
        self.machine.engine_up, self.engine_error = up, error
        if up:
            log.info("docker engine reachable again; boots resume")
            self.reconcile()
        else:
            log.error("docker engine unreachable; boots paused (not an image failure)",
                      error=error)
        self._notify()

    def has_capacity(self) -> bool:
        return self.machine.has_capacity(self.clock())

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {"id": c.id[:12] or c.name, "name": c.name, "state": c.state.value,
             "age_s": round(now - c.created_at, 1), "uses": c.uses, "daemon": self.instance}
            for c in self.containers.values()
        ]

    async def wait_changed(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    # ---------- life cycle ----------
    async def start(self) -> None:
        self.sockets_dir.mkdir(parents=True, exist_ok=True)
        await self.recover()
        self.reconcile()

    def set_policy(self, policy: PoolPolicy) -> None:
        old = self.machine.policy
        if policy != old:
            log.info("pool policy changed", old=old.__dict__, new=policy.__dict__)
            self._apply(self.machine.set_policy(policy, self.clock()))

    def set_autoscaled(self, choice: tuple[int, str] | None) -> None:
        """The autoscaler's (target, reason), or None while autoscaling is off."""
        self.machine.set_autoscaled(choice)
        self.reconcile()

    def reconcile(self) -> None:
        """Boot and retire until warm capacity meets the target: called on every change."""
        self._apply(self.machine.reconcile(self.clock()))

    def _apply(self, effects: Iterable[Effect]) -> None:
        """Carry out the machine's effects: boots and removals run as tasks."""
        for effect in effects:
            if isinstance(effect, Boot):
                self._start_boot(effect.id)
            else:
                c = self.containers[effect.id]
                self.metrics.recycled_total.labels(self.template, effect.reason.value).inc()
                log.info("container retiring", container=c.name, reason=effect.reason.value,
                         uses=c.uses)
                self._spawn(self._remove(c))
        self._notify()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_boot(self, name: str) -> Container:
        c = Container(record=self.machine.records[name], host_dir=self.sockets_dir / name,
                      owner=self.instance)
        self.containers[name] = c
        self._spawn(self._boot(c))
        return c

    def _spec(self, c: Container) -> ContainerSpec:
        s = self.settings
        return ContainerSpec(
            name=c.name, image=s.worker_image, host_dir=c.host_dir,
            labels={LABEL_POOL: s.pool_name, LABEL_TEMPLATE: self.template,
                    LABEL_OWNER: self.instance, LABEL_CREATED: f"{c.created_at:.3f}",
                    LABEL_USES: "0"},
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
            self._prepare_dir(c.host_dir)
            c.id = await self.runtime.start(self._spec(c))
            log.info("container booting", container=c.name, container_id=c.id[:12])
            await self._wait_ready(c, started)
            outcome = "ready"
        except TimeoutError:
            outcome = "timeout"
            self.last_boot_error = (f"container {c.name} not ready within "
                                    f"{self.settings.boot_timeout_s:.0f} s (VWE_BOOT_TIMEOUT_S)")
        except asyncio.CancelledError:
            outcome = "cancelled"
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
                effects = self.machine.boot_ready(c.name, self.clock())
                c.ready.set_result(None)
                log.info("container warm", container=c.name, boot_s=round(elapsed, 3))
                self._apply(effects)
            else:
                await self._boot_failed(c, outcome)

    async def _wait_ready(self, c: Container, started: float) -> None:
        next_exit_check = time.monotonic() + EXITED_POLL_S
        async with asyncio.timeout(self.settings.boot_timeout_s - (time.monotonic() - started)):
            while await c.agent.ping(timeout=1.0) is None:
                if time.monotonic() >= next_exit_check:
                    if not await self.runtime.is_running(c.id):
                        logs = (await self._logs(c)).strip().splitlines()
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
            logs = await self._logs(c)
            log.error("container failed to boot", container=c.name, outcome=outcome,
                      backoff_s=backoff, logs=logs)
        if not c.ready.done():
            c.ready.set_exception(BootFailed(f"container {c.name} failed to boot ({outcome})"))
            c.ready.exception()  # mark retrieved: nobody may be waiting on it
        await self._remove(c)

    async def _logs(self, c: Container) -> str:
        if not c.id:
            return ""
        with contextlib.suppress(Exception):
            return (await self.runtime.logs(c.id, tail=20))[-2000:]
        return ""

    def _prepare_dir(self, path: Path) -> None:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The worker runs as a non-root user; it must create its socket and output here. The
        # least privilege is a daemon of the worker's own uid (docs/deploy.md): then the folder
        # stays 0700. A root daemon gives it away; a daemon of another uid must open it to all.
        uid, _, gid = self.settings.worker_user.partition(":")
        if uid.isdigit() and os.geteuid() == int(uid):
            path.chmod(0o700)
        elif os.geteuid() == 0 and uid.isdigit():
            os.chown(path, int(uid), int(gid or uid))
            path.chmod(0o700)
        else:
            path.chmod(0o777)

    async def _remove(self, c: Container) -> None:
        try:
            if c.id:
                await self.runtime.remove(c.id)
        except Exception as exc:
            # Forget it anyway: the periodic reaper finds it by label and removes it then.
            log.warning("container removal failed", container=c.name, error=repr(exc))
        c.agent.close()
        self.containers.pop(c.name, None)
        shutil.rmtree(c.host_dir, ignore_errors=True)
        # A freed slot under the cap may be wanted for a replacement now.
        self._apply(self.machine.removed(c.name, self.clock()))

    # ---------- leasing ----------
    async def acquire(self) -> Lease:
        """A container for one job: warm if any, else a boot (promised or new), else wait.

        Raises PoolClosed once draining, and `BootFailed` when a boot fails while the caller
        waits (the boot it waits on, or any boot while it waits for capacity): that failure
        counts against the job's attempt. Cancelling the wait gives back a container promised
        to it.
        """
        failures_seen = self.boot_failures_total
        while True:
            if self.boot_failures_total != failures_seen:
                raise BootFailed(f"a container failed to boot while the job waited: "
                                 f"{self.last_boot_error}")
            step = self.machine.lease(self.clock())
            if step is None:
                await self.wait_changed(timeout=1.0)
                continue
            if step.launch_type is LaunchType.WARM:
                return Lease(self.containers[step.id], LaunchType.WARM)
            self._apply(step.effects)
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
            return Lease(c, LaunchType.COLD)

    def _unclaim(self, c: Container) -> None:
        """The job a booting container was promised to gave up on it."""
        if c.ready.done() and not c.ready.cancelled() and c.ready.exception() is None:
            if c.state is ContainerState.BUSY:
                self.release(c, healthy=True)  # it became ready for us: warm for the next
        else:
            self.machine.unpromise(c.name)

    def release(self, c: Container, *, healthy: bool, phase: FailurePhase | None = None) -> None:
        """Give a container back after a job: warm again, or retired."""
        if not healthy and phase is not None and c.state is ContainerState.BUSY:
            self.metrics.container_failures.labels(self.template, phase.value).inc()
        self._apply(self.machine.release(c.name, self.clock(), healthy=healthy))

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

    async def recover(self) -> None:
        """Adopt healthy idle containers of dead daemons; remove the rest of this pool's
        (also run periodically as the reaper of lost creates and dead daemons' leftovers)."""
        alive = await self._alive_daemons() if self._alive_daemons else set()
        for info in await self.runtime.list({LABEL_POOL: self.settings.pool_name,
                                             LABEL_TEMPLATE: self.template}):
            owner = info.labels.get(LABEL_OWNER, "")
            if owner != self.instance and owner in alive:
                continue  # a live daemon's container: not ours to touch
            if info.name in self.containers:
                continue
            host_dir = self.sockets_dir / info.name
            answer = await AgentClient(host_dir).ping() if info.running else None
            if answer is not None and not answer.get("busy") and len(self.containers) < self.cap():
                created = float(info.labels.get(LABEL_CREATED) or self.clock())
                self.machine.adopt(info.name, created_at=created, now=self.clock(),
                                   uses=int(answer.get("uses", 0)))
                c = Container(record=self.machine.records[info.name], host_dir=host_dir,
                              owner=self.instance, id=info.id)
                c.ready.set_result(None)
                self.containers[c.name] = c
                log.info("container adopted", container=c.name, previous_owner=owner)
            else:
                log.info("orphan container removed", container=info.name, previous_owner=owner)
                await self.runtime.remove(info.id)
                shutil.rmtree(host_dir, ignore_errors=True)

    async def drain(self, timeout: float) -> None:
        """Stop leasing, let busy containers finish up to `timeout`, then remove everything."""
        self.machine.close()
        self._notify()
        deadline = time.monotonic() + timeout
        while (any(c.state is ContainerState.BUSY for c in self.containers.values())
               and time.monotonic() < deadline):
            await self.wait_changed(timeout=0.2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in list(self.containers.values()):
            if c.state is not ContainerState.GONE:
                self.metrics.recycled_total.labels(self.template, RecycleReason.DRAIN).inc()
        await asyncio.gather(*(self._remove(c) for c in list(self.containers.values())),
                             return_exceptions=True)
        # A create still in flight when its task was cancelled leaves a container we never
        # learned the id of: sweep by label.
        for info in await self.runtime.list({LABEL_POOL: self.settings.pool_name,
                                             LABEL_OWNER: self.instance}):
            await self.runtime.remove(info.id)
        log.info("pool drained")
