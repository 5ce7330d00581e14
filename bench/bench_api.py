"""HTTP throughput and tail latency of `POST /v1/worlds`, against a minimal FastAPI baseline.

Four runs, each driven by `wrk` from a separate process over loopback (POST bodies come from Lua
scripts written to a temporary folder at run time), each a 2 s warm-up then a 10 s measurement:

1. baseline: a minimal FastAPI app defined here (one Redis GET per request, a small JSON answer;
   stock FastAPI, none of the app's tuning: its OpenTelemetry check, unfrozen GC), served by
   uvicorn in a subprocess with the daemon's options (`cmd_serve` in pool/entry/cli.py:
   uvloop/httptools when installed, log_config=None, access_log=False, lifespan on);
2. cached: the real app (`vwe-pool serve --role api`) answering `200` from the result cache for a
   seed whose finished job was written to Redis as the daemon writes it (JobStore);
3. cached-redis: the same with the app's in-memory answers off (VWE_API_ANSWER_CACHE_S=0), so
   every answer costs one Redis script call, for comparison;
4. enqueue: the real app accepting a new job (`202`) for a distinct seed on every request,
   with a queue cap nobody reaches and no daemon consuming.

CPU placement (2 cores): by default the server under test is pinned to CPU 0 and wrk to CPU 1
(`taskset`), so the single-threaded server has a core and the load generator cannot starve it;
Redis (not started here) is left where the scheduler puts it. `--no-pin` lets everything float.

Redis: `--redis` (default: VWE_BENCH_REDIS_URL, else VWE_TEST_REDIS_URL, else
redis://127.0.0.1:6391) with its database replaced by `--db` (default 5; 0 and 9 are refused);
that database is flushed before every run and at the end.

Prints a markdown table and writes the `## api` section of bench/RESULTS.md (other sections are
left alone).

    .venv/bin/python bench/bench_api.py [--repeat 3] [--duration 10] [--warmup 2]
                                        [--threads 2] [--connections 32] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI, Request
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import RESULTS, write_section
from bench.wrk import Bench, WrkResult, free_port, http

SECTION = "api"
POOL_NAME = "bench-api"
CACHED_SEED = "BenchSeed1"
BASELINE_KEY = "bench:baseline"
FORBIDDEN_DBS = (0, 9)  # the dev database and the integration tests' one
TARGETS = {"cached": (4000.0, 0.70, 25.0), "enqueue": (2000.0, None, 25.0)}
RUNS = ("baseline", "cached", "cached-redis", "enqueue")


# --------------------------------------------------------------------------------------------
# The baseline app (run in its own process: `bench_api.py --serve-baseline PORT REDIS_URL`)
# --------------------------------------------------------------------------------------------

class BaselineBody(BaseModel):
    seed: str


def serve_baseline(port: int, redis_url: str) -> None:
    import redis.asyncio as aioredis
    import uvicorn

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(redis_url)
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bench")
    async def bench(body: BaselineBody, request: Request) -> dict[str, Any]:
        value = await request.app.state.redis.get(BASELINE_KEY)
        return {"seed": body.seed, "value": value.decode() if value else None}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # The options of cmd_serve in pool/entry/cli.py (loop/http "auto" = uvloop/httptools when
    # installed).
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------

FIXED_BODY_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""

# A distinct 10-character seed per request: run tag, thread tag, 8 base36 digits of a counter
# (each wrk thread has its own Lua state, hence its own counter).
UNIQUE_SEED_LUA = """\
local digits = "0123456789abcdefghijklmnopqrstuvwxyz"
local threads = 0
function setup(thread)
  thread:set("tag", string.sub(digits, threads + 11, threads + 11))
  threads = threads + 1
end
local counter = 0
local function base36(n)
  local s = ""
  for _ = 1, 8 do
    local d = n % 36
    s = string.sub(digits, d + 1, d + 1) .. s
    n = (n - d) / 36
  end
  return s
end
local headers = {{["Content-Type"] = "application/json"}}
function request()
  counter = counter + 1
  local body = '{{"seed":"{run}' .. tag .. base36(counter) .. '"}}'
  return wrk.format("POST", "{path}", headers, body)
