"""The pool's decisions as pure functions of state, policy and the current time.

The policy itself (`PoolPolicy`, its fields and bounds) is defined in `pool.core.pool_policy`.
Nothing here touches Docker, Redis or a clock: the daemon and the simulator both call these
with a snapshot, so a unit test drives them with a fake clock and the simulator reproduces the
daemon's behaviour exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState, RecycleReason

# States that occupy a slot under the hard cap until the container is removed.
OCCUPYING = frozenset(
    {ContainerState.BOOTING, ContainerState.WARM, ContainerState.BUSY, ContainerState.RETIRING}
)


@dataclass(slots=True)
class ContainerRecord:
    """What the decisions need to know about one container (times in seconds, unix or
    virtual). `pool.core.machine.PoolMachine` owns and changes these; decisions only read."""

    id: str
    state: ContainerState
    created_at: float
    last_used_at: float
    uses: int = 0
    promised: bool = False  # a booting container already promised to a waiting job


@dataclass(frozen=True)
class Plan:
    boots: int = 0
    retire: tuple[tuple[str, RecycleReason], ...] = field(default_factory=tuple)


def recycle_reason(c: ContainerRecord, policy: PoolPolicy, now: float) -> RecycleReason | None:
    """Why an idle warm container is due for replacement, or None while it is fresh."""
    if c.uses >= policy.max_uses:
        return RecycleReason.MAX_USES
    if now - c.created_at >= policy.max_age_s:
        return RecycleReason.MAX_AGE
    if now - c.last_used_at >= policy.idle_ttl_s:
        return RecycleReason.IDLE
    return None


def _count(containers: Iterable[ContainerRecord], *states: ContainerState) -> int:
    return sum(1 for c in containers if c.state in states)


def plan(
    containers: Sequence[ContainerRecord], policy: PoolPolicy, now: float, target: int,
    boots_blocked: bool = False,
) -> Plan:
    """What to boot and what to retire now so warm capacity meets `target` within `max`.

    Recycling is rolling: a container due for replacement keeps serving until enough fresh
    ones are warm, so recycling never takes warm capacity below the target. Above the target,
    the containers used within `surplus_idle_s` are kept and as many others besides (none for
    a target of 0: no warm pool at all).
    """
    target = min(target, policy.max)
    warm = sorted((c for c in containers if c.state is ContainerState.WARM),
                  key=lambda c: c.created_at)
    due = [(c, r) for c in warm if (r := recycle_reason(c, policy, now)) is not None]
    due_ids = {c.id for c, _ in due}
    fresh = [c for c in warm if c.id not in due_ids]
    spare_booting = sum(1 for c in containers
                        if c.state is ContainerState.BOOTING and not c.promised)
    booting = _count(containers, ContainerState.BOOTING)
    total = _count(containers, *OCCUPYING)

    retire: list[tuple[str, RecycleReason]] = []
    # Over the target: shed due containers first, then the oldest fresh ones.
    surplus = len(fresh) + len(due) + spare_booting - target
    for c, reason in due:
        if surplus <= 0:
            break
        retire.append((c.id, reason))
        surplus -= 1
    # Each container back from a job within `surplus_idle_s` may keep one extra warm: under
    # steady load the pool settles one over its target per job in flight, instead of booting
    # a replacement per lease and shedding the leased one on its return.
    recent = ({c.id for c in fresh if now - c.last_used_at < policy.surplus_idle_s}
              if target > 0 else set())
    for c in fresh:
        if surplus <= len(recent) or spare_booting >= surplus:
            break  # booting spares will be shed once warm; never retire warm for them
        if c.id in recent:
            continue
        retire.append((c.id, RecycleReason.RESIZE))
        surplus -= 1
    retired = {cid for cid, _ in retire}
    # Rolling replacement: a due container goes once the fresh ones cover the target.
    for c, reason in due:
        if c.id not in retired and len(fresh) >= target:
            retire.append((c.id, reason))
            retired.add(c.id)
    # Under a lowered cap, shed warm containers even below the target.
    over_cap = total - len(retired) - policy.max
    for c in reversed(warm):
        if over_cap <= 0:
            break
        if c.id not in retired:
            retire.append((c.id, RecycleReason.RESIZE))
            retired.add(c.id)
            over_cap -= 1

    remaining_total = total - len(retired)
    need = target - (len(fresh) - sum(1 for c in fresh if c.id in retired) + spare_booting)
    room = min(policy.max - remaining_total, policy.max_concurrent_boots - booting)
    if need > 0 and room <= 0 and remaining_total >= policy.max:
        # At the cap with stale containers: free a slot for the replacement.
        stale = [(c.id, r) for c, r in due if c.id not in retired]
        if stale:
            retire.append(stale[0])
    boots = 0 if boots_blocked else max(0, min(need, room))
    return Plan(boots=boots, retire=tuple(retire))


def pick_lease(
    containers: Sequence[ContainerRecord], policy: PoolPolicy, now: float
) -> str | None:
    """The warm container for the next job: fresh before due, then the most recently used,
    so that containers above the target idle out (`surplus_idle_s`) instead of taking turns."""
    warm = [c for c in containers if c.state is ContainerState.WARM]
    if not warm:
        return None
    best = min(warm, key=lambda c: (recycle_reason(c, policy, now) is not None,
                                    -c.last_used_at))
    return best.id


def pick_spare_boot(containers: Sequence[ContainerRecord]) -> str | None:
    """A booting container nobody is waiting for, the oldest first: it will be ready soonest."""
    spare = [c for c in containers if c.state is ContainerState.BOOTING and not c.promised]
    return min(spare, key=lambda c: c.created_at).id if spare else None


def can_cold_start(
    containers: Sequence[ContainerRecord], policy: PoolPolicy, boots_blocked: bool = False
) -> bool:
    """Room under the hard cap and the concurrent-boot limit for one more container."""
    return (
        not boots_blocked
        and _count(containers, *OCCUPYING) < policy.max
        and _count(containers, ContainerState.BOOTING) < policy.max_concurrent_boots
    )


def has_capacity(
    containers: Sequence[ContainerRecord], policy: PoolPolicy, boots_blocked: bool = False
) -> bool:
    """Could a job start now (warm, a spare boot to claim, or room to cold-start)?"""
    return (
        any(c.state is ContainerState.WARM for c in containers)
        or pick_spare_boot(containers) is not None
        or can_cold_start(containers, policy, boots_blocked)
    )


def boot_backoff(consecutive_failures: int, base_s: float, cap_s: float) -> float:
    """Seconds to hold off booting after failures, doubling each time: a broken image
    cannot spin the daemon."""
    if consecutive_failures <= 0:
        return 0.0
    # The exponent is bounded: past 2**62 any cap is reached, and a larger power of two
    # overflows a float after ~1000 failures in a row.
    return float(min(cap_s, base_s * 2 ** min(consecutive_failures - 1, 62)))
