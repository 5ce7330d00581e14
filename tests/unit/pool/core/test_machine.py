"""The container state machine: transitions and their effects, on a fake clock."""

from __future__ import annotations

import itertools

import pytest

from pool.core.exceptions import PoolClosed
from pool.core.machine import Boot, PoolMachine, Retire
from pool.core.pool_policy import PoolPolicy
from pool.core.states import ContainerState as S
from pool.core.states import LaunchType, RecycleReason

pytestmark = pytest.mark.unit


def machine(**policy: int | float | bool) -> PoolMachine:
    counter = itertools.count(1)
    return PoolMachine(PoolPolicy(**{"size": 1, "max": 3, **policy}),  # type: ignore[arg-type]
                       new_id=lambda: f"c{next(counter)}", boot_timeout_s=30.0,
                       boot_backoff_s=1.0, boot_backoff_max_s=8.0)


def test_an_empty_pool_boots_its_target_and_becomes_filled_when_warm() -> None:
    m = machine(size=2)
    assert m.reconcile(0.0) == [Boot("c1"), Boot("c2")]
    assert m.state_counts() == {"booting": 2}
    assert not m.filled
    assert m.boot_ready("c1", 5.0) == []
    m.boot_ready("c2", 6.0)
    m.reconcile(6.0)
    assert m.filled and m.state_counts() == {"warm": 2}


def test_a_warm_lease_is_busy_at_once_and_release_makes_it_warm_again() -> None:
    m = machine()
    m.reconcile(0.0)
    m.boot_ready("c1", 1.0)
    step = m.lease(2.0)
    assert step is not None and step.launch_type is LaunchType.WARM and step.id == "c1"
    assert m.records["c1"].state is S.BUSY and m.records["c1"].uses == 1
    # The replacement boots when the driver replans after its handoff.
    assert m.reconcile(2.0) == [Boot("c2")]
    m.release("c1", 3.0, healthy=True)
    assert m.state_counts() == {"warm": 1, "booting": 1}


def test_a_cold_lease_promises_a_boot_and_counts_the_use_when_ready() -> None:
    m = machine(size=0)
    step = m.lease(0.0)
    assert step is not None and step.launch_type is LaunchType.COLD
    assert step.effects == (Boot(step.id),)
    assert m.records[step.id].promised
    m.boot_ready(step.id, 4.0)
    assert m.records[step.id].state is S.BUSY and m.records[step.id].uses == 1


def test_release_at_max_uses_or_unhealthy_retires_and_removal_replans() -> None:
    m = machine(max_uses=1)
    m.reconcile(0.0)
    m.boot_ready("c1", 1.0)
    m.lease(2.0)
    m.reconcile(2.0)  # boots c2
    effects = m.release("c1", 3.0, healthy=True)
    assert Retire("c1", RecycleReason.MAX_USES) in effects
    assert m.records["c1"].state is S.RETIRING
    m.removed("c1", 3.5)
    assert "c1" not in m.records
    m.boot_ready("c2", 4.0)
    m.lease(5.0)
    assert Retire("c2", RecycleReason.UNHEALTHY) in m.release("c2", 6.0, healthy=False)


def test_failed_boots_back_off_doubling_up_to_the_cap() -> None:
    m = machine()
    m.reconcile(0.0)
    assert m.boot_failed("c1", 10.0) == 1.0
    m.removed("c1", 10.0)
    assert m.boots_blocked(10.5) and m.reconcile(10.5) == []
    assert m.reconcile(11.0) == [Boot("c2")]
    assert m.boot_failed("c2", 12.0) == 2.0
    for n in range(3, 8):
        m.removed(f"c{n - 1}", 100.0 * n)
        m.reconcile(100.0 * n)
        backoff = m.boot_failed(f"c{n}", 100.0 * n)
    assert backoff == 8.0
    # A boot cancelled by a drain is not a failure.
    assert m.boot_failed("c7", 900.0, counted=False) == 0.0


def test_a_tick_replans_when_the_back_off_ends() -> None:
    m = machine()
    m.reconcile(0.0)
    m.boot_failed("c1", 0.0)
    m.removed("c1", 0.0)
    assert m.tick(0.5) == []
    assert m.tick(1.0) == [Boot("c2")]


def test_no_capacity_means_no_lease_and_a_closed_pool_refuses() -> None:
    m = machine(size=0, max=1)
    step = m.lease(0.0)
    assert step is not None
    assert not m.has_capacity(0.0) and m.lease(0.0) is None
    m.close()
    assert m.reconcile(1.0) == []
    with pytest.raises(PoolClosed, match="draining"):
        m.lease(1.0)


def test_a_boot_is_due_by_its_deadline() -> None:
    m = machine()
    m.reconcile(5.0)
    assert m.boot_deadline("c1") == 35.0
    with pytest.raises(KeyError):
        m.boot_deadline("nope")


def test_outdated_containers_are_never_leased_and_retire_once_the_target_is_warm() -> None:
    m = machine(size=1)
    m.adopt("old", created_at=0.0, now=0.0, uses=2, outdated=True)
    assert m.state_counts() == {} and m.lease(0.0) is not None  # a cold start, not "old"
    m = machine(size=1)
    m.adopt("old", created_at=0.0, now=0.0, uses=2, outdated=True)
    assert m.reconcile(0.0) == [Boot("c1")]  # nothing warm yet: "old" stays
    assert m.boot_ready("c1", 1.0) == [Retire("old", RecycleReason.OUTDATED)]
    assert m.reconcile(1.5) == []  # retired once
    m.removed("old", 2.0)
    assert "old" not in m.outdated


def test_give_back_undoes_an_unused_lease() -> None:
    m = machine()
    m.reconcile(0.0)
    m.boot_ready("c1", 1.0)
    m.lease(2.0)
    m.give_back("c1")
    assert m.records["c1"].state is S.WARM and m.records["c1"].uses == 0
    m.give_back("c1")  # not busy: nothing happens
    assert m.records["c1"].uses == 0


def test_an_unreachable_engine_pauses_boots_until_it_is_back() -> None:
    m = machine(size=2)
    m.set_engine_up(False)
    assert m.reconcile(0.0) == [] and m.boots_blocked(0.0)
    m.set_engine_up(True)
    assert m.tick(0.1) == [Boot("c1"), Boot("c2")]


def test_reports_about_a_container_dropped_from_the_books_change_nothing() -> None:
    m = machine(size=1)
    m.reconcile(0.0)
    m.removed("c1", 0.5)  # fenced off while booting; the replacement boots
    assert m.boot_ready("c1", 1.0) == []
    assert m.release("c1", 1.0, healthy=True) == []
    assert set(m.records) == {"c2"}


def test_a_closed_pool_boots_no_replacement_and_a_cut_off_job_retires_for_drain() -> None:
    m = machine(size=2)
    m.reconcile(0.0)
    m.boot_ready("c1", 1.0)
    m.boot_ready("c2", 1.0)
    m.lease(2.0)
    m.lease(2.0)
    m.close()  # the drain begins with both busy
    # A finished job's container goes back warm, with no replacement boot.
    assert m.release("c1", 3.0, healthy=True) == []
    # A job the drain timeout cut off: retired for the drain, not as unhealthy.
    assert m.release("c2", 4.0, healthy=False, reason=RecycleReason.DRAIN) == \
        [Retire("c2", RecycleReason.DRAIN)]
    assert not any(isinstance(e, Boot) for e in m.removed("c2", 5.0))
