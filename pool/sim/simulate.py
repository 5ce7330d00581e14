"""`vwe-pool simulate`: a discrete-event what-if of latency and cost against pool size.

The simulator replays an arrival trace (recorded, from Redis, or Poisson) against a virtual
pool on a virtual clock. Every decision is made by the daemon's own pure functions
(`pool.core.policy.plan`, `pick_lease`, `pick_spare_boot`, `can_cold_start`,
`has_capacity`, `pool.core.autoscale.autoscale_target`), applied the way
`pool.daemon.warm_pool.WarmPool` applies them:

- any change (lease, claim, boot done, release, policy tick) runs `plan` and carries it out;
- a job is taken from the FIFO queue only while `has_capacity` holds; it then leases a warm
  container (launch `warm`), else claims a spare booting one or cold-starts a new one (launch
  `cold`, the job waits for that boot);
- after a job the container is returned warm, or retired at `max_uses`; removal takes
  `RETIRE_S`; a finished removal replans (as `WarmPool._remove` does: the freed slot under
  the cap may be wanted for a replacement now) and wakes the dispatcher;
- maintenance ticks replan every `maintenance_interval_s`, the autoscaler every 5 s.

Distributions and traces live in `pool.sim.workload`.

What is not modelled: boot or generation failures, health probes, several daemons, the
sub-millisecond handoff. The pool starts with its target already warm (steady state), so the
first jobs are not charged for the daemon's own start-up.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import math
import os
import random
import statistics
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pool.core import constants
from pool.core.autoscale import autoscale_target
from pool.core.policy import (
    ContainerView,
    PoolPolicy,
    can_cold_start,
    has_capacity,
    pick_lease,
    pick_spare_boot,
    plan,
    recycle_reason,
)
from pool.core.states import ContainerState, RecycleReason
from pool.sim.workload import (
    Constant,
    Distribution,
    Empirical,
    LogNormal,
    normalize_trace,
    parse_distribution,
    poisson_arrivals,
    read_numbers,
    read_redis_trace,
)

# Seconds a container spends `retiring` (docker rm of a small container).
RETIRE_S = 0.1
# The daemon's autoscaler runs every this many seconds.
AUTOSCALE_INTERVAL_S = 5.0
# Boot-time guess of the autoscaler before any boot finished (Settings.boot_timeout_s / 4).
AUTOSCALE_BOOT_DEFAULT_S = 15.0
# How many recent boot durations the autoscaler takes the median of (WarmPool.boot_times).
BOOT_HISTORY = 50

_BOOTING, _WARM, _BUSY, _RETIRING = (ContainerState.BOOTING, ContainerState.WARM,
                                     ContainerState.BUSY, ContainerState.RETIRING)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class SimResult:
    """One run. Latencies (finish - arrival), launch types and queue waits are per job in
    arrival order; container-seconds and the mean target cover [0, horizon]."""

    size: int
    max: int
    autoscale: bool
    latencies: list[float]
    launch_types: list[str]
    queue_waits: list[float]
    container_seconds: float
    mean_target: float
    duration_s: float
    boots: int
    recycled: dict[str, int] = field(default_factory=dict)
    max_queue: int = 0
    p50: float = math.nan
    p95: float = math.nan
    p99: float = math.nan
    warm_hit_ratio: float = math.nan

    def __post_init__(self) -> None:
        ordered = sorted(self.latencies)
        self.p50, self.p95, self.p99 = (_percentile(ordered, q) for q in (50, 95, 99))
        if self.launch_types:
            warm = sum(1 for t in self.launch_types if t == "warm")
            self.warm_hit_ratio = warm / len(self.launch_types)

    @property
    def jobs(self) -> int:
        return len(self.latencies)

    @property
    def container_hours(self) -> float:
        return self.container_seconds / 3600

    def quantile(self, name: str) -> float:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99}[name]

    def summary(self) -> dict[str, Any]:
        """Everything but the per-job lists, JSON-ready (NaN as null)."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("latencies", "launch_types", "queue_waits")}
        out["jobs"] = self.jobs
        out["container_hours"] = self.container_hours
        out["mean_queue_wait_s"] = statistics.fmean(self.queue_waits) if self.queue_waits else 0.0
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# The event loop
# ---------------------------------------------------------------------------------------------
# Event kinds, ordered so that at one instant completions come before ticks.
_BOOT_DONE, _GEN_DONE, _RETIRE_DONE, _MAINTAIN, _AUTOSCALE = range(5)


