"""The daemon's own footprint while it tracks 50 warm containers: resident memory and idle CPU.

A real daemon (`vwe-pool serve`) keeps a pool of 50 real workers (small map resolution so 50
fit in memory), then sits idle; we read its RSS and its CPU time from /proc over a window.
The same run measures an idle `python -c 'import fastapi, docker, redis, numpy'` process as a
baseline for memory. Targets: RSS <= 100 MB, idle CPU < 2% of one core.

    VWE_TEST_REDIS_URL=redis://127.0.0.1:6391/0 .venv/bin/python bench/bench_daemon_resources.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from daemonproc import DaemonProcess  # noqa: E402

from bench import scratch  # noqa: E402
from bench.results import write_section  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    redis_url = scratch.redis_url(2)
    redis.Redis.from_url(redis_url).flushdb()
    data = scratch.data_dir()
    n = args.containers
    d = DaemonProcess({"VWE_REDIS_URL": redis_url, "VWE_DATA_DIR": str(data),
                       "VWE_POOL_NAME": f"br-{uuid.uuid4().hex[:6]}", "VWE_POOL_SIZE": str(n),
                       "VWE_POOL_MAX": str(n), "VWE_MAX_CONCURRENT_BOOTS": "4",
                       "VWE_MAP_RESOLUTION": "16", "VWE_WORKER_MEMORY": "128m",
                       "VWE_BOOT_TIMEOUT_S": "120", "VWE_LOG_LEVEL": "warning"},
                      data / "daemon.log")
    baseline = subprocess.Popen([sys.executable, "-c",
                                 "import fastapi, docker, redis, numpy, time; time.sleep(3600)"])
    try:
        started = time.monotonic()
        d.start(wait_warm=n, timeout=600)
        fill_s = time.monotonic() - started
        assert d.proc is not None
        pid = d.proc.pid
        time.sleep(5)  # let the last boots' bookkeeping settle
        warm = httpx.get(f"{d.url}/readyz").json()["warm"]
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < args.window:
            peak = max(peak, rss_mb(pid))
            time.sleep(1)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        base_rss = rss_mb(baseline.pid)
    finally:
        baseline.kill()
        baseline.wait()
        if d.proc is not None and d.proc.poll() is None:
            d.stop(timeout=300)
        redis.Redis.from_url(redis_url).flushdb()
        shutil.rmtree(data, ignore_errors=True)

    body = "\n".join([
        f"`.venv/bin/python bench/bench_daemon_resources.py` ({n} warm containers tracked, "
        f"filled in {fill_s:.0f} s; idle window {args.window:.0f} s).",
        "",
        "| | value | target |",
        "|---|---:|---:|",
        f"| warm containers during the window | {warm} | {n} |",
        f"| daemon resident memory (peak) | {peak:.1f} MB | <= 100 MB |",
        f"| baseline: idle python with the same imports | {base_rss:.1f} MB | |",
        f"| daemon idle CPU | {cpu * 100:.2f} % of a core | < 2 % |",
    ])
    print(body)
    if not args.no_write:
        write_section("daemon footprint", body)
    return 0 if peak <= 100 and cpu < 0.02 and warm >= n else 1


if __name__ == "__main__":
    raise SystemExit(main())
