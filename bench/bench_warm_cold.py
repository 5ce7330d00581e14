"""The headline: end-to-end latency of a warm request against a cold one.

The worker image is told to delay its readiness by 20 s (`VWE_WORKER_READY_DELAY_S`), which
models the real game server's boot. Two real daemons on the real engine and Redis: one keeps a
warm pool, one has none (every request cold-starts a container). Latency is measured by the
client: POST /v1/worlds -> the finished job (long-poll). Target: warm >= 20x faster than cold.
The same warm runs give the API's end-to-end overhead: client latency - generation time
(target p50 <= 15 ms).

    VWE_TEST_REDIS_URL=redis://127.0.0.1:6391/0 .venv/bin/python bench/bench_warm_cold.py
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from daemonproc import DaemonProcess  # noqa: E402

from bench import scratch  # noqa: E402
from bench.results import write_section  # noqa: E402


def timed_job(url: str, seed: str) -> tuple[float, dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=70) as client:  # a client's set-up is not timed
        started = time.perf_counter()
        job = client.post("/v1/worlds", json={"seed": seed}).json()
        while job["status"] not in ("succeeded", "failed"):
            job = client.get(f"/v1/jobs/{job['job_id']}", params={"wait": 60}).json()
    elapsed = time.perf_counter() - started
    if job["status"] != "succeeded":
        raise RuntimeError(f"job failed: {job}")
    return elapsed, job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=15)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--delay", type=float, default=20.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    redis_url = scratch.redis_url(6)
    redis.Redis.from_url(redis_url).flushdb()
    data = scratch.data_dir()
    env = {"VWE_REDIS_URL": redis_url, "VWE_DATA_DIR": str(data),
           "VWE_WORKER_READY_DELAY_S": str(args.delay), "VWE_BOOT_TIMEOUT_S": "120",
           "VWE_LOG_LEVEL": "warning", "VWE_LOG_FORMAT": "json"}
    warm_d = DaemonProcess({**env, "VWE_POOL_NAME": f"bw-{uuid.uuid4().hex[:6]}",
                            "VWE_POOL_SIZE": "2", "VWE_POOL_MAX": "4"}, data / "warm.log")
    cold_d = DaemonProcess({**env, "VWE_POOL_NAME": f"bc-{uuid.uuid4().hex[:6]}",
                            "VWE_POOL_SIZE": "0", "VWE_POOL_MAX": "2"}, data / "cold.log")
    try:
        warm_d.start(wait_warm=2, timeout=args.delay * 3 + 30)
        warm = [timed_job(warm_d.url, f"w{i}{uuid.uuid4().hex[:4]}") for i in range(args.warm)]
        warm_d.stop()
        cold_d.start(timeout=30)
        cold = [timed_job(cold_d.url, f"c{i}{uuid.uuid4().hex[:4]}") for i in range(args.cold)]
    finally:
        for d in (warm_d, cold_d):
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        redis.Redis.from_url(redis_url).flushdb()
        shutil.rmtree(data, ignore_errors=True)

    assert all(j["launch_type"] == "warm" for _, j in warm), "a warm-pool request went cold"
    assert all(j["launch_type"] == "cold" for _, j in cold)
    warm_s = statistics.median(t for t, _ in warm)
    cold_s = statistics.median(t for t, _ in cold)
    overhead = sorted(t - float(j["generation_s"]) for t, j in warm)
    generation = statistics.median(float(j["generation_s"]) for _, j in warm)
    body = "\n".join([
        f"`.venv/bin/python bench/bench_warm_cold.py` (worker readiness delayed {args.delay:.0f} s;"
        f" {args.warm} warm and {args.cold} cold requests, full 2048 x 2048 worlds, measured by"
        " the client).",
        "",
        "| | median s | runs |",
        "|---|---:|---:|",
        f"| warm pool | {warm_s:.3f} | {args.warm} |",
        f"| cold start | {cold_s:.3f} | {args.cold} |",
        f"| **cold / warm** | **{cold_s / warm_s:.1f}x** | target >= 20x |",
        "",
        f"End-to-end overhead of a warm request (client latency - agent's generation time "
        f"{generation:.3f} s): p50 {overhead[len(overhead) // 2] * 1e3:.1f} ms, "
        f"max {overhead[-1] * 1e3:.1f} ms (target p50 <= 15 ms).",
    ])
    print(body)
    if not args.no_write:
        write_section("warm vs cold", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