class _Sim:
    """One run. Containers are kept as frozen `ContainerView`s (what the decisions read),
    replaced on every change; the few extra facts live in side tables."""

    def __init__(self, arrivals: list[float], policy: PoolPolicy, boot: Distribution,
                 generation: Distribution, *, autoscale: bool, horizon: float, seed: int,
                 maintenance_interval_s: float, autoscale_window_s: float,
                 autoscale_quantile: float, autoscale_step_down: int) -> None:
        self.arrivals = arrivals
        self.policy = policy.updated(autoscale=True) if autoscale else policy
        self.autoscale = autoscale
        self.horizon = horizon
        self.maintenance_interval_s = maintenance_interval_s
        self.window_s = autoscale_window_s
        self.quantile = autoscale_quantile
        self.step_down = autoscale_step_down
        # Separate streams: each job's generation time is the same whatever the pool size
        # (common random numbers), boots draw from their own stream in boot order.
        gen_rng = random.Random(f"{seed}:generation")
        self.gen_times = [generation.sample(gen_rng) for _ in arrivals]
        self.boot = boot
        self.boot_rng = random.Random(f"{seed}:boot")

        self.now = 0.0
        self.views: dict[str, ContainerView] = {}
        self.born: dict[str, float] = {}
        self.boot_started: dict[str, float] = {}
        self.waiter: dict[str, int] = {}  # booting container -> job waiting on it
        self.running: dict[str, int] = {}  # busy container -> its job
        self.events: list[tuple[float, int, int, str]] = []
        self._seq = 0
        self._next_id = 0
        self.queue: deque[int] = deque()
        self.autoscaled: int | None = None
        self.boot_times: deque[float] = deque(maxlen=BOOT_HISTORY)
        # Replanning is skipped while nothing changed and no container can become due.
        self._dirty = True
        self._planned_at = 0.0

        n = len(arrivals)
        self.started = [math.nan] * n
        self.finished = [math.nan] * n
        self.launch = [""] * n
        self.container_seconds = 0.0
        self.boots = 0
        self.recycled: dict[str, int] = {}
        self.max_queue = 0
        self._target_area = 0.0
        self._target_since = 0.0
        self._target_value = self.target()

    # ---- state ----
    def target(self) -> int:
        if self.policy.autoscale and self.autoscaled is not None:
            return self.autoscaled
        return self.policy.size

    def _set(self, cid: str, *, state: ContainerState | None = None,
             last_used_at: float | None = None, uses: int | None = None,
             claimed: bool | None = None) -> None:
        v = self.views[cid]
        self.views[cid] = ContainerView(
            cid, v.state if state is None else state, v.created_at,
            v.last_used_at if last_used_at is None else last_used_at,
            v.uses if uses is None else uses, v.claimed if claimed is None else claimed)
        self._dirty = True

    def _push(self, at: float, kind: int, cid: str = "") -> None:
        self._seq += 1
        heapq.heappush(self.events, (at, kind, self._seq, cid))

    def _new_container(self, state: ContainerState, claimed: bool) -> str:
        self._next_id += 1
        cid = f"c{self._next_id}"
        self.views[cid] = ContainerView(cid, state, self.now, self.now, 0, claimed)
        self.born[cid] = self.now
        self._dirty = True
        return cid

    def _spawn_boot(self, claimed: bool) -> str:
        cid = self._new_container(_BOOTING, claimed)
        self.boots += 1
        self.boot_started[cid] = self.now
        self._push(self.now + self.boot.sample(self.boot_rng), _BOOT_DONE, cid)
        return cid

    def _retire(self, cid: str, reason: RecycleReason) -> None:
        if self.views[cid].state is _RETIRING:
            return
        self._set(cid, state=_RETIRING)
        self.recycled[reason.value] = self.recycled.get(reason.value, 0) + 1
        self._push(self.now + RETIRE_S, _RETIRE_DONE, cid)

    # ---- WarmPool.reconcile ----
    def reconcile(self) -> None:
        p = plan(list(self.views.values()), self.policy, self.now, self.target())
        for cid, reason in p.retire:
            self._retire(cid, reason)
        for _ in range(p.boots):
            self._spawn_boot(claimed=False)
        # A plan that changed nothing holds until the state changes or time makes a warm
        # container due (the only way `plan` depends on the clock).
        self._dirty = bool(p.boots or p.retire)
        self._planned_at = self.now

    def _turned_due(self) -> bool:
        """Did a warm container become due by age or idleness, or sheddable as surplus
        (idle `surplus_idle_s`), since the last plan?"""
        pol, then, now = self.policy, self._planned_at, self.now
        grace = pol.surplus_idle_s
        return any(v.state is _WARM and (
            (recycle_reason(v, pol, then) is None and recycle_reason(v, pol, now) is not None)
            or then - v.last_used_at < grace <= now - v.last_used_at)
            for v in self.views.values())

    def maybe_reconcile(self) -> None:
        """A tick: replan only when that could change the answer."""
        if self._dirty or self._turned_due():
            self.reconcile()

    # ---- WarmPool.acquire (the dispatcher only calls it with capacity, so it never waits) ----
    def dispatch(self) -> None:
        while self.queue:
            views = list(self.views.values())
            if not has_capacity(views, self.policy):
                return
            job = self.queue.popleft()
            self.started[job] = self.now
            cid = pick_lease(views, self.policy, self.now)
            if cid is not None:
                v = self.views[cid]
                self._set(cid, state=_BUSY, uses=v.uses + 1)
                self.reconcile()  # replenish now, not on the next tick
                self.launch[job] = "warm"
                self._run(cid, job)
                continue
            self.launch[job] = "cold"
            cid = pick_spare_boot(views)
            if cid is not None:
                self._set(cid, claimed=True)
                self.reconcile()
            elif can_cold_start(views, self.policy):
                cid = self._spawn_boot(claimed=True)
            else:  # has_capacity promised one of the three
                raise AssertionError("has_capacity held but nothing could be leased")
            self.waiter[cid] = job

    def _run(self, cid: str, job: int) -> None:
        self.running[cid] = job
        self._push(self.now + self.gen_times[job], _GEN_DONE, cid)

    # ---- events ----
    def boot_done(self, cid: str) -> None:
        self.boot_times.append(self.now - self.boot_started.pop(cid))
        v = self.views[cid]
        self._set(cid, state=_BUSY if v.claimed else _WARM, last_used_at=self.now)
        self.reconcile()
        job = self.waiter.pop(cid, None)
        if job is not None:
            self._set(cid, uses=self.views[cid].uses + 1)
            self._run(cid, job)

    def generation_done(self, cid: str) -> None:
        """WarmPool.release(healthy=True)."""
        job = self.running.pop(cid)
        self.finished[job] = self.now
        v = self.views[cid]
        self._set(cid, last_used_at=self.now, claimed=False)
        if v.uses >= self.policy.max_uses:
            self._retire(cid, RecycleReason.MAX_USES)
        else:
            self._set(cid, state=_WARM)
        self.reconcile()

    def retire_done(self, cid: str) -> None:
        del self.views[cid]
        self.container_seconds += self._alive_in_horizon(self.born.pop(cid), self.now)
        # WarmPool._remove replans at once: a freed slot under the cap may be wanted for a
        # replacement now, not on the next maintenance tick. (The dispatcher looks again.)
        self.reconcile()

    def autoscale_tick(self) -> None:
        lo = bisect.bisect_left(self.arrivals, self.now - self.window_s)
        hi = bisect.bisect_right(self.arrivals, self.now)
        boot_s = (statistics.median(self.boot_times) if self.boot_times
                  else AUTOSCALE_BOOT_DEFAULT_S)
        target, _reason = autoscale_target(
            self.arrivals[lo:hi], self.now, window_s=self.window_s, boot_s=boot_s,
            quantile=self.quantile, waiting=len(self.queue), policy=self.policy,
            current=self.target(), step_down=self.step_down)
        if target != self.autoscaled:
            self.autoscaled = target
            self._dirty = True
        self.maybe_reconcile()

    def _alive_in_horizon(self, born: float, gone: float) -> float:
        """Cost is counted over the simulated period [0, horizon] only, so sizes compare
        like for like even when an overloaded pool needs long to work off its backlog."""
        return max(0.0, min(gone, self.horizon) - min(born, self.horizon))

    def _advance(self, t: float) -> None:
        if self._target_since < self.horizon:
            upto = min(t, self.horizon)
            self._target_area += self._target_value * (upto - self._target_since)
            self._target_since = upto
        self.now = t

    def run(self) -> SimResult:
        # Steady state: the target is warm when the trace starts.
        for _ in range(min(self.target(), self.policy.max)):
            self._new_container(_WARM, claimed=False)
        self._push(self.maintenance_interval_s, _MAINTAIN)
        if self.autoscale:
            self._push(AUTOSCALE_INTERVAL_S, _AUTOSCALE)
        arrivals, n, i = self.arrivals, len(self.arrivals), 0
        pending = n  # jobs not finished yet
        events = self.events
        last_finish = 0.0
        while events or i < n:
            if i < n and (not events or arrivals[i] <= events[0][0]):
                self._advance(arrivals[i])
                self.queue.append(i)
                self.max_queue = max(self.max_queue, len(self.queue))
                i += 1
                self.dispatch()
                continue
            at, kind, _, cid = heapq.heappop(events)
            if at > self.horizon and pending == 0 and i >= n:
                break
            self._advance(at)
            if kind == _BOOT_DONE:
                self.boot_done(cid)
            elif kind == _GEN_DONE:
                self.generation_done(cid)
                pending -= 1
                last_finish = at
            elif kind == _RETIRE_DONE:
                self.retire_done(cid)
            elif kind == _MAINTAIN:
                self.maybe_reconcile()
                if at + self.maintenance_interval_s <= self.horizon or pending:
                    self._push(at + self.maintenance_interval_s, _MAINTAIN)
            else:
                self.autoscale_tick()
                if at + AUTOSCALE_INTERVAL_S <= self.horizon or pending:
                    self._push(at + AUTOSCALE_INTERVAL_S, _AUTOSCALE)
            if self._target_value != self.target():
                self._target_value = self.target()
            if self.queue:
                self.dispatch()
        end = max(self.horizon, last_finish)
        self._advance(end)
        for born in self.born.values():
            self.container_seconds += self._alive_in_horizon(born, end)
        return SimResult(
            size=self.policy.size, max=self.policy.max, autoscale=self.autoscale,
            latencies=[f - a for f, a in zip(self.finished, arrivals, strict=True)],
            launch_types=self.launch,
            queue_waits=[s - a for s, a in zip(self.started, arrivals, strict=True)],
            container_seconds=self.container_seconds,
            mean_target=(self._target_area / self.horizon if self.horizon > 0
                         else float(self._target_value)),
            duration_s=end, boots=self.boots, recycled=dict(sorted(self.recycled.items())),
            max_queue=self.max_queue,
        )


