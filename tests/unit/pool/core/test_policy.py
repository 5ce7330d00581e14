"""The pool's decisions, driven with a fake clock."""

from __future__ import annotations

import pytest

from pool.core import policy as decide
from pool.core.autoscale import autoscale_target, poisson_quantile
from pool.core.policy import ContainerRecord
from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState as S
from pool.core.states import RecycleReason

pytestmark = pytest.mark.unit

NOW = 10_000.0


def view(cid: str, state: S = S.WARM, age: float = 10, idle: float = 1, uses: int = 0,
         promised: bool = False) -> ContainerRecord:
    return ContainerRecord(cid, state, NOW - age, NOW - idle, uses, promised)


def policy(**kw: object) -> PoolPolicy:
    base: dict[str, object] = {"size": 2, "max": 4, "max_age_s": 3600, "max_uses": 10,
                               "idle_ttl_s": 600, "max_concurrent_boots": 2}
    base.update(kw)
    return PoolPolicy(**base)  # type: ignore[arg-type]


def test_empty_pool_boots_up_to_target() -> None:
    assert decide.plan([], policy(), NOW, target=2).boots == 2


def test_boots_respect_concurrent_limit_and_cap() -> None:
    assert decide.plan([], policy(size=4, max_concurrent_boots=1), NOW, 4).boots == 1
    busy = [view(f"b{i}", S.BUSY) for i in range(3)]
    assert decide.plan(busy, policy(size=2), NOW, 2).boots == 1  # cap 4, 3 busy


def test_booting_spares_count_toward_target_but_promised_ones_do_not() -> None:
    assert decide.plan([view("a", S.BOOTING), view("b", S.BOOTING)], policy(), NOW, 2).boots == 0
    promised = [view("a", S.BOOTING, promised=True), view("b", S.BOOTING)]
    assert decide.plan(promised, policy(max_concurrent_boots=3), NOW, 2).boots == 1


def test_backoff_blocks_boots() -> None:
    assert decide.plan([], policy(), NOW, 2, boots_blocked=True).boots == 0
    assert not decide.can_cold_start([], policy(), boots_blocked=True)


def test_recycle_is_rolling_replacement_boots_first() -> None:
    old = [view("a", age=4000), view("b")]
    p = decide.plan(old, policy(), NOW, 2)
    assert p.retire == ()  # only one fresh warm: keep the old one serving
    assert p.boots == 1
    # once the replacement is warm, the old one goes
    p = decide.plan([*old, view("c")], policy(), NOW, 2)
    assert p.retire == (("a", RecycleReason.MAX_AGE),)


@pytest.mark.parametrize(("v", "reason"), [
    (view("x", uses=10), RecycleReason.MAX_USES),
    (view("x", age=3601), RecycleReason.MAX_AGE),
    (view("x", idle=601), RecycleReason.IDLE),
    (view("x"), None),
])
def test_recycle_reasons(v: ContainerRecord, reason: RecycleReason | None) -> None:
    assert decide.recycle_reason(v, policy(), NOW) == reason


def test_resize_down_retires_idle_surplus_oldest_first() -> None:
    warm = [view("old", age=100, idle=90), view("mid", age=50, idle=61),
            view("new", age=5, idle=61)]
    p = decide.plan(warm, policy(size=1), NOW, 1)
    assert p.retire == (("old", RecycleReason.RESIZE), ("mid", RecycleReason.RESIZE))
    assert p.boots == 0
    # A container used within the grace keeps one extra: the oldest idle one goes, not it.
    warm[2] = view("new", age=5, idle=1)
    assert decide.plan(warm, policy(size=1), NOW, 1).retire == (("old", RecycleReason.RESIZE),)


def test_a_container_back_above_the_target_waits_for_the_next_job() -> None:
    # Leased "a" was replaced by "b"; back from its job, "a" is one over the target.
    back = [view("a", age=100, idle=0), view("b", age=20, idle=20)]
    assert decide.plan(back, policy(size=1), NOW, 1).retire == ()
    # The next job takes the most recently used one, and so on: no boot per job.
    assert decide.pick_lease(back, policy(size=1), NOW) == "a"
    # Once no job has come back for the grace, the surplus goes, the oldest first.
    quiet = [view("a", age=160, idle=61), view("b", age=80, idle=80)]
    assert decide.plan(quiet, policy(size=1), NOW, 1).retire == (("a", RecycleReason.RESIZE),)
    # Without the grace, or with no warm pool at all, the surplus goes at once.
    assert decide.plan(back, policy(size=1, surplus_idle_s=0), NOW, 1).retire == (
        ("a", RecycleReason.RESIZE),)
    assert decide.plan(back, policy(size=0), NOW, 0).retire == (
        ("a", RecycleReason.RESIZE), ("b", RecycleReason.RESIZE))


def test_lowered_cap_sheds_even_below_target() -> None:
    warm = [view(str(i), age=i) for i in range(4)]
    p = decide.plan(warm, policy(size=2, max=2), NOW, 2)
    assert len(p.retire) == 2


def test_at_cap_with_stale_containers_frees_a_slot() -> None:
    stale = [view("a", age=4000), view("b", age=4000)]
    p = decide.plan(stale, policy(size=2, max=2), NOW, 2)
    assert len(p.retire) == 1 and p.retire[0][1] is RecycleReason.MAX_AGE


def test_lease_prefers_fresh_then_most_recently_used() -> None:
    containers = [view("stale", age=5000, idle=0), view("recent", idle=1),
                  view("rested", idle=50), view("busy", S.BUSY)]
    assert decide.pick_lease(containers, policy(), NOW) == "recent"
    assert decide.pick_lease([view("b", S.BUSY), view("x", S.BOOTING)], policy(), NOW) is None


def test_capacity_and_cold_start() -> None:
    p = policy(size=1, max=2)
    assert decide.has_capacity([], p)
    full = [view("a", S.BUSY), view("b", S.BUSY)]
    assert not decide.has_capacity(full, p)
    assert decide.pick_spare_boot([view("a", S.BOOTING, promised=True)]) is None
    assert decide.pick_spare_boot([view("a", S.BOOTING, age=1), view("b", S.BOOTING, age=9)]) == "b"


def test_boot_backoff_doubles_and_caps() -> None:
    assert [decide.boot_backoff(n, 1, 10) for n in range(6)] == [0, 1, 2, 4, 8, 10]


def test_policy_rejects_size_over_max() -> None:
    with pytest.raises(ValueError, match="size <= max"):
        PoolPolicy(size=5, max=2)


def test_poisson_quantile() -> None:
    assert poisson_quantile(0, 0.95) == 0
    assert poisson_quantile(1.0, 0.5) == 1
    assert poisson_quantile(10.0, 0.95) == 15


def test_autoscale_follows_demand_and_steps_down() -> None:
    p = policy(size=2, max=8, min=1, autoscale=True)
    arrivals = [NOW - i for i in range(60)]  # 1/s over the last minute
    target, reason = autoscale_target(arrivals, NOW, window_s=60, boot_s=2, quantile=0.95,
                                      waiting=1, policy=p, current=1)
    assert (target, reason) == (poisson_quantile(2.0, 0.95) + 1, "demand")
    target, reason = autoscale_target([], NOW, window_s=60, boot_s=2, quantile=0.95,
                                      waiting=0, policy=p, current=6)
    assert (target, reason) == (5, "step_down")
    target, reason = autoscale_target([], NOW, window_s=60, boot_s=2, quantile=0.95,
                                      waiting=0, policy=p, current=1)
    assert (target, reason) == (1, "min")
