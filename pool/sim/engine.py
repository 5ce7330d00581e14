"""The engine of `vwe-pool simulate`: a discrete-event what-if of latency and cost.

The engine replays an arrival trace against a virtual pool on a virtual clock. The pool is
the container state machine `pool.core.machine.PoolMachine`, which applies the daemon's own
pure decisions (`pool.core.policy`); the engine only plays the part of Docker and the
dispatcher:

- a job is taken from the FIFO queue only while the machine has capacity; it then leases a
  warm container (launch `warm`), else a booting one promised to it or a new boot (launch
  `cold`, the job waits for that boot);
- a boot takes a sample of the boot-time distribution; one not done by the machine's
  `boot_deadline` (VWE_BOOT_TIMEOUT_S after it began) fails then, as in the daemon (the machine
  backs boots off, a job waiting on it leases again);
- after a job the container goes back to the machine (warm again or retired); a removal
  takes `RETIRE_S`, then the machine replans;
- maintenance ticks every `maintenance_interval_s`, the autoscaler every
  `constants.AUTOSCALE_INTERVAL_S`.

What is not modelled: generation failures, health probes, several daemons, the
sub-millisecond handoff. The pool starts with its target already warm (steady state), so the
first jobs are not charged for the daemon's own start-up. Distributions live in
`pool.sim.workload`, the command line in `pool.sim.cli`, the plots in `pool.sim.plot`.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pool.core import constants
from pool.core.autoscale import autoscale_target, boot_estimate
from pool.core.machine import Boot, Effect, PoolMachine
from pool.core.pool_policy import PoolPolicy
from pool.core.states import LaunchType
from pool.infra.settings import Settings
from pool.sim.workload import Distribution

# Seconds a container spends `retiring` (docker rm of a small container).
RETIRE_S = 0.1
# Virtual seconds past the horizon after which a run stops with jobs still unfinished (a pool
# that can never boot, for one); their latency is NaN and `unfinished` counts them.
STALL_LIMIT_S = 86_400.0
# The daemon's defaults (VWE_BOOT_TIMEOUT_S: a longer boot fails; VWE_BOOT_BACKOFF_S and
# VWE_BOOT_BACKOFF_MAX_S), taken from the settings so they are defined once.
BOOT_TIMEOUT_S = float(Settings.model_fields["boot_timeout_s"].default)
BOOT_BACKOFF_S = float(Settings.model_fields["boot_backoff_s"].default)
BOOT_BACKOFF_MAX_S = float(Settings.model_fields["boot_backoff_max_s"].default)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
def _percentiles(values: Sequence[float], *qs: int) -> list[float]:
    """Percentiles by linear interpolation between closest ranks (numpy's default:
    `statistics.quantiles`'s inclusive method); NaN for no values."""
    if not values:
        return [math.nan for _ in qs]
    if len(values) == 1:  # statistics.quantiles needs two points before Python 3.13
        return [float(values[0]) for _ in qs]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[q - 1] for q in qs]


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
    failed_boots: int = 0  # boots that took longer than the boot timeout
    unfinished: int = 0  # jobs still waiting when the run stalled (STALL_LIMIT_S)
    p50: float = math.nan
    p95: float = math.nan
    p99: float = math.nan
    warm_hit_ratio: float = math.nan

    def __post_init__(self) -> None:
        finished = [x for x in self.latencies if not math.isnan(x)]
        self.unfinished = len(self.latencies) - len(finished)
        self.p50, self.p95, self.p99 = _percentiles(finished, 50, 95, 99)
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
_BOOT_DONE, _BOOT_TIMEOUT, _GEN_DONE, _RETIRE_DONE, _MAINTAIN, _AUTOSCALE = range(6)