def simulate(
    arrivals: Sequence[float], policy: PoolPolicy, boot: Distribution, generation: Distribution,
    *, autoscale: bool = False, horizon_s: float | None = None, seed: int = 0,
    maintenance_interval_s: float = 2.0, autoscale_window_s: float = 900,
    autoscale_quantile: float = 0.95, autoscale_step_down: int = 1,
) -> SimResult:
    """Replay `arrivals` (seconds from 0) against a pool run by `policy`.

    The pool starts with min(size, max) warm containers. Arrivals after `horizon_s` are
    dropped; the horizon defaults to the last arrival. The run goes on until the horizon and
    every job has finished (`duration_s`); container-seconds (alive: booting, warm, busy or
    retiring) and the mean target are taken over [0, horizon], the period being costed.
    With `autoscale`, the autoscaler sets the target every 5 s (`policy.size` until its first
    decision), bounded by `policy.min` and `policy.max`.
    """
    times = sorted(float(t) for t in arrivals)
    if times and times[0] < 0:
        raise ValueError("arrival times must be offsets >= 0 from the start of the run")
    if maintenance_interval_s <= 0:
        raise ValueError("maintenance_interval_s must be > 0")
    horizon = float(horizon_s) if horizon_s is not None else (times[-1] if times else 0.0)
    if horizon_s is not None:
        times = times[:bisect.bisect_right(times, horizon)]
    sim = _Sim(times, policy, boot, generation, autoscale=autoscale, horizon=horizon, seed=seed,
               maintenance_interval_s=maintenance_interval_s,
               autoscale_window_s=autoscale_window_s, autoscale_quantile=autoscale_quantile,
               autoscale_step_down=autoscale_step_down)
    return sim.run()


