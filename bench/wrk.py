"""Driving `wrk` and the servers it loads, for the HTTP benchmarks (`bench/bench_api.py`).

`Bench` starts servers as subprocesses (pinned to a CPU with `taskset` when asked and
possible), waits until they answer, runs `wrk` against them from another CPU and reads its
report (`parse_wrk`); `cpu_seconds` gives a server's CPU time from /proc, so a run can report
CPU time per request besides wall-clock figures. Hand-written because wrk has no Python
binding: its text report is the interface.

`Bench(args, tmp)` reads from `args`: threads, connections, warmup, duration (seconds),
client_cpu and server_cpu (taskset CPU lists) and pin (bool).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    raw: str
    cpu_us: float = 0.0  # the server's CPU time (user + system) per measured request


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {value!r}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(out: str) -> WrkResult:
    def find(pattern: str) -> str:
        m = re.search(pattern, out, re.M)
        if not m:
            raise ValueError(f"wrk output without {pattern!r}:\n{out}")
        return m.group(1)

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests=int(find(r"^\s*(\d+) requests in")),
        rps=float(find(r"^Requests/sec:\s*([\d.]+)")),
        p50_ms=_ms(find(r"^\s*50%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s*99%\s+(\S+)")),
        max_ms=_ms(find(r"^\s*Latency\s+\S+\s+\S+\s+(\S+)")),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        raw=out,
    )


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pin = args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")

    def _taskset(self, cpu: str) -> list[str]:
        return ["taskset", "-c", cpu] if self.pin else []

    def script(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def wrk(self, url: str, script: Path, duration: float, server: int | None = None
            ) -> WrkResult:
        """One wrk run; with `server` (a pid), also that process's CPU time per request."""
        a = self.args
        cmd = [*self._taskset(a.client_cpu), "wrk", f"-t{a.threads}", f"-c{a.connections}",
               f"-d{duration:g}s", "--latency", "--timeout", "5s", "-s", str(script), url]
        cpu0 = cpu_seconds(server) if server else 0.0
        out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                             timeout=duration + 30).stdout
        result = parse_wrk(out)
        if server and result.requests:
            result.cpu_us = (cpu_seconds(server) - cpu0) / result.requests * 1e6
        return result

    def measure(self, url: str, warmup: Path, measured: Path, server: int) -> WrkResult:
        if self.args.warmup > 0:
            self.wrk(url, warmup, self.args.warmup)
        return self.wrk(url, measured, self.args.duration, server)

    # ---- servers ----
    def start(self, cmd: list[str], env: dict[str, str], port: int, log_name: str,
              ready_path: str = "/healthz") -> subprocess.Popen[bytes]:
        log = (self.tmp / log_name).open("wb")
        proc = subprocess.Popen([*self._taskset(self.args.server_cpu), *cmd], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited {proc.returncode}: "
                                   f"{(self.tmp / log_name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}",
                                            timeout=1) as r:
                    if r.status == 200:
                        return proc
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{cmd} not ready on port {port} within 30 s")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text), text
    except ValueError:
        return status, None, text
