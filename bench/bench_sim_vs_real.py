"""The simulator against the real daemon: one arrival trace through both (issue 7).

A fixed-seed Poisson trace with a few bursts (0.4/s for 200 s plus 5 bursts of 5, about 100
requests) is replayed against a real daemon (real Docker engine, real Redis): pool size 1, max
3, `max_uses` 3, workers delaying their readiness by 4 s and making 1024 x 1024 maps (well under
a second). Some requests are served warm, some claim or start a boot (about a quarter), and
containers are recycled at max_uses all along, so the retire -> removal -> replacement path
is compared too. The simulator is then fed what the daemon itself recorded:

- arrivals: the daemon's own arrival record (`{pool}:arrivals`, read with
  `pool.store.traces.read_trace`, the function behind `vwe-pool simulate --export-trace`);
- generation: each job's recorded `generation_s`, replayed job by job in arrival order.
  Resampling the same values (or the lognormal fitted to them, as `vwe-pool simulate
  --from-redis` does) moves the simulated warm-hit ratio by a few points from seed to seed on
  a trace this short, which would blur the check; the fitted run is reported for reference
  (mean of 20 seeds);
- boot: the mean of the daemon's `vwe_boot_duration_seconds{outcome="ready"}` over the trace
  (the difference of `_sum` and `_count` scraped from /metrics before and after it, after the
  pool settled again, so every boot the trace set off is counted whole). The daemon runs at
  log level warning, so its "container warm" lines (boot_s) are not logged; the histogram is
  the same clock (create -> agent ready) the simulator's boot time stands for, but its
  buckets (3, 5, 10 s) are too coarse to fit a spread, hence a constant (the boot times
  recorded under `{pool}:boots` do give the spread, but drawing from them would blur the
  check from seed to seed, as a fitted generation time does);
- policy: the daemon's size, max, max_uses, max_concurrent_boots (default 2) and
  maintenance interval (1 s).

Tolerances: warm-hit ratio within 5 percentage points, p50 latency within 20 %. Real latency
is the client's (POST /v1/worlds -> finished job by long-poll), so it includes the HTTP, queue
and handoff overhead (15-20 ms) that the simulator (finish - arrival) leaves out; the daemon's
own queued_at -> finished_at is shown too. Writes `## simulator vs real` to bench/RESULTS.md;
exits 1 when a tolerance is missed. About 4 minutes.

    .venv/bin/python bench/bench_sim_vs_real.py [--show-jobs] [--save run.json]
    .venv/bin/python bench/bench_sim_vs_real.py --load run.json   # re-simulate, no daemon
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from daemonproc import DaemonProcess  # noqa: E402

from bench import scratch  # noqa: E402
from bench.results import write_section  # noqa: E402
from pool.core.pool_policy import PoolPolicy  # noqa: E402
from pool.sim.engine import simulate  # noqa: E402
from pool.sim.workload import (  # noqa: E402
    Constant,
    LogNormal,
    normalize_trace,
    poisson_arrivals,
)
from pool.store.traces import read_trace  # noqa: E402

WARM_HIT_TOLERANCE_PP = 5.0
P50_TOLERANCE = 0.20
COMMAND = ".venv/bin/python bench/bench_sim_vs_real.py"


# ---------------------------------------------------------------------------------------------
# The trace
# ---------------------------------------------------------------------------------------------
def make_trace(rate: float, duration_s: float, bursts: int, burst_size: int,
               seed: int) -> list[float]:
    """Poisson arrivals plus `bursts` clusters of `burst_size` requests within about a second,
    at random points of the run; offsets in seconds, sorted."""
    base = poisson_arrivals(rate, duration_s, seed=seed)
    rng = random.Random(f"{seed}:bursts")
    extra: list[float] = []
    for _ in range(bursts):
        at = rng.uniform(0.1 * duration_s, 0.9 * duration_s)
        extra += [at + rng.uniform(0.0, 1.0) for _ in range(burst_size)]
    return sorted(base + extra)


# ---------------------------------------------------------------------------------------------
# The real run
# ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    offset: float  # planned
    latency: float = math.nan  # client: POST -> finished job
    job: dict[str, Any] | None = None
    error: str = ""


def replay(url: str, trace: list[float], start_in: float = 1.0) -> list[Outcome]:
    """A thread per arrival: sleep until its offset, POST, long-poll to the end."""
    outcomes = [Outcome(t) for t in trace]
    clients = [httpx.Client(base_url=url, timeout=70) for _ in trace]  # set-up is not timed
    tag = uuid.uuid4().hex[:4]
    t0 = time.perf_counter() + start_in

    def one(i: int) -> None:
        out, client = outcomes[i], clients[i]
        try:
            delay = t0 + out.offset - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            r = client.post("/v1/worlds", json={"seed": f"q{tag}{i:04d}"})
            r.raise_for_status()
            job = r.json()
            while job["status"] not in ("succeeded", "failed"):
                r = client.get(f"/v1/jobs/{job['job_id']}", params={"wait": 60})
                r.raise_for_status()
                job = r.json()
            out.latency = time.perf_counter() - started
            out.job = job
            if job["status"] != "succeeded":
                out.error = f"job failed: {job.get('error')}"
        except Exception as exc:  # reported, not raised: one thread must not hide the rest
            out.error = repr(exc)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(trace))]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=max(0.0, t0 + trace[-1] + 180 - time.perf_counter()))
    finally:
        for c in clients:
            c.close()
    return outcomes


def scrape(url: str) -> dict[str, float]:
    """The daemon's counters this bench reads, summed over templates: boot time (`boot_sum`,
    `boot_count` of outcome "ready"; `boot_not_ready` for the rest), `recycled:REASON` and
    `failures:PHASE`."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, float] = {}

    def add(key: str, value: float) -> None:
        out[key] = out.get(key, 0.0) + value

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if family.name == "vwe_boot_duration_seconds":
                ready = s.labels.get("outcome") == "ready"
                if s.name.endswith("_sum") and ready:
                    add("boot_sum", s.value)
                elif s.name.endswith("_count"):
                    add("boot_count" if ready else "boot_not_ready", s.value)
            elif family.name == "vwe_recycled" and s.name.endswith("_total"):
                add(f"recycled:{s.labels.get('reason')}", s.value)
            elif family.name == "vwe_container_failures" and s.name.endswith("_total"):
                add(f"failures:{s.labels.get('phase')}", s.value)
    return out