def recommend(results: Sequence[SimResult], target_s: float, quantile: str = "p95"
              ) -> SimResult | None:
    """The smallest simulated size whose latency quantile meets `target_s`."""
    for r in sorted(results, key=lambda r: r.size):
        value = r.quantile(quantile)
        if not math.isnan(value) and value <= target_s:
            return r
    return None


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    """`0-6`, `1,2,4` or a mix such as `0-2,4,8`."""
    sizes: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                sizes.update(range(a, b + 1))
            else:
                sizes.add(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --sizes {text!r}: use a range such as 0-6 or a list such as 0,2,4"
        ) from None
    if not sizes or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"invalid --sizes {text!r}: sizes must be >= 0")
    return sorted(sizes)


def _distribution_arg(text: str) -> Distribution:
    try:
        return parse_distribution(text)
    except (ValueError, OSError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "What-if: replay arrivals against simulated pools of several sizes (and the "
        "autoscaler), using the daemon's own decisions, and report latency and cost. The "
        "pool policy (max_uses, max_age_s, idle_ttl_s, surplus_idle_s, max_concurrent_boots, "
        "min, max) comes from the VWE_* settings.")
    src = parser.add_argument_group("arrivals (one of)")
    src.add_argument("--trace", metavar="FILE",
                     help="arrival times: a JSON list (unix times or offsets in seconds) or a "
                          "CSV with one per line")
    src.add_argument("--rate", type=float, metavar="R", help="Poisson arrivals per second")
    src.add_argument("--from-redis", action="store_true",
                     help="arrivals, generation and boot times recorded by the daemon in "
                          "Redis (VWE_REDIS_URL, VWE_POOL_NAME); --boot and --generation "
                          "override the recorded times")
    parser.add_argument("--duration", type=float, default=3600.0, metavar="S",
                        help="simulated seconds with --rate (default 3600)")
    parser.add_argument("--export-trace", metavar="FILE",
                        help="write the arrival trace (unix times) from Redis to FILE as JSON "
                             "and exit")
    parser.add_argument("--boot", type=_distribution_arg, default=None, metavar="DIST",
                        help="boot time: const:S, lognormal:MEAN,STD, lognormal:FILE (fit) or "
                             "empirical:FILE (default const:20, or fitted from Redis with "
                             "--from-redis)")
    parser.add_argument("--generation", type=_distribution_arg, default=None, metavar="DIST",
                        help="generation time, same forms (default const:1, or fitted from "
                             "Redis with --from-redis)")
    parser.add_argument("--fit", choices=["lognormal", "empirical"], default="lognormal",
                        help="how --from-redis models generation and boot times (default "
                             "lognormal)")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("0-6"),
                        metavar="RANGE", help="pool sizes to try: 0-6 or 0,2,4 (default 0-6)")
    parser.add_argument("--max", type=int, default=None, metavar="M",
                        help="hard cap on containers (default max(VWE_POOL_MAX, largest size))")
    parser.add_argument("--min", type=int, default=None, metavar="N",
                        help="autoscaler floor (default VWE_POOL_MIN)")
    parser.add_argument("--autoscale", action="store_true",
                        help="also simulate the autoscaler (starting from --min)")
    parser.add_argument("--target-p95", type=float, default=None, metavar="SECONDS",
                        help="latency target: recommend the smallest size meeting it")
    parser.add_argument("--quantile", choices=["p50", "p95", "p99"], default="p95",
                        help="which latency quantile --target-p95 applies to (default p95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot latency and cost against pool size")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _fail(message: str, code: int = 2) -> int:
    print(f"vwe-pool simulate: {message}", file=sys.stderr)
    return code


