"""Scale-out cost: three worker daemons on three engines against one, in one run (issue 16).

One deployment (tests/multihost.py): two API processes, Redis primary + two replicas + three
Sentinels with VWE_REDIS_MIN_REPLICAS=1, a shared worlds folder, tiny worlds (16 x 16, so
generation is negligible). The same warm capacity, three containers, runs on one host (one
worker daemon, pool size 3) or spread over three (three daemons on three engines, size 1
each): the question is what spreading costs, not what more containers buy. Phases alternate
(one daemon, then three, then one again...) for `--rounds` rounds, and each figure is the
median over the rounds of one configuration, so a drift of the shared machine during the run
weighs on both sides. Containers are not recycled by use during the run (VWE_MAX_USES), so a
size-1 pool is never caught cold by a recycle. Each phase measures:

- orchestration CPU per finished job: utime+stime of the API processes, the worker daemons
  and the five Redis processes during a fixed-rate load, divided by the jobs it finished
  (the engines' own CPU is not orchestration and is left out);
- warm handoff p50/p95: the daemons' own `acquire_ms` (job taken -> agent accepted);
- enqueue rate: 202s per second from closed-loop clients on both API processes.

During the enqueue burst the "hosts" (engines, their containers, the worker daemons) are held
on one CPU and the shared parts (API processes, Redis, Sentinels, the load generator) on the
other (`--no-pin`: not): on real hosts the generation work has cores of its own, while on this
2-core machine it takes CPU from the intake being measured (one unpinned run: three daemons'
enqueue rate 0.75 of one's, with CPU per job and jobs taken during the burst equal). The CPU
and handoff figures are measured unpinned.

Then the Redis primary is killed: failover time = kill -> first submit accepted again.
Targets: cost and handoff p50 and enqueue rate with 3 daemons within 10 % of one daemon's.

    .venv/bin/python bench/bench_multihost.py   (needs root: dockerd)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from multihost import Cluster, Load, children, first_accept_after, settle
from wrk import cpu_seconds

from bench.results import write_section

TOKEN = "bench-multihost"


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of every process in `pids` (and so what they start later) onto `cpus`."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task.name), cpus)


def place(c: Cluster, apart: bool) -> None:
    """`apart`: hosts (engines with their containers, worker daemons) on the last CPU, the
    shared parts (API processes, Redis, this process) on the others; else all on every CPU."""
    every = set(range(os.cpu_count() or 1))
    last = max(every)
    hosts, shared = ({last}, every - {last}) if apart else (every, every)
    groups = c.pids()
    engines = [e.proc.pid for e in c.engines if e.proc is not None and e.proc.poll() is None]
    pin([p for pid in [*engines, *groups["worker"]] for p in tree(pid)], hosts)
    pin([*groups["api"], *groups["redis"], os.getpid()], shared)


def orchestration_cpu(c: Cluster) -> dict[str, float]:
    """CPU seconds so far of the API processes, the worker daemons and Redis, by group."""
    return {group: sum(cpu_seconds(pid) for pid in pids) for group, pids in c.pids().items()}


def enqueue_rate(urls: list[str], seconds: float, clients: int, prefix: str) -> float:
    accepted = [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        n = 0
        with httpx.Client() as client:
            while time.monotonic() < stop:
                n += 1
                r = client.post(f"{urls[(i + n) % len(urls)]}/v1/worlds",
                                json={"seed": f"{prefix}{i:02d}{n:05d}"[-10:]}, timeout=10)
                accepted[i] += r.status_code == 202
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(accepted) / seconds


def wait_drained(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/v1/pool", timeout=10).json()["queue_depth"] == 0:
            return
        time.sleep(0.5)
    raise TimeoutError("the queue did not drain")


def phase(c: Cluster, name: str, rate: float, seconds: float, burst_s: float,
          clients: int, pin: bool) -> dict[str, Any]:
    urls = [a.url for a in c.apis]
    handed_before = {log: len(ms) for log, ms in c.handoff_ms().items()}
    cpu0 = orchestration_cpu(c)
    load = Load(urls, rate, f"c{name}").start()
    time.sleep(seconds)
    load.stop()
    statuses = settle(urls[0], list(load.accepted))
    cpu1 = orchestration_cpu(c)
    by_group = {g: cpu1[g] - cpu0.get(g, 0.0) for g in cpu1}
    cpu = sum(by_group.values())
    done = sum(1 for s in statuses.values() if s == "succeeded")
    handoffs = [t for log, ms in c.handoff_ms().items()
                for t in ms[handed_before.get(log, 0):]]
    if pin:
        place(c, apart=True)
    rate_202 = enqueue_rate(urls, burst_s, clients, f"e{name}")
    taken = rate_202 * burst_s - httpx.get(f"{urls[0]}/v1/pool", timeout=10).json()["queue_depth"]
    if pin:
        place(c, apart=False)
    wait_drained(urls[0])
    q = statistics.quantiles(handoffs, n=20) if len(handoffs) > 1 else [0.0] * 19
    return {"jobs": done, "cpu_ms_per_job": 1000 * cpu / max(done, 1),
            **{f"cpu_ms_per_job_{g}": 1000 * v / max(done, 1) for g, v in by_group.items()},
            "handoff_p50_ms": statistics.median(handoffs) if handoffs else float("nan"),
            "handoff_p95_ms": q[18], "enqueue_per_s": rate_202, "taken_in_burst": taken}


def spread(c: Cluster, per_daemon: int, daemons: int, timeout: float = 120) -> None:
    """Pool size and max `per_daemon` (PATCH /v1/pool: every daemon's), `daemons` worker
    daemons running; returns once the pool holds that many warm containers and no more."""
    r = httpx.patch(f"{c.apis[0].url}/v1/pool", json={"size": per_daemon, "max": per_daemon},
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    r.raise_for_status()
    for i in range(daemons):
        if c.workers[i] is None:
            c.start_worker(i)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = httpx.get(f"{c.apis[0].url}/v1/pool", timeout=10).json()["containers"]
        warm = [x for x in held if x["state"] == "warm"]
        if len(warm) == len(held) == per_daemon * daemons:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the pool did not settle at {per_daemon} x {daemons} warm containers")


def median_phase(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10.0, help="jobs/s of the cost phase")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--burst", type=float, default=4.0, help="seconds of enqueue burst")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2,
                        help="phases of one and of three daemons, alternating")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="measure the enqueue rate with hosts and shared parts mixed")
    args = parser.parse_args()
    pinned = args.pin and len(os.sched_getaffinity(0)) >= 2
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="vwe-mhb-", dir="/tmp"))
    c = Cluster(root, hosts=3, apis=2, replicas=2, min_replicas=1, resolution=16,
                extra_env={"VWE_QUEUE_MAX": "100000", "VWE_HEALTH_INTERVAL_S": "10",
                           "VWE_LOG_LEVEL": "info", "VWE_API_TOKEN": TOKEN,
                           "VWE_MAX_USES": "1000000"})
    runs: dict[int, list[dict[str, Any]]] = {1: [], 3: []}
    try:
        c.start(workers=1)
        for r in range(args.rounds):
            for i in (1, 2):
                c.stop_worker(i)
            spread(c, per_daemon=3, daemons=1)
            runs[1].append(phase(c, f"1{r}", args.rate, args.seconds, args.burst, args.clients,
                                 pinned))
            spread(c, per_daemon=1, daemons=3)
            runs[3].append(phase(c, f"3{r}", args.rate, args.seconds, args.burst, args.clients,
                                 pinned))
        old = c.ha.primary()
        old.kill()
        failover_s, _ = first_accept_after(c.apis[0].url, "fo")
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
    one, three = median_phase(runs[1]), median_phase(runs[3])
    load_after = os.getloadavg()
    rows = [("orchestration CPU per finished job (ms)", "cpu_ms_per_job", "lower"),
            ("- of which API processes", "cpu_ms_per_job_api", "lower"),
            ("- of which worker daemons", "cpu_ms_per_job_worker", "lower"),
            ("- of which Redis (3 servers, 3 Sentinels)", "cpu_ms_per_job_redis", "lower"),
            ("warm handoff p50 (ms)", "handoff_p50_ms", "lower"),
            ("warm handoff p95 (ms)", "handoff_p95_ms", "lower"),
            ("enqueue rate (202/s)", "enqueue_per_s", "higher")]
    lines = ["| | 1 daemon | 3 daemons | 3 / 1 |", "| --- | ---: | ---: | ---: |"]
    for label, key, _better in rows:
        ratio = three[key] / one[key] if one[key] else float("nan")
        lines.append(f"| {label} | {one[key]:.2f} | {three[key]:.2f} | {ratio:.2f} |")
    lines.append(f"| jobs finished in the cost phase | {one['jobs']:g} | {three['jobs']:g} | |")
    lines.append(f"| jobs taken from the queue during the burst | {one['taken_in_burst']:g} | "
                 f"{three['taken_in_burst']:g} | |")
    lines.append("")
    lines.append("Each round (1 daemon / 3 daemons): " + "; ".join(
        f"CPU/job {a['cpu_ms_per_job']:.2f} / {b['cpu_ms_per_job']:.2f} ms, handoff p50 "
        f"{a['handoff_p50_ms']:.2f} / {b['handoff_p50_ms']:.2f} ms, enqueue "
        f"{a['enqueue_per_s']:.0f} / {b['enqueue_per_s']:.0f} per s"
        for a, b in zip(runs[1], runs[3], strict=True)) + ".")
    body = (f"`.venv/bin/python bench/bench_multihost.py` (two API processes, "
            f"Redis primary + 2 replicas + 3 Sentinels, VWE_REDIS_MIN_REPLICAS=1, "
            f"{args.rate:g} jobs/s for {args.seconds:g} s of 16x16 worlds, then "
            f"{args.clients} closed-loop clients for {args.burst:g} s; three warm containers "
            f"on one host or one on each of three; {args.rounds} rounds "
            "of both phases alternating on one deployment, medians; "
            + ("enqueue burst with the hosts on one CPU and the shared parts on the other; "
               if pinned else "unpinned; ")
            + "load average "
            f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; CPU is utime+stime)"
            "\n\n" + "\n".join(lines) +
            f"\n\nRedis failover (kill -9 of the primary -> first submit accepted again): "
            f"{failover_s:.2f} s (Sentinel down-after-milliseconds 1000).")
    write_section("bench_multihost", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