class _Sim:
    """One run: the pool's `PoolMachine` on a virtual clock, with this class in the roles of
    Docker (boots and removals take time) and of the dispatcher (a FIFO queue of jobs)."""

    def __init__(self, arrivals: list[float], policy: PoolPolicy, boot: Distribution,
                 generation: Distribution, *, autoscale: bool, horizon: float, seed: int,
                 maintenance_interval_s: float, autoscale_window_s: float,
                 autoscale_quantile: float, autoscale_step_down: int,
                 boot_timeout_s: float, boot_backoff_s: float,
                 boot_backoff_max_s: float) -> None:
        self.arrivals = arrivals
        self.autoscale = autoscale
        self.horizon = horizon
        self.maintenance_interval_s = maintenance_interval_s
        self.window_s = autoscale_window_s
        self.quantile = autoscale_quantile
        self.step_down = autoscale_step_down
        self._next_id = 0
        self.machine = PoolMachine(policy.updated(autoscale=True) if autoscale else policy,
                                   new_id=self._new_id, boot_timeout_s=boot_timeout_s,
                                   boot_backoff_s=boot_backoff_s,
                                   boot_backoff_max_s=boot_backoff_max_s)
        # Separate streams: each job's generation time is the same whatever the pool size
        # (common random numbers), boots draw from their own stream in boot order.
        gen_rng = random.Random(f"{seed}:generation")
        self.gen_times = [generation.sample(gen_rng) for _ in arrivals]
        self.boot = boot
        self.boot_rng = random.Random(f"{seed}:boot")

        self.now = 0.0
        self.born: dict[str, float] = {}
        self.boot_started: dict[str, float] = {}
        self.waiter: dict[str, int] = {}  # booting container -> job promised to it
        self.running: dict[str, int] = {}  # busy container -> its job
        self.events: list[tuple[float, int, int, str]] = []
        self._seq = 0
        self.queue: deque[int] = deque()
        self.boot_times: deque[float] = deque(maxlen=constants.BOOT_HISTORY)

        n = len(arrivals)
        self.started = [math.nan] * n
        self.finished = [math.nan] * n
        self.launch = [""] * n
        self.container_seconds = 0.0
        self.boots = 0
        self.failed_boots = 0
        self.recycled: dict[str, int] = {}
        self.max_queue = 0
        self._target_area = 0.0
        self._target_since = 0.0
        self._target_value = self.machine.target()

    def _new_id(self) -> str:
        self._next_id += 1
        return f"c{self._next_id}"

    def _push(self, at: float, kind: int, cid: str = "") -> None:
        self._seq += 1
        heapq.heappush(self.events, (at, kind, self._seq, cid))

    # ---- Docker's part: carry out the machine's effects ----
    def _apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            cid = effect.id
            if isinstance(effect, Boot):
                self.boots += 1
                self.born[cid] = self.boot_started[cid] = self.now
                ready_at = self.now + self.boot.sample(self.boot_rng)
                deadline = self.machine.boot_deadline(cid)
                if ready_at > deadline:
                    self._push(deadline, _BOOT_TIMEOUT, cid)
                else:
                    self._push(ready_at, _BOOT_DONE, cid)
            else:
                reason = effect.reason.value
                self.recycled[reason] = self.recycled.get(reason, 0) + 1
                self._push(self.now + RETIRE_S, _RETIRE_DONE, cid)

    # ---- the dispatcher's part ----
    def dispatch(self) -> None:
        m = self.machine
        while self.queue and m.has_capacity(self.now):
            job = self.queue.popleft()
            if math.isnan(self.started[job]):
                self.started[job] = self.now
            step = m.lease(self.now)
            if step is None:  # has_capacity promised one
                raise AssertionError("the machine had capacity but leased nothing")
            self.launch[job] = step.launch_type.value
            if step.launch_type is LaunchType.WARM:
                # Replenish right after the handoff, as the dispatcher does.
                self._apply(m.reconcile(self.now))
                self._run(step.id, job)
            else:
                self._apply(step.effects)
                self.waiter[step.id] = job

    def _run(self, cid: str, job: int) -> None:
        self.running[cid] = job
        self._push(self.now + self.gen_times[job], _GEN_DONE, cid)

    # ---- events ----
    def boot_done(self, cid: str) -> None:
        self.boot_times.append(self.now - self.boot_started.pop(cid))
        self._apply(self.machine.boot_ready(cid, self.now))
        job = self.waiter.pop(cid, None)
        if job is not None:
            self._run(cid, job)

    def boot_timed_out(self, cid: str) -> None:
        """As the daemon's `WarmPool._boot_failed`: back off, remove the container; a job
        promised to it leases again, first in line."""
        self.boot_started.pop(cid)
        self.failed_boots += 1
        self.machine.boot_failed(cid, self.now)
        self._push(self.now + RETIRE_S, _RETIRE_DONE, cid)
        job = self.waiter.pop(cid, None)
        if job is not None:
            self.queue.appendleft(job)

    def generation_done(self, cid: str) -> None:
        job = self.running.pop(cid)
        self.finished[job] = self.now
        self._apply(self.machine.release(cid, self.now, healthy=True))

    def retire_done(self, cid: str) -> None:
        self.container_seconds += self._alive_in_horizon(self.born.pop(cid), self.now)
        self._apply(self.machine.removed(cid, self.now))

    def autoscale_tick(self) -> None:
        m = self.machine
        lo = bisect.bisect_left(self.arrivals, self.now - self.window_s)
        hi = bisect.bisect_right(self.arrivals, self.now)
        choice = autoscale_target(
            self.arrivals[lo:hi], self.now, window_s=self.window_s,
            boot_s=boot_estimate(self.boot_times, m.boot_timeout_s),
            quantile=self.quantile, waiting=len(self.queue), policy=m.policy,
            current=m.target(), step_down=self.step_down)
        m.set_autoscaled(choice)
        self._apply(m.tick(self.now))

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
        m = self.machine
        # Steady state: the target is warm when the trace starts.
        for _ in range(min(m.target(), m.cap())):
            cid = self._new_id()
            m.adopt(cid, created_at=0.0, now=0.0, uses=0)
            self.born[cid] = 0.0
        self._push(self.maintenance_interval_s, _MAINTAIN)
        if self.autoscale:
            self._push(constants.AUTOSCALE_INTERVAL_S, _AUTOSCALE)
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
            if at > self.horizon and ((pending == 0 and i >= n)
                                      or at > self.horizon + STALL_LIMIT_S):
                break
            self._advance(at)
            if kind == _BOOT_DONE:
                self.boot_done(cid)
            elif kind == _BOOT_TIMEOUT:
                self.boot_timed_out(cid)
            elif kind == _GEN_DONE:
                self.generation_done(cid)
                pending -= 1
                last_finish = at
            elif kind == _RETIRE_DONE:
                self.retire_done(cid)
            elif kind == _MAINTAIN:
                self._apply(m.tick(self.now))
                if at + self.maintenance_interval_s <= self.horizon or pending:
                    self._push(at + self.maintenance_interval_s, _MAINTAIN)
            else:
                self.autoscale_tick()
                if at + constants.AUTOSCALE_INTERVAL_S <= self.horizon or pending:
                    self._push(at + constants.AUTOSCALE_INTERVAL_S, _AUTOSCALE)
            self._target_value = m.target()
            if self.queue:
                self.dispatch()
        end = max(self.horizon, last_finish)
        self._advance(end)
        for born in self.born.values():
            self.container_seconds += self._alive_in_horizon(born, end)
        policy = m.policy
        return SimResult(
            size=policy.size, max=policy.max, autoscale=self.autoscale,
            latencies=[f - a for f, a in zip(self.finished, arrivals, strict=True)],
            launch_types=self.launch,
            queue_waits=[s - a for s, a in zip(self.started, arrivals, strict=True)],
            container_seconds=self.container_seconds,
            mean_target=(self._target_area / self.horizon if self.horizon > 0
                         else float(self._target_value)),
            duration_s=end, boots=self.boots, recycled=dict(sorted(self.recycled.items())),
            max_queue=self.max_queue, failed_boots=self.failed_boots,
        )


