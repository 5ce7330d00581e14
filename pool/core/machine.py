"""The container state machine of one pool: pure and synchronous (docs/architecture.md, "One
state machine").

Containers go `booting -> warm -> busy -> warm | retiring -> gone`, or `booting -> failed ->
gone`. `PoolMachine` holds every container's record, the policy, the autoscaler's target and
the boot back-off, and changes them only through the transitions below. Each transition takes
the current time (`now`, seconds on whatever clock the driver runs: unix time in the daemon,
virtual time in the simulator) and returns the effects the driver must carry out:

- `Boot(id)`: create and start container `id`, then call `boot_ready` or `boot_failed`;
- `Retire(id, reason)`: remove container `id` (already marked retiring), then call `removed`.

The decisions themselves (what to boot, what to retire, whom to lease) are the pure functions
of `pool.core.policy`; this module applies them. Two drivers run it (docs/architecture.md, "One
state machine"): the daemon's `pool.daemon.warm_pool.WarmPool` (unix time, Docker effects,
ownership fencing) and the simulator's `pool.sim.engine` (virtual time, sampled durations).
Neither changes a record itself: they carry out the effects and report what came of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pool.core import policy as decide
from pool.core.exceptions import PoolClosed
from pool.core.policy import ContainerRecord
from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState, LaunchType, RecycleReason


@dataclass(frozen=True, slots=True)
class Boot:
    id: str


@dataclass(frozen=True, slots=True)
class Retire:
    id: str
    reason: RecycleReason


Effect = Boot | Retire


@dataclass(frozen=True, slots=True)
class LeaseStep:
    """The outcome of `PoolMachine.lease`: container `id` for one job.

    WARM: it is busy with the job now. COLD: it is booting and promised to the job; the job
    runs when `boot_ready(id)` comes (or leases again after `boot_failed(id)`).
    """

    id: str
    launch_type: LaunchType
    effects: tuple[Effect, ...] = ()


class PoolMachine:
    """One pool's containers and the transitions between their states.

    `new_id()` names a container about to boot. `boot_timeout_s` is VWE_BOOT_TIMEOUT_S: a boot
    not ready by `boot_deadline(id)` has failed. `boot_backoff_s`/`boot_backoff_max_s` are
    VWE_BOOT_BACKOFF_S and VWE_BOOT_BACKOFF_MAX_S: after consecutive failed boots, booting
    holds off for a doubling time (`pool.core.policy.boot_backoff`).
    """

    def __init__(self, policy: PoolPolicy, *, new_id: Callable[[], str], boot_timeout_s: float,
                 boot_backoff_s: float, boot_backoff_max_s: float) -> None:
        self.policy = policy
        self.new_id = new_id
        self.boot_timeout_s = boot_timeout_s
        self.boot_backoff_s = boot_backoff_s
        self.boot_backoff_max_s = boot_backoff_max_s
        self.records: dict[str, ContainerRecord] = {}
        # Adopted containers of another image or worker spec: outside every decision (never
        # leased, no slot under the cap), retired once the target is warm with current ones.
        self.outdated: dict[str, ContainerRecord] = {}
        # The autoscaler's (target, reason) while autoscaling is on.
        self.autoscaled: tuple[int, str] | None = None
        self.closing = False
        # The Docker engine as the driver last saw it: while it is down nothing boots (and no
        # boot counts as the image's failure).
        self.engine_up = True
        # Latched once the pool first reaches its target: readiness means "has booted", and
        # must not flap while each lease's replacement boots.
        self.filled = False
        self._boot_failures = 0
        self._boots_blocked_until = 0.0
        # A plan that changed nothing holds until the state changes or time makes a warm
        # container due or lifts the boot back-off (`tick` skips replanning meanwhile).
        self._dirty = True
        self._planned_at = 0.0

    # ---------- reading ----------
    def records_list(self) -> list[ContainerRecord]:
        return list(self.records.values())

    def target(self) -> int:
        if self.policy.autoscale and self.autoscaled is not None:
            return self.autoscaled[0]
        return self.policy.size

    def cap(self) -> int:
        return self.policy.max

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records.values():
            counts[r.state.value] = counts.get(r.state.value, 0) + 1
        return counts

    @property
    def boot_failures(self) -> int:
        """Boots failed in a row (reset by a boot that becomes ready)."""
        return self._boot_failures

    def boot_deadline(self, cid: str) -> float:
        """When booting container `cid` has failed if not ready (its boot began at
        `created_at`). Raises KeyError for an unknown id."""
        return self.records[cid].created_at + self.boot_timeout_s

    def boots_blocked(self, now: float) -> bool:
        return self.closing or not self.engine_up or now < self._boots_blocked_until

    def has_capacity(self, now: float) -> bool:
        """Could a job start now (warm, a spare boot to promise, or room to cold-start)?"""
        return not self.closing and decide.has_capacity(self.records_list(), self.policy,
                                                        self.boots_blocked(now))

    # ---------- planning ----------
    def reconcile(self, now: float) -> list[Effect]:
        """Boot and retire until warm capacity meets the target: after every change."""
        if self.closing:
            return []
        warm = sum(1 for r in self.records.values() if r.state is ContainerState.WARM)
        warm_enough = warm >= min(self.target(), self.cap())
        self.filled = self.filled or warm_enough
        effects: list[Effect] = []
        if warm_enough:  # rolling: an outdated container goes once current ones cover the target
            for cid in list(self.outdated):
                retire = self._retire(cid, RecycleReason.OUTDATED)
                if retire is not None:
                    effects.append(retire)
        plan = decide.plan(self.records_list(), self.policy, now, self.target(),
                           self.boots_blocked(now))
        for cid, reason in plan.retire:
            retire = self._retire(cid, reason)
            if retire is not None:
                effects.append(retire)
        effects.extend(self._boot(now, promised=False) for _ in range(plan.boots))
        self._dirty = bool(effects)
        self._planned_at = now
        return effects

    def tick(self, now: float) -> list[Effect]:
        """A maintenance tick: `reconcile`, skipped when it cannot change the answer."""
        if self._dirty or self._turned_due(now):
            return self.reconcile(now)
        return []

    def _turned_due(self, now: float) -> bool:
        """Since the last plan, did a warm container become due by age or idleness, or
        sheddable as surplus (idle `surplus_idle_s`), or the boot back-off end?"""
        pol, then = self.policy, self._planned_at
        if then < self._boots_blocked_until <= now:
            return True
        grace = pol.surplus_idle_s
        return any(r.state is ContainerState.WARM and (
            (decide.recycle_reason(r, pol, then) is None
             and decide.recycle_reason(r, pol, now) is not None)
            or then - r.last_used_at < grace <= now - r.last_used_at)
            for r in self.records.values())

    def set_policy(self, policy: PoolPolicy, now: float) -> list[Effect]:
        if policy == self.policy:
            return []
        self.policy = policy
        self._dirty = True
        return self.reconcile(now)

    def set_engine_up(self, up: bool) -> None:
        """What the driver last saw of the Docker engine; the driver replans when it is back."""
        if up != self.engine_up:
            self.engine_up = up
            self._dirty = True

    def set_autoscaled(self, choice: tuple[int, str] | None) -> None:
        """The autoscaler's (target, reason), or None while autoscaling is off."""
        if choice != self.autoscaled:
            self._dirty = True
            self.autoscaled = choice

    # ---------- transitions ----------
    def _boot(self, now: float, promised: bool) -> Boot:
        cid = self.new_id()
        self.records[cid] = ContainerRecord(cid, ContainerState.BOOTING, now, now, 0, promised)
        self._dirty = True
        return Boot(cid)

    def _retire(self, cid: str, reason: RecycleReason) -> Retire | None:
        r = self.records.get(cid) or self.outdated.get(cid)
        if r is None or r.state in (ContainerState.RETIRING, ContainerState.GONE):
            return None
        r.state = ContainerState.RETIRING
        self._dirty = True
        return Retire(cid, reason)

    def adopt(self, cid: str, *, created_at: float, now: float, uses: int,
              outdated: bool = False) -> ContainerRecord:
        """Take over a warm container found running (a dead daemon's, or the simulator's
        steady state at time 0); `outdated`: of another image or spec, held only until it can
        be retired (`reconcile`). Returns its record."""
        record = ContainerRecord(cid, ContainerState.WARM, created_at, now, uses)
        (self.outdated if outdated else self.records)[cid] = record
        self._dirty = True
        return record

    def lease(self, now: float) -> LeaseStep | None:
        """A container for one job: warm if any (busy at once), else a spare boot promised to
        the job, else a new boot; None when none can be had now (wait for a change).
        Raises PoolClosed while draining."""
        if self.closing:
            raise PoolClosed("the pool is draining")
        records = self.records_list()
        cid = decide.pick_lease(records, self.policy, now)
        if cid is not None:
            r = self.records[cid]
            r.state = ContainerState.BUSY
            r.uses += 1
            self._dirty = True
            # The caller replenishes (`reconcile`) right after its handoff: in the daemon,
            # starting a boot first would put Docker SDK work in the handoff's path.
            return LeaseStep(cid, LaunchType.WARM)
        cid = decide.pick_spare_boot(records)
        if cid is not None:
            self.records[cid].promised = True
            self._dirty = True
            return LeaseStep(cid, LaunchType.COLD, tuple(self.reconcile(now)))
        if decide.can_cold_start(records, self.policy, self.boots_blocked(now)):
            boot = self._boot(now, promised=True)
            return LeaseStep(boot.id, LaunchType.COLD, (boot,))
        return None

    def boot_ready(self, cid: str, now: float) -> list[Effect]:
        """Container `cid` answered its readiness probe: warm, or busy with the job it was
        promised to (which counts as a use). Nothing happens to one no longer booting (dropped
        from the books meanwhile)."""
        r = self.records.get(cid)
        if r is None or r.state is not ContainerState.BOOTING:
            return []
        self._boot_failures = 0
        r.state = ContainerState.BUSY if r.promised else ContainerState.WARM
        if r.promised:
            r.uses += 1
        r.last_used_at = now
        self._dirty = True
        return self.reconcile(now)

    def boot_failed(self, cid: str, now: float, *, counted: bool = True) -> float:
        """Container `cid` did not become ready; the driver removes it, then calls `removed`.
        Returns the back-off (seconds) now holding off boots; `counted=False` (a boot
        cancelled by a drain) neither counts as a failure nor backs off. A boot whose record
        was dropped meanwhile still counts."""
        r = self.records.get(cid)
        if r is not None:
            r.state = ContainerState.FAILED
        self._dirty = True
        if not counted:
            return 0.0
        self._boot_failures += 1
        backoff = decide.boot_backoff(self._boot_failures, self.boot_backoff_s,
                                      self.boot_backoff_max_s)
        self._boots_blocked_until = now + backoff
        return backoff

    def release(self, cid: str, now: float, *, healthy: bool,
                reason: RecycleReason = RecycleReason.UNHEALTHY) -> list[Effect]:
        """Container `cid` is back from a job: warm again, or retired (not `healthy`: for
        `reason`, e.g. `drain` for a job the drain cut off; or at `max_uses`). Nothing happens
        to one already retired meanwhile."""
        r = self.records.get(cid)
        if r is None:
            return []
        r.last_used_at = now
        r.promised = False
        if r.state is not ContainerState.BUSY:
            return []
        effects: list[Effect] = []
        if not healthy:
            effects.append(Retire(cid, reason))
            r.state = ContainerState.RETIRING
        elif r.uses >= self.policy.max_uses:
            effects.append(Retire(cid, RecycleReason.MAX_USES))
            r.state = ContainerState.RETIRING
        else:
            r.state = ContainerState.WARM
        self._dirty = True
        return effects + self.reconcile(now)

    def give_back(self, cid: str) -> None:
        """Undo a lease no job used (the job went away, or the driver may not use containers
        right now): busy -> warm, the use not counted. The driver replans when it wants to."""
        r = self.records.get(cid)
        if r is not None and r.state is ContainerState.BUSY:
            r.state = ContainerState.WARM
            r.uses = max(0, r.uses - 1)
            r.promised = False
            self._dirty = True

    def unpromise(self, cid: str) -> None:
        """The job a booting container was promised to gave up waiting for it."""
        r = self.records.get(cid)
        if r is not None and r.promised:
            r.promised = False
            self._dirty = True

    def retire(self, cid: str, reason: RecycleReason) -> list[Effect]:
        """Retire container `cid` for `reason` (e.g. a failed health probe)."""
        retire = self._retire(cid, reason)
        return [retire] if retire is not None else []

    def removed(self, cid: str, now: float) -> list[Effect]:
        """Container `cid` is gone (removed, or dropped from the books untouched): its slot
        under the cap may be wanted for a replacement now, so this replans at once."""
        r = self.records.pop(cid, None) or self.outdated.pop(cid, None)
        if r is not None:
            r.state = ContainerState.GONE
        self._dirty = True
        return self.reconcile(now)

    def close(self) -> None:
        """Draining: no more leases, boots or plans."""
        self.closing = True