def _load_settings() -> Any:
    from pool.infra.settings import load_settings

    return load_settings()


def _model(samples: Sequence[float], fit: str) -> Distribution:
    return Empirical(tuple(samples)) if fit == "empirical" else LogNormal.fit(samples)


def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)


def main(args: argparse.Namespace) -> int:
    from pool.core.exceptions import ConfigError

    try:
        settings = _load_settings()
    except ConfigError as exc:
        return _fail(str(exc))

    sources = sum(bool(x) for x in (args.trace, args.rate is not None, args.from_redis))
    if args.export_trace:
        if args.trace or args.rate is not None:
            return _fail("--export-trace reads Redis; it takes no --trace or --rate")
    elif sources != 1:
        return _fail("give exactly one of --trace FILE, --rate R or --from-redis")

    generation: Distribution | None = args.generation
    boot: Distribution | None = args.boot
    redis_note = ""
    if args.from_redis or args.export_trace:
        try:
            client = _redis_client(settings.redis_url)
            recorded = read_redis_trace(client, settings.pool_name)
        except Exception as exc:
            return _fail(f"cannot read the trace from Redis at {settings.redis_url}: {exc}", 1)
        if args.export_trace:
            Path(args.export_trace).write_text(json.dumps(recorded.arrivals))
            print(f"wrote {len(recorded.arrivals)} arrivals to {args.export_trace}")
            return 0
        if not recorded.arrivals:
            return _fail(f"no arrivals recorded under "
                         f"{constants.key(constants.ARRIVALS_KEY, settings.pool_name)}", 1)
        arrivals = normalize_trace(recorded.arrivals)
        if generation is None and recorded.generation_s:
            generation = _model(recorded.generation_s, args.fit)
        if boot is None and recorded.boot_s:
            boot = _model(recorded.boot_s, args.fit)
        redis_note = (f"redis: {len(arrivals)} arrivals, {len(recorded.generation_s)} "
                      f"generation times, {len(recorded.boot_s)} boot times, recorded "
                      f"launches {recorded.launch_types}")
        duration: float | None = arrivals[-1] if arrivals else 0.0
    elif args.trace:
        try:
            arrivals = normalize_trace(read_numbers(args.trace))
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read --trace {args.trace}: {exc}")
        duration = None
    else:
        if args.duration <= 0:
            return _fail("--duration must be > 0")
        try:
            arrivals = poisson_arrivals(args.rate, args.duration, args.seed)
        except ValueError as exc:
            return _fail(str(exc))
        duration = args.duration
    if generation is None:
        generation = Constant(1.0)
    if boot is None:
        boot = Constant(20.0)
    if not arrivals:
        return _fail("the trace holds no arrivals")

    sizes: list[int] = args.sizes
    cap = args.max if args.max is not None else max(settings.pool_max, max(sizes))
    floor = args.min if args.min is not None else settings.pool_min
    if cap < max(sizes):
        return _fail(f"--max {cap} is below the largest size {max(sizes)}")
    try:
        base = settings.pool_policy().updated(max=cap, min=min(floor, cap), size=0,
                                              autoscale=False)
    except ValueError as exc:
        return _fail(str(exc))

    common: dict[str, Any] = {
        "horizon_s": duration, "seed": args.seed,
        "maintenance_interval_s": settings.maintenance_interval_s,
    }
    results = [simulate(arrivals, base.updated(size=s), boot, generation, **common)
               for s in sizes]
    auto: SimResult | None = None
    if args.autoscale:
        auto = simulate(arrivals, base.updated(size=base.min), boot, generation,
                        autoscale=True, autoscale_window_s=settings.autoscale_window_s,
                        autoscale_quantile=settings.autoscale_quantile,
                        autoscale_step_down=settings.autoscale_step_down, **common)

    q = args.quantile
    if args.target_p95 is not None:
        target_s = args.target_p95
        target_note = f"target {q} <= {target_s:g} s"
    else:
        best = min((r.quantile(q) for r in results), default=math.nan)
        target_s = best * 1.1
        target_note = f"no --target-p95: within 10% of the best simulated {q} ({best:.2f} s)"
    chosen = recommend(results, target_s, q)
    if chosen is not None:
        line = (f"recommendation: pool size {chosen.size} ({q} {chosen.quantile(q):.2f} s, "
                f"warm-hit {chosen.warm_hit_ratio:.1%}, {chosen.container_hours:.2f} "
                f"container-hours; {target_note})")
    else:
        line = (f"recommendation: none of sizes {sizes[0]}..{sizes[-1]} meets the target "
                f"({target_note}); try larger sizes or a larger --max")
    if auto is not None:
        verdict = "meets" if auto.quantile(q) <= target_s else "misses"
        line += (f"\nautoscaler: mean target {auto.mean_target:.2f}, {q} "
                 f"{auto.quantile(q):.2f} s ({verdict} the target), "
                 f"{auto.container_hours:.2f} container-hours")

    if args.plot:
        try:
            plot(results, auto, args.plot, target_s=args.target_p95, quantile=q,
                 chosen=chosen.size if chosen else None)
        except ImportError:
            return _fail("--plot needs matplotlib (pip install 'vwe-pool[bench]')", 1)

    horizon = duration if duration is not None else arrivals[-1]
    inputs = {"jobs": len(arrivals), "horizon_s": horizon,
              "boot": boot.describe(), "generation": generation.describe(),
              "max": cap, "min": base.min, "max_uses": base.max_uses,
              "max_age_s": base.max_age_s, "idle_ttl_s": base.idle_ttl_s,
              "surplus_idle_s": base.surplus_idle_s,
              "max_concurrent_boots": base.max_concurrent_boots, "seed": args.seed,
              "source": redis_note or (args.trace or f"poisson rate {args.rate:g}/s")}
    if args.json:
        print(json.dumps({
            "inputs": inputs, "sizes": [r.summary() for r in results],
            "autoscale": auto.summary() if auto else None,
            "recommendation": {"size": chosen.size if chosen else None, "quantile": q,
                               "target_s": None if math.isnan(target_s) else target_s,
                               "explicit_target": args.target_p95 is not None},
            "plot": args.plot,
        }, indent=2))
        return 0
    if redis_note:
        print(redis_note)
    print(f"{len(arrivals)} jobs over {horizon:.0f} s; boot {inputs['boot']}, "
          f"generation {inputs['generation']}; max {cap}, max_concurrent_boots "
          f"{base.max_concurrent_boots}")
    print(format_table(results, auto))
    print(line)
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def format_table(results: Sequence[SimResult], auto: SimResult | None = None) -> str:
    header = (f"{'size':>6} | {'p50':>8} | {'p95':>8} | {'p99':>8} | {'warm-hit':>8} | "
              f"{'container-hours':>15}")
    rows = [header, "-" * len(header)]

    def row(label: str, r: SimResult) -> str:
        return (f"{label:>6} | {r.p50:>7.2f}s | {r.p95:>7.2f}s | {r.p99:>7.2f}s | "
                f"{r.warm_hit_ratio:>8.1%} | {r.container_hours:>15.2f}")

    rows += [row(str(r.size), r) for r in results]
    if auto is not None:
        rows.append(row("auto", auto) + f"   (mean target {auto.mean_target:.2f})")
    return "\n".join(rows)