end
"""


# --------------------------------------------------------------------------------------------
# Redis set-up
# --------------------------------------------------------------------------------------------

def redis_url_for(base: str, db: int) -> str:
    if db in FORBIDDEN_DBS:
        raise SystemExit(f"bench_api: refusing Redis db {db} (reserved: {FORBIDDEN_DBS})")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        assert client.connection_pool.connection_kwargs.get("db") not in FORBIDDEN_DBS
        client.flushdb()
    finally:
        client.close()


async def _populate_cached(url: str, seed: str, resolution: int) -> str:
    """A finished job for `seed`, left by the daemon's own calls (JobStore.submit, read_new,
    start_attempt, succeed), with three artifacts like a real world; returns its job id."""
    import redis.asyncio as aioredis

    from api.models import WorldRequest
    from pool.core.jobs import Artifact
    from pool.store.job_store import JobStore
    from worldgen import GENERATOR_VERSION
    from worldgen.hashing import seed_from_text

    client = aioredis.Redis.from_url(url)
    try:
        store = JobStore(client, POOL_NAME, 7 * 24 * 3600, 10_000_000)
        await store.ensure_group()
        # The options exactly as the API derives them from `{"seed": ...}` (the cache key).
        options = WorldRequest(seed=seed).options(resolution)
        sub = await store.submit(seed, seed_from_text(seed), GENERATOR_VERSION, options)
        entry = await store.read_new("bench-populate", block_ms=1000)
        assert entry is not None and entry.job_id == sub.job_id
        claim = await store.start_attempt(entry, "bench-populate")
        assert claim is not None
        artifacts = [Artifact("world.json", 1834, "ab" * 32, "application/json"),
                     Artifact("biomes.npy", resolution * resolution + 128, "cd" * 32,
                              "application/octet-stream"),
                     Artifact("biomes.png", 412_345, "ef" * 32, "image/png")]
        assert await store.succeed(claim, launch_type="warm", generation_s=1.05,
                                   artifacts=artifacts, container="vwe-bench-api-0")
        return sub.job_id
    finally:
        await client.aclose()


def metric_value(text: str, name: str, labels: str) -> float:
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([\d.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


# --------------------------------------------------------------------------------------------
# The three runs
# --------------------------------------------------------------------------------------------

def run_baseline(bench: Bench, url: str) -> WrkResult:
    import redis

    flush(url)
    client = redis.Redis.from_url(url)
    client.set(BASELINE_KEY, "warm")
    client.close()
    port = free_port()
    proc = bench.start([sys.executable, str(Path(__file__).resolve()), "--serve-baseline",
                        str(port), url], dict(os.environ), port, "baseline.log")
    try:
        status, body, text = http("POST", f"http://127.0.0.1:{port}/bench", {"seed": "x"})
        if status != 200 or body != {"seed": "x", "value": "warm"}:
            raise RuntimeError(f"baseline answered {status} {text}")
        script = bench.script("fixed.lua", FIXED_BODY_LUA.format(body='{"seed":"x"}'))
        return bench.measure(f"http://127.0.0.1:{port}/bench", script, script, proc.pid)
    finally:
        bench.stop(proc)


def start_api(bench: Bench, url: str, log_name: str, **extra_env: str
              ) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, **extra_env, "VWE_REDIS_URL": url, "VWE_POOL_NAME": POOL_NAME,
           "VWE_API_HOST": "127.0.0.1", "VWE_API_PORT": str(port), "VWE_LOG_FORMAT": "json",
           "VWE_LOG_LEVEL": "warning", "VWE_QUEUE_MAX": "10000000",
           "VWE_DATA_DIR": str(bench.tmp / "data"), "VWE_MAP_RESOLUTION": "2048"}
    env.pop("VWE_API_TOKEN", None)
    cli = str(Path(sys.executable).with_name("vwe-pool"))
    proc = bench.start([cli, "serve", "--role", "api"], env, port, log_name)
    return proc, port


def run_cached(bench: Bench, url: str, memory: bool = True) -> tuple[WrkResult, str]:
    """With `memory`, the app's defaults (a repeated request is answered from its memory);
    without, VWE_API_ANSWER_CACHE_S=0: every answer comes from Redis, one script call each."""
    flush(url)
    job_id = asyncio.run(_populate_cached(url, CACHED_SEED, 2048))
    extra = {} if memory else {"VWE_API_ANSWER_CACHE_S": "0"}
    proc, port = start_api(bench, url, "cached.log", **extra)
    base = f"http://127.0.0.1:{port}"
    try:
        status, body, text = http("POST", f"{base}/v1/worlds", {"seed": CACHED_SEED})
        if (status != 200 or not isinstance(body, dict) or body.get("job_id") != job_id
                or body.get("cached") is not True or body.get("status") != "succeeded"):
            raise RuntimeError(f"expected 200 cached job {job_id}, got {status} {text}")
        before = metric_value(http("GET", f"{base}/metrics")[2], "vwe_jobs_total",
                              'status="cached"')
        script = bench.script("cached.lua",
                              FIXED_BODY_LUA.format(body=json.dumps({"seed": CACHED_SEED})))
        result = bench.measure(f"{base}/v1/worlds", script, script, proc.pid)
        metrics = http("GET", f"{base}/metrics")[2]
        cached = metric_value(metrics, "vwe_jobs_total", 'status="cached"') - before
        check = (f"cached answers counted by the app during warm-up + run: {cached:.0f} "
                 f"(wrk measured {result.requests})")
        if cached < result.requests:
            raise RuntimeError(f"not every answer came from the cache: {check}")
        return result, check
    finally:
        bench.stop(proc)


def run_enqueue(bench: Bench, url: str) -> tuple[WrkResult, str]:
    import redis

    flush(url)
    proc, port = start_api(bench, url, "enqueue.log")
    base = f"http://127.0.0.1:{port}"
    try:
        status, body, text = http("POST", f"{base}/v1/worlds", {"seed": "probe"})
        if status != 202 or not isinstance(body, dict) or body.get("status") != "queued":
            raise RuntimeError(f"expected 202 queued, got {status} {text}")
        path = "/v1/worlds"
        warm = bench.script("enqueue-warmup.lua", UNIQUE_SEED_LUA.format(run="w", path=path))
        main = bench.script("enqueue.lua", UNIQUE_SEED_LUA.format(run="m", path=path))
        if bench.args.warmup > 0:
            bench.wrk(f"{base}{path}", warm, bench.args.warmup)
        client = redis.Redis.from_url(url)
        depth_key = f"{POOL_NAME}:queue:depth"
        depth0 = int(client.get(depth_key) or 0)
        result = bench.wrk(f"{base}{path}", main, bench.args.duration, proc.pid)
        created = int(client.get(depth_key) or 0) - depth0
        client.close()
        check = f"jobs enqueued during the run: {created} (wrk measured {result.requests})"
        if created < result.requests:
            raise RuntimeError(f"fewer jobs than answers (duplicate seeds?): {check}")
        return result, check
    finally:
        bench.stop(proc)
        flush(url)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def verdict(name: str, r: WrkResult, ratio: float) -> str:
    if name not in TARGETS:
        return "reference" if name == "baseline" else "for comparison"
    rps_min, ratio_min, p99_max = TARGETS[name]
    ok = r.rps >= rps_min and r.p99_ms <= p99_max and r.non_2xx == 0 and r.socket_errors == 0
    if ratio_min is not None:
        ok = ok and ratio >= ratio_min
    return "**met**" if ok else "**missed**"


def target_text(name: str) -> str:
    if name not in TARGETS:
        return "-"
    rps_min, ratio_min, p99_max = TARGETS[name]
    parts = [f">= {rps_min:,.0f} req/s"]
    if ratio_min is not None:
        parts.append(f">= {ratio_min:.0%} of baseline")
    parts.append(f"p99 <= {p99_max:g} ms")
    return ", ".join(parts)


def report(args: argparse.Namespace, bench: Bench, runs: dict[str, list[WrkResult]],
           checks: list[str], load: tuple[float, float]) -> str:
    results = {name: median_run(rs) for name, rs in runs.items()}
    ratios = {name: statistics.median(r.rps / b.rps for r, b in zip(rs, runs["baseline"],
                                                                  strict=True))
              for name, rs in runs.items()}
    labels = {
        "baseline": "baseline: minimal FastAPI, 1 Redis GET (`POST /bench`)",
        "cached": "`POST /v1/worlds` cached (200)",
        "cached-redis": "`POST /v1/worlds` cached (200), memory off: 1 Redis call "
                        "(`VWE_API_ANSWER_CACHE_S=0`)",
        "enqueue": "`POST /v1/worlds` new seed (202)",
    }
    import fastapi
    import redis.utils
    import uvicorn

    pin = (f"server pinned to CPU {args.server_cpu}, wrk to CPU {args.client_cpu} (`taskset`), "
           "Redis unpinned" if bench.pin else "no CPU pinning")
    repeat = (f"median of {args.repeat} interleaved rounds (every run on a fresh server)"
              if args.repeat > 1 else "one round")
    lines = [
        f"`wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency` over "
        f"loopback after a {args.warmup:g} s warm-up, {repeat}; one uvicorn process (uvloop + "
        f"httptools, log_config=None, access_log=False); the real app is `vwe-pool serve "
        f"--role api`; {pin}; {os.cpu_count()} cores shared by wrk, the server and Redis.",
        "",
        "| run | req/s | p50 (ms) | p99 (ms) | max (ms) | vs baseline | CPU/req (us) | errors "
        "| target | |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {labels[name]} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.max_ms:.2f} | {ratios[name]:.0%} | {r.cpu_us:.0f} | "
            f"{r.non_2xx + r.socket_errors} | {target_text(name)} | "
            f"{verdict(name, r, ratios[name])} |")
    defaults = {"repeat": 3, "duration": 10.0, "warmup": 2.0, "threads": 2, "connections": 32}
    command_args = "".join(f" --{k} {getattr(args, k):g}" for k, v in defaults.items()
                           if getattr(args, k) != v) + ("" if args.pin else " --no-pin")
    lines += [
        "",
        "- vs baseline: req/s over the same round's baseline (median over rounds). CPU/req: the "
        "server process's user+system CPU time per answered request, steadier than req/s when "
        "other work shares the machine (req/s ~ 1e6 / CPU/req when the server has a core).",
    ]
    slowest = min(results.values(), key=lambda r: r.rps)
    lines.append(
        f"- p99 and req/s are tied: wrk keeps {args.connections} requests in flight, so the mean "
        f"latency is ~{args.connections} / req/s ({1000 * args.connections / slowest.rps:.0f} ms "
        f"at {slowest.rps:,.0f} req/s); a p99 under 25 ms needs well over "
        f"{args.connections / 0.025:,.0f} req/s.")
    if args.repeat > 1:
        for name, rs in runs.items():
            lines.append(f"- {name} rounds: " + ", ".join(
                f"{r.rps:,.0f} req/s (p99 {r.p99_ms:.1f} ms, {r.cpu_us:.0f} us/req)" for r in rs))
    for name, rs in runs.items():
        for r in rs:
            if r.non_2xx or r.socket_errors:
                wrk_errors = [ln.strip() for ln in r.raw.splitlines()
                              if "errors" in ln or "Non-2xx" in ln]
                lines.append(f"- {name} errors: {'; '.join(wrk_errors)}")
    lines += [
        *[f"- check: {c}" for c in checks],
        f"- machine load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after; "
        f"hiredis {'installed' if redis.utils.HIREDIS_AVAILABLE else 'not installed'}",
        f"- measured: `.venv/bin/python bench/bench_api.py{command_args}` "
        f"({'as `make bench` runs it' if not command_args else 'not the defaults'}) on "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d')}",
    ]
    return "\n".join(lines)


def median_run(runs: list[WrkResult]) -> WrkResult:
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-baseline":
        serve_baseline(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("VWE_BENCH_REDIS_URL")
                        or os.environ.get("VWE_TEST_REDIS_URL") or "redis://127.0.0.1:6391")
    parser.add_argument("--db", type=int, default=5, help="Redis database to use (flushed)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of all runs, interleaved; the median round of each is kept")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the server and wrk to separate CPUs")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--only", choices=RUNS, action="append",
                        help="run only these (repeatable); RESULTS.md is then left alone")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_api: skipped, wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 0
    url = redis_url_for(args.redis, args.db)
    wanted = args.only or list(RUNS)
    args.repeat = max(1, args.repeat)

    runs: dict[str, list[WrkResult]] = {name: [] for name in wanted}
    load0 = os.getloadavg()[0]
    checks: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            for _ in range(args.repeat):
                if "baseline" in wanted:
                    runs["baseline"].append(run_baseline(bench, url))
                if "cached" in wanted:
                    result, check = run_cached(bench, url)
                    runs["cached"].append(result)
                if "cached-redis" in wanted:
                    runs["cached-redis"].append(run_cached(bench, url, memory=False)[0])
                if "enqueue" in wanted:
                    result, check2 = run_enqueue(bench, url)
                    runs["enqueue"].append(result)
            if "cached" in wanted:
                checks.append(check)
            if "enqueue" in wanted:
                checks.append(check2)
        finally:
            bench.stop_all()
            flush(url)
    if "baseline" not in runs:
        for name, rs in runs.items():
            for r in rs:
                print(f"{name}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms,"
                      f" CPU/req {r.cpu_us:.0f} us, errors {r.non_2xx + r.socket_errors}")
        return 0
    body = report(args, bench, runs, checks, (load0, os.getloadavg()[0]))
    print(body)
    if not args.no_write and not args.only:
        write_section(SECTION, body)
        print(f"\nwrote the '## {SECTION}' section of {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
