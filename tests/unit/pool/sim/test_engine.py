"""`vwe-pool simulate`: the discrete-event what-if, driven by the pool's own decisions."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

import pool.sim.engine as sim
from pool.core import policy as policy_module
from pool.core.machine import PoolMachine
from pool.core.pool_policy import PoolPolicy
from pool.sim.cli import parse_sizes
from pool.sim.engine import SimResult, recommend, simulate
from pool.sim.workload import (
    Constant,
    Empirical,
    LogNormal,
    normalize_trace,
    parse_distribution,
    poisson_arrivals,
)

pytestmark = pytest.mark.unit

BOOT = Constant(20.0)
GEN = Constant(1.0)


def sparse(n: int = 20, gap: float = 60.0, start: float = 5.0) -> list[float]:
    return [start + i * gap for i in range(n)]


def sweep(arrivals: list[float], sizes: range, **kw: Any) -> list[SimResult]:
    boot = kw.pop("boot", LogNormal.from_mean_std(20, 5))
    gen = kw.pop("generation", LogNormal.from_mean_std(2, 1))
    return [simulate(arrivals, PoolPolicy(size=s, max=8), boot, gen, seed=7, **kw)
            for s in sizes]


# ---------- behaviour ----------
def test_generous_pool_and_sparse_arrivals_are_all_warm_at_generation_time() -> None:
    r = simulate(sparse(), PoolPolicy(size=3, max=8, surplus_idle_s=0), BOOT, Constant(2.5),
                 horizon_s=1200)
    assert r.jobs == 20
    assert set(r.launch_types) == {"warm"}
    assert r.warm_hit_ratio == 1.0
    assert r.latencies == pytest.approx([2.5] * 20)
    assert r.p50 == pytest.approx(2.5) and r.p99 == pytest.approx(2.5)
    assert r.queue_waits == pytest.approx([0.0] * 20)
    # Busy containers do not count toward the warm target: each lease boots a replacement.
    # With no grace for the surplus, the leased one is shed as soon as it comes back warm.
    assert r.boots == 20
    assert r.recycled == {"resize": 20}
    assert r.mean_target == pytest.approx(3)


def test_a_container_back_from_a_job_serves_the_next_one_within_the_grace() -> None:
    # Jobs 30 s apart, a grace of 60 s: the first lease's replacement is the only boot; from
    # then on the pool is one over its target and each job finds a warm container.
    r = simulate(sparse(gap=30.0), PoolPolicy(size=3, max=8, surplus_idle_s=60), BOOT,
                 Constant(2.5), horizon_s=1200)
    assert set(r.launch_types) == {"warm"}
    assert r.boots == 1
    # Jobs 90 s apart outlast the grace: the surplus idles out between jobs, as before.
    r = simulate(sparse(gap=90.0), PoolPolicy(size=3, max=8, surplus_idle_s=60), BOOT,
                 Constant(2.5), horizon_s=2400)
    assert set(r.launch_types) == {"warm"}
    assert r.boots == 20 and r.recycled == {"resize": 20}


def test_size_zero_cold_starts_every_job() -> None:
    r = simulate(sparse(), PoolPolicy(size=0, max=8), BOOT, GEN, horizon_s=1200)
    assert set(r.launch_types) == {"cold"}
    assert r.warm_hit_ratio == 0.0
    assert r.latencies == pytest.approx([21.0] * 20)
    assert r.boots == 20
    # Released warm above a target of 0: shed at once, so never reused.
    assert r.recycled == {"resize": 20}
    # Each container lives boot + generation + removal.
    assert r.container_seconds == pytest.approx(20 * (20 + 1 + sim.RETIRE_S))


def test_a_larger_pool_never_has_a_lower_warm_hit_ratio() -> None:
    arrivals = poisson_arrivals(0.3, 3600, seed=3)
    results = sweep(arrivals, range(7))
    ratios = [r.warm_hit_ratio for r in results]
    assert ratios == sorted(ratios), ratios
    assert ratios[0] == 0.0 and ratios[-1] > 0.95
    p95 = [r.p95 for r in results]
    assert p95[-1] < p95[0]


def test_container_seconds_grow_with_size() -> None:
    arrivals = poisson_arrivals(0.2, 1800, seed=5)
    cost = [r.container_seconds for r in sweep(arrivals, range(7))]
    assert all(b > a for a, b in itertools.pairwise(cost)), cost
    # An idle pool of 6 for the whole period costs at least 6 container-periods.
    assert cost[6] >= 6 * 1800 * 0.99


def test_recommendation_is_the_smallest_size_meeting_the_target() -> None:
    results = sweep(poisson_arrivals(0.3, 3600, seed=3), range(7))
    for target in (4.0, 6.0, 10.0, 25.0):
        chosen = recommend(results, target)
        assert chosen is not None
        assert chosen.p95 <= target
        assert all(r.p95 > target for r in results if r.size < chosen.size)
    assert recommend(results, 0.01) is None
    chosen = recommend(results, 6.0, "p99")
    assert chosen is not None and chosen.p99 <= 6.0


def test_jobs_are_served_first_in_first_out() -> None:
    # A burst at size 1: jobs queue behind the one container and the boots it can make.
    arrivals = [0.0] * 10 + [0.5] * 5
    r = simulate(arrivals, PoolPolicy(size=1, max=3, max_concurrent_boots=1), BOOT, GEN)
    starts = [a + w for a, w in zip(arrivals, r.queue_waits, strict=True)]
    assert starts == sorted(starts)
    assert r.max_queue > 5
    assert all(w >= 0 for w in r.queue_waits)
    assert r.jobs == 15 and all(math.isfinite(x) for x in r.latencies)


def test_max_uses_and_idle_ttl_recycle_as_the_daemon_does() -> None:
    r = simulate(sparse(10), PoolPolicy(size=1, max=4, max_uses=1), BOOT, GEN)
    assert r.recycled.get("max_uses") == 10
    assert set(r.launch_types) == {"warm"}  # the replacement is warm before the next arrival
    r = simulate(sparse(4, gap=600), PoolPolicy(size=1, max=4, idle_ttl_s=100), BOOT, GEN)
    assert r.recycled.get("idle", 0) >= 3
    assert set(r.launch_types) == {"warm"}  # rolling: the stale one serves until replaced


def test_a_finished_removal_replans_at_once_as_the_daemon_does() -> None:
    # At the cap, a container retired at max_uses frees its slot only once removed;
    # WarmPool._remove replans then, so the replacement boots at once, not on the next tick.
    boot, gen = Constant(2.0), Constant(1.0)
    ready_at = 1.0 + 1.0 + sim.RETIRE_S + 2.0  # arrival + generation + removal + boot
    r = simulate([1.0, ready_at + 0.05], PoolPolicy(size=1, max=1, max_uses=1), boot, gen,
                 maintenance_interval_s=30.0)
    assert r.launch_types == ["warm", "warm"]
    assert r.latencies == pytest.approx([1.0, 1.0])
    assert r.boots == 1  # the replacement


def test_decisions_come_from_the_pool_policy_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine drives the daemon's own state machine, which asks `pool.core.policy`."""
    calls: dict[str, int] = {}

    def spy(name: str) -> Any:
        home = sim if name == "autoscale_target" else policy_module
        real = getattr(home, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return real(*a, **k)

        monkeypatch.setattr(home, name, wrapper)

    for name in ("plan", "pick_lease", "pick_spare_boot", "can_cold_start", "has_capacity",
                 "autoscale_target"):
        spy(name)
    simulate(poisson_arrivals(0.5, 600, seed=1), PoolPolicy(size=0, max=4), BOOT, GEN,
             autoscale=True)
    assert set(calls) == {"plan", "pick_lease", "pick_spare_boot", "can_cold_start",
                          "has_capacity", "autoscale_target"}


def test_skipping_idle_ticks_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replanning only on change must give what replanning on every tick gives."""
    arrivals = poisson_arrivals(0.05, 3600, seed=2) + poisson_arrivals(0.5, 300, seed=4)
    pol = PoolPolicy(size=2, max=5, max_age_s=400, idle_ttl_s=90, max_uses=7)
    kw: dict[str, Any] = {"seed": 3, "horizon_s": 3600.0}
    lean = [simulate(arrivals, pol, LogNormal.from_mean_std(20, 6), GEN, **kw),
            simulate(arrivals, pol, LogNormal.from_mean_std(20, 6), GEN, autoscale=True, **kw)]
    planned = {"n": 0}
    real = policy_module.plan

    def counting(*a: Any, **k: Any) -> Any:
        planned["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(policy_module, "plan", counting)
    simulate(arrivals, pol, LogNormal.from_mean_std(20, 6), GEN, **kw)
    lean_plans = planned["n"]
    monkeypatch.setattr(PoolMachine, "tick", PoolMachine.reconcile)
    planned["n"] = 0
    eager = [simulate(arrivals, pol, LogNormal.from_mean_std(20, 6), GEN, **kw),
             simulate(arrivals, pol, LogNormal.from_mean_std(20, 6), GEN, autoscale=True, **kw)]
    assert planned["n"] > lean_plans
    for a, b in zip(lean, eager, strict=True):
        assert a.latencies == b.latencies
        assert a.launch_types == b.launch_types
        assert a.container_seconds == b.container_seconds
        assert a.recycled == b.recycled
        assert a.mean_target == b.mean_target


def test_autoscaler_follows_demand_within_bounds() -> None:
    arrivals = poisson_arrivals(0.2, 3600, seed=9)
    pol = PoolPolicy(size=0, max=6, min=1)
    r = simulate(arrivals, pol, BOOT, GEN, autoscale=True, horizon_s=3600)
    assert r.autoscale
    assert 1 <= r.mean_target <= 6
    fixed0 = simulate(arrivals, PoolPolicy(size=0, max=6), BOOT, GEN, horizon_s=3600)
    assert r.warm_hit_ratio > fixed0.warm_hit_ratio
    idle = simulate([1.0, 3500.0], pol, BOOT, GEN, autoscale=True, horizon_s=3600)
    assert idle.mean_target == pytest.approx(1, abs=0.05)  # held at min with no demand


def test_an_hour_at_one_per_second_simulates() -> None:
    arrivals = poisson_arrivals(1.0, 3600, seed=0)
    assert 3300 < len(arrivals) < 3900
    for size in (0, 3, 6):
        r = simulate(arrivals, PoolPolicy(size=size, max=8), BOOT, GEN, horizon_s=3600)
        assert r.jobs == len(arrivals)
        assert all(math.isfinite(x) and x >= 1.0 - 1e-9 for x in r.latencies)
    r = simulate(arrivals, PoolPolicy(size=0, max=8), BOOT, GEN, autoscale=True,
                 horizon_s=3600)
    assert r.jobs == len(arrivals) and r.mean_target > 0


def test_horizon_drops_late_arrivals_and_bounds_the_cost() -> None:
    r = simulate([10.0, 20.0, 500.0], PoolPolicy(size=2, max=4, surplus_idle_s=0), BOOT, GEN,
                 horizon_s=100)
    assert r.jobs == 2
    # Two warm all along; the first lease's replacement boots at 10 s and, once warm at
    # 30 s, sheds the oldest (removed at 30.1 s); cost is cut at the horizon.
    assert r.container_seconds == pytest.approx(30.1 + 100 + 90)
    assert simulate([], PoolPolicy(size=1, max=2), BOOT, GEN, horizon_s=50).jobs == 0
    with pytest.raises(ValueError):
        simulate([-1.0], PoolPolicy(size=1, max=2), BOOT, GEN)


def test_same_seed_same_result() -> None:
    arrivals = poisson_arrivals(0.3, 900, seed=1)
    a, b = sweep(arrivals, range(2, 3)), sweep(arrivals, range(2, 3))
    assert a[0].latencies == b[0].latencies


# ---------- distributions and inputs ----------
def test_distributions_parse_and_sample(tmp_path: Path) -> None:
    rng = random.Random(1)
    assert parse_distribution("const:20").sample(rng) == 20.0
    assert parse_distribution("3.5").mean() == 3.5
    ln = parse_distribution("lognormal:20,2")
    assert isinstance(ln, LogNormal)
    assert ln.mean() == pytest.approx(20)
    draws = [ln.sample(rng) for _ in range(20_000)]
    assert sum(draws) / len(draws) == pytest.approx(20, rel=0.02)

    rng2 = random.Random(3)
    samples = [rng2.lognormvariate(1.0, 0.5) for _ in range(5000)]
    (tmp_path / "gen.json").write_text(json.dumps(samples))
    fitted = parse_distribution(f"lognormal:{tmp_path / 'gen.json'}")
    assert isinstance(fitted, LogNormal)
    assert fitted.mu == pytest.approx(1.0, abs=0.03)
    assert fitted.sigma == pytest.approx(0.5, abs=0.03)

    (tmp_path / "boot.csv").write_text("boot_s\n18\n20\n22\n")
    emp = parse_distribution(f"empirical:{tmp_path / 'boot.csv'}")
    assert isinstance(emp, Empirical)
    assert {emp.sample(rng) for _ in range(200)} == {18.0, 20.0, 22.0}

    for bad in ("uniform:1,2", "const:-1", "lognormal:0,1", "nonsense"):
        with pytest.raises(ValueError):
            parse_distribution(bad)
    with pytest.raises(OSError):
        parse_distribution(f"empirical:{tmp_path / 'missing.json'}")


def test_sizes_and_traces() -> None:
    assert parse_sizes("0-6") == [0, 1, 2, 3, 4, 5, 6]
    assert parse_sizes("4,1,2") == [1, 2, 4]
    assert parse_sizes("0-2,5") == [0, 1, 2, 5]
    for bad in ("", "6-2", "a", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_sizes(bad)
    assert normalize_trace([1_700_000_010.5, 1_700_000_000.0]) == [0.0, 10.5]
    assert normalize_trace([3.0, 1.0]) == [1.0, 3.0]


def test_a_boot_longer_than_the_boot_timeout_fails_as_in_the_daemon() -> None:
    slow = Constant(90.0)
    r = simulate([1.0], PoolPolicy(size=0, max=2), slow, GEN, horizon_s=400,
                 boot_timeout_s=60.0, boot_backoff_s=1.0, boot_backoff_max_s=4.0)
    # Every boot times out: the job never runs (the run stops, stalled, a day past the
    # horizon), and boots back off between attempts.
    assert math.isnan(r.latencies[0]) and r.unfinished == 1 and math.isnan(r.p50)
    assert r.failed_boots >= r.boots - 1 >= 2  # the last boot may be in flight at the stop
    assert r.duration_s <= 400 + sim.STALL_LIMIT_S + 60
    fine = simulate([1.0], PoolPolicy(size=0, max=2), slow, GEN, horizon_s=400,
                    boot_timeout_s=120.0)
    assert fine.failed_boots == 0 and fine.latencies == pytest.approx([91.0])