def plot(results: Sequence[SimResult], auto: SimResult | None, path: str | os.PathLike[str],
         *, target_s: float | None = None, quantile: str = "p95",
         chosen: int | None = None) -> None:
    """Latency quantiles and container-hours against pool size; the autoscaler is drawn at
    its time-weighted mean target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.size for r in results]
    fig, (ax_lat, ax_cost) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True)
    styles = {"p50": ("tab:green", "o"), "p95": ("tab:orange", "s"), "p99": ("tab:red", "^")}
    for name, (color, marker) in styles.items():
        ax_lat.plot(sizes, [r.quantile(name) for r in results], marker=marker, color=color,
                    label=name)
        if auto is not None:
            ax_lat.scatter([auto.mean_target], [auto.quantile(name)], marker="*", s=220,
                           color=color, edgecolors="black", zorder=5)
    if auto is not None:
        ax_lat.scatter([], [], marker="*", s=160, color="white", edgecolors="black",
                       label=f"autoscaler (mean target {auto.mean_target:.2f})")
        ax_lat.axvline(auto.mean_target, color="grey", linestyle=":", linewidth=1)
        ax_cost.axvline(auto.mean_target, color="grey", linestyle=":", linewidth=1)
    if target_s is not None:
        ax_lat.axhline(target_s, color="black", linestyle="--", linewidth=1,
                       label=f"target {quantile} {target_s:g} s")
    if chosen is not None:
        for ax in (ax_lat, ax_cost):
            ax.axvspan(chosen - 0.15, chosen + 0.15, color="tab:blue", alpha=0.12,
                       label=f"recommended: {chosen}" if ax is ax_lat else None)
    values = [r.quantile(n) for r in results for n in styles]
    if values and min(values) > 0 and max(values) > 20 * min(values):
        ax_lat.set_yscale("log")  # an overloaded small pool would flatten the rest
    ax_lat.set_ylabel("job latency (s)")
    ax_lat.set_title("vwe-pool simulate: latency and cost against pool size")
    ax_lat.grid(True, alpha=0.3)
    ax_lat.legend(loc="upper right")

    ax_cost.plot(sizes, [r.container_hours for r in results], marker="o", color="tab:blue",
                 label="fixed size")
    ax_cost2 = ax_cost.twinx()
    ax_cost2.plot(sizes, [r.warm_hit_ratio * 100 for r in results], marker=".",
                  color="tab:purple", linestyle="--", label="warm-hit %")
    ax_cost2.set_ylabel("warm-hit (%)")
    ax_cost2.set_ylim(-5, 105)
    if auto is not None:
        ax_cost.scatter([auto.mean_target], [auto.container_hours], marker="*", s=220,
                        color="tab:blue", edgecolors="black", zorder=5, label="autoscaler")
        ax_cost2.scatter([auto.mean_target], [auto.warm_hit_ratio * 100], marker="D", s=40,
                         color="tab:purple", edgecolors="black", zorder=5)
    ax_cost.set_xlabel("pool size (warm target)")
    ax_cost.set_ylabel("cost (container-hours)")
    ax_cost.set_xticks(sizes)
    ax_cost.grid(True, alpha=0.3)
    lines, labels = ax_cost.get_legend_handles_labels()
    lines2, labels2 = ax_cost2.get_legend_handles_labels()
    ax_cost.legend(lines + lines2, labels + labels2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