def simulate(
    arrivals: Sequence[float], policy: PoolPolicy, boot: Distribution, generation: Distribution,
    *, autoscale: bool = False, horizon_s: float | None = None, seed: int = 0,
    maintenance_interval_s: float = 2.0, autoscale_window_s: float = 900,
    autoscale_quantile: float = 0.95, autoscale_step_down: int = 1,
    boot_timeout_s: float = BOOT_TIMEOUT_S, boot_backoff_s: float = BOOT_BACKOFF_S,
    boot_backoff_max_s: float = BOOT_BACKOFF_MAX_S,
) -> SimResult:
    """Replay `arrivals` (seconds from 0) against a pool run by `policy`.

    The pool starts with min(size, max) warm containers. Arrivals after `horizon_s` are
    dropped; the horizon defaults to the last arrival. The run goes on until the horizon and
    every job has finished (`duration_s`); container-seconds (alive: booting, warm, busy or
    retiring) and the mean target are taken over [0, horizon], the period being costed.
    With `autoscale`, the autoscaler sets the target every 5 s (`policy.size` until its first
    decision), bounded by `policy.min` and `policy.max`. A boot sampled longer than
    `boot_timeout_s` fails then, and boots back off (`boot_backoff_s`, doubling up to
    `boot_backoff_max_s`) as in the daemon. Raises ValueError for negative arrival times or a
    non-positive maintenance interval or boot timeout.
    """
    times = sorted(float(t) for t in arrivals)
    if times and times[0] < 0:
        raise ValueError("arrival times must be offsets >= 0 from the start of the run")
    if maintenance_interval_s <= 0:
        raise ValueError("maintenance_interval_s must be > 0")
    if boot_timeout_s <= 0:
        raise ValueError("boot_timeout_s must be > 0")
    horizon = float(horizon_s) if horizon_s is not None else (times[-1] if times else 0.0)
    if horizon_s is not None:
        times = times[:bisect.bisect_right(times, horizon)]
    sim = _Sim(times, policy, boot, generation, autoscale=autoscale, horizon=horizon, seed=seed,
               maintenance_interval_s=maintenance_interval_s,
               autoscale_window_s=autoscale_window_s, autoscale_quantile=autoscale_quantile,
               autoscale_step_down=autoscale_step_down, boot_timeout_s=boot_timeout_s,
               boot_backoff_s=boot_backoff_s, boot_backoff_max_s=boot_backoff_max_s)
    return sim.run()


def recommend(results: Sequence[SimResult], target_s: float, quantile: str = "p95"
              ) -> SimResult | None:
    """The smallest simulated size whose latency quantile meets `target_s`."""
    for r in sorted(results, key=lambda r: r.size):
        value = r.quantile(quantile)
        if not math.isnan(value) and value <= target_s:
            return r
    return None


