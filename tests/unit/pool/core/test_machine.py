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
                       new_id=lambda: f"c{next(counter)}", boot_backoff_s=1.0,
                       boot_backoff_max_s=8.0)


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