def wait_settled(url: str, size: int, timeout: float = 60) -> None:
    """Steady state, as the simulator starts: `size` warm, nothing booting or retiring."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [c["state"] for c in httpx.get(f"{url}/v1/pool", timeout=5).json()["containers"]]
        if states.count("warm") == size and len(states) == size:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the pool did not settle at {size} warm containers")


# ---------------------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replayed:
    """Hands out recorded values in order: with `simulate`, which draws one generation time per
    job in arrival order, each simulated job gets its real counterpart's generation time."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_it", iter(self.values))

    def sample(self, rng: random.Random) -> float:
        return float(next(self._it))  # type: ignore[attr-defined]

    def mean(self) -> float:
        return statistics.fmean(self.values)

    def describe(self) -> str:
        return f"replayed:{len(self.values)} values, mean {self.mean():.3g}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def run_real(args: argparse.Namespace) -> dict[str, Any]:
    """Replay the trace against a real daemon; what the comparison needs, JSON-ready."""
    trace = make_trace(args.rate, args.duration, args.bursts, args.burst_size, args.seed)
    redis_url = scratch.redis_url(3)
    r = redis.Redis.from_url(redis_url, socket_timeout=10)
    r.flushdb()
    pool_name = f"sv-{uuid.uuid4().hex[:6]}"
    data = scratch.data_dir("vwesv-")
    env = {"VWE_REDIS_URL": redis_url, "VWE_DATA_DIR": str(data), "VWE_POOL_NAME": pool_name,
           "VWE_POOL_SIZE": str(args.size), "VWE_POOL_MAX": str(args.max),
           "VWE_WORKER_READY_DELAY_S": str(args.delay),
           "VWE_MAP_RESOLUTION": str(args.resolution),
           "VWE_MAINTENANCE_INTERVAL_S": str(args.maintenance), "VWE_BOOT_TIMEOUT_S": "60",
           "VWE_MAX_USES": str(args.max_uses), "VWE_SURPLUS_IDLE_S": str(args.surplus_idle),
           "VWE_LOG_LEVEL": "warning", "VWE_LOG_FORMAT": "json"}
    daemon = DaemonProcess(env, data / "daemon.log")
    print(f"trace: {len(trace)} arrivals over {trace[-1]:.0f} s (Poisson {args.rate:g}/s, "
          f"seed {args.seed}, {args.bursts} bursts of {args.burst_size}); pool size "
          f"{args.size}, max {args.max}, ready delay {args.delay:g} s, resolution "
          f"{args.resolution}", flush=True)
    try:
        daemon.start(wait_warm=args.size, timeout=args.delay * 3 + 60)
        wait_settled(daemon.url, args.size)
        before = scrape(daemon.url)
        started = time.monotonic()
        outcomes = replay(daemon.url, trace)
        real_wall = time.monotonic() - started
        # Boots the trace set off are counted whole; the surplus idles out first.
        wait_settled(daemon.url, args.size, timeout=args.surplus_idle + 60)
        after = scrape(daemon.url)
        recorded = read_trace(r, pool_name)
        daemon.stop()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()  # its drain removes every container it made
        r.flushdb()
        shutil.rmtree(data, ignore_errors=True)

    failed = [o for o in outcomes if o.error or o.job is None]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed, e.g. {failed[0].error}")
    jobs = sorted(outcomes, key=lambda o: float(o.job["queued_at"]))  # type: ignore[index]
    arrivals = normalize_trace(recorded.arrivals)
    if len(arrivals) != len(jobs):
        raise RuntimeError(f"redis holds {len(arrivals)} arrivals for {len(jobs)} jobs")
    delta = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}
    boots = delta.get("boot_count", 0.0)
    return {
        "args": vars(args), "planned": trace, "arrivals": arrivals, "wall_s": real_wall,
        "boots": boots,
        "boot_mean": (delta["boot_sum"] / boots if boots
                      else after["boot_sum"] / max(after.get("boot_count", 0.0), 1.0)),
        "counters": delta,
        "latency": [o.latency for o in jobs],
        "launch": [o.job["launch_type"] for o in jobs],  # type: ignore[index]
        "daemon_latency": [float(o.job["finished_at"]) - float(o.job["queued_at"])  # type: ignore
                           for o in jobs],
        "generation": [float(o.job["generation_s"]) for o in jobs],  # type: ignore[index]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.4, help="Poisson arrivals per second")
    parser.add_argument("--duration", type=float, default=200.0, help="trace length, seconds")
    parser.add_argument("--bursts", type=int, default=5, help="bursts added to the trace")
    parser.add_argument("--burst-size", type=int, default=5, help="requests per burst")
    parser.add_argument("--seed", type=int, default=7, help="trace seed")
    parser.add_argument("--size", type=int, default=1, help="VWE_POOL_SIZE")
    parser.add_argument("--max", type=int, default=3, help="VWE_POOL_MAX")
    parser.add_argument("--delay", type=float, default=4.0, help="VWE_WORKER_READY_DELAY_S")
    parser.add_argument("--resolution", type=int, default=1024, help="VWE_MAP_RESOLUTION")
    parser.add_argument("--max-uses", type=int, default=3, help="VWE_MAX_USES")
    parser.add_argument("--surplus-idle", type=float, default=60.0, help="VWE_SURPLUS_IDLE_S")
    parser.add_argument("--maintenance", type=float, default=1.0,
                        help="VWE_MAINTENANCE_INTERVAL_S")
    parser.add_argument("--save", metavar="FILE.json",
                        help="also write the real run's records (to re-simulate with --load)")
    parser.add_argument("--load", metavar="FILE.json",
                        help="no daemon: compare against the records of an earlier --save")
    parser.add_argument("--show-jobs", action="store_true",
                        help="print every job: real and simulated launch and latency")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    if args.load:
        rec = json.loads(Path(args.load).read_text())
        args = argparse.Namespace(**{**vars(args), **rec["args"], "load": args.load,
                                     "show_jobs": args.show_jobs, "no_write": True})
    else:
        try:
            rec = run_real(args)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        if args.save:
            Path(args.save).write_text(json.dumps(rec))

    arrivals, trace = rec["arrivals"], rec["planned"]
    real_lat, real_launch = rec["latency"], rec["launch"]
    real_daemon_lat, gen_times = rec["daemon_latency"], tuple(rec["generation"])
    boots, boot_mean, real_wall = rec["boots"], rec["boot_mean"], rec["wall_s"]
    jobs = real_lat
    counters: dict[str, float] = rec.get("counters", {})
    real_recycled = {k.split(":", 1)[1]: int(v) for k, v in sorted(counters.items())
                     if k.startswith("recycled:")}
    failures = {k: int(v) for k, v in sorted(counters.items())
                if k.startswith("failures:") or k == "boot_not_ready"}
    jitter = max(abs((a - arrivals[0]) - (t - trace[0])) for a, t in zip(arrivals, trace,
                                                                          strict=True))
    # The daemon's policy: these settings, its defaults otherwise.
    policy = PoolPolicy(size=args.size, max=args.max, max_uses=args.max_uses,
                        surplus_idle_s=args.surplus_idle)
    common: dict[str, Any] = {"maintenance_interval_s": args.maintenance}
    sim = simulate(arrivals, policy, Constant(boot_mean), Replayed(gen_times), **common)
    fitted = [simulate(arrivals, policy, Constant(boot_mean), LogNormal.fit(gen_times),
                       seed=s, **common) for s in range(20)]

    real_whr = real_launch.count("warm") / len(real_launch)
    real_p50, real_p95 = pct(real_lat, 50), pct(real_lat, 95)
    whr_pp = abs(sim.warm_hit_ratio - real_whr) * 100
    p50_rel = abs(sim.p50 - real_p50) / real_p50
    ok_whr, ok_p50 = whr_pp <= WARM_HIT_TOLERANCE_PP, p50_rel <= P50_TOLERANCE
    same_launch = sum(a == b for a, b in zip(real_launch, sim.launch_types, strict=True))
    overhead = [lat - g for lat, g, t in zip(real_lat, gen_times, real_launch, strict=True)
                if t == "warm"]

    if args.show_jobs:
        print(f"{'arrival':>8} {'real':>5} {'sim':>5} {'real s':>7} {'sim s':>7}")
        for a, rl, sl, rt, st in zip(arrivals, real_launch, sim.launch_types, real_lat,
                                     sim.latencies, strict=True):
            mark = "" if rl == sl else "  <-"
            print(f"{a:8.2f} {rl:>5} {sl:>5} {rt:7.3f} {st:7.3f}{mark}")

    def row(name: str, whr: float, p50: float, p95: float, n: int) -> str:
        return f"| {name} | {whr * 100:.1f} % | {p50:.3f} s | {p95:.3f} s | {n} |"

    fit_whr = statistics.fmean(f.warm_hit_ratio for f in fitted)
    fit_p50 = statistics.fmean(f.p50 for f in fitted)
    fit_p95 = statistics.fmean(f.p95 for f in fitted)
    verdict = {True: "pass", False: "**FAIL**"}
    body = "\n".join([
        f"`{COMMAND}`: one trace through the real daemon and through `pool.sim.engine` "
        f"(issue 7). Trace: Poisson {args.rate:g}/s for {args.duration:.0f} s plus "
        f"{args.bursts} bursts of {args.burst_size} (seed {args.seed}), {len(jobs)} requests "
        f"in {real_wall:.0f} s. Daemon: `VWE_POOL_SIZE={args.size}`, `VWE_POOL_MAX={args.max}`,"
        f" `VWE_WORKER_READY_DELAY_S={args.delay:g}`, `VWE_MAP_RESOLUTION={args.resolution}`, "
        f"`VWE_MAINTENANCE_INTERVAL_S={args.maintenance:g}`, max_concurrent_boots "
        f"{policy.max_concurrent_boots}, max_uses {policy.max_uses}, surplus_idle_s "
        f"{policy.surplus_idle_s:g}.",
        "",
        f"Simulator inputs, all from the daemon's own records: the {len(arrivals)} arrivals it "
        f"recorded in Redis (`read_trace`; max drift from the planned offsets "
        f"{jitter * 1e3:.0f} ms), boot const:{boot_mean:.3f} s (mean of "
        f"`vwe_boot_duration_seconds{{outcome=\"ready\"}}` over the {boots:.0f} boots during the"
        f" trace), each job's recorded `generation_s` replayed in arrival order (mean "
        f"{statistics.fmean(gen_times):.3f} s).",
        "",
        "| | warm-hit | p50 | p95 | jobs |",
        "|---|---:|---:|---:|---:|",
        row("real (client: POST -> finished)", real_whr, real_p50, real_p95, len(jobs)),
        row("real (daemon: queued_at -> finished_at)", real_whr, pct(real_daemon_lat, 50),
            pct(real_daemon_lat, 95), len(jobs)),
        row("simulated", sim.warm_hit_ratio, sim.p50, sim.p95, sim.jobs),
        row("simulated, generation lognormal fit (mean of 20 seeds)", fit_whr, fit_p50,
            fit_p95, len(arrivals)),
        "",
        f"- warm-hit difference: **{whr_pp:.1f} pp** (tolerance {WARM_HIT_TOLERANCE_PP:g} pp):"
        f" {verdict[ok_whr]}",
        f"- p50 difference: **{p50_rel * 100:.1f} %** (tolerance {P50_TOLERANCE * 100:g} %): "
        f"{verdict[ok_p50]}",
        f"- same launch type job by job: {same_launch}/{len(jobs)}; boots real "
        f"{boots:.0f}, simulated {sim.boots}; recycled real {real_recycled or '-'}, simulated "
        f"{sim.recycled or '-'}" + (f"; daemon failures {failures}" if failures else ""),
        "- warm requests' client latency over the agent's generation time "
        + (f"p50 {pct(overhead, 50) * 1e3:.1f} ms ({len(overhead)} warm)" if overhead
           else "n/a (no warm request)"),
    ])
    print(body)
    if not args.no_write:
        write_section("simulator vs real", body)
    return 0 if ok_whr and ok_p50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
