"""`vwe-pool serve` in a subprocess: the real daemon, killable like one (tests and benches)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaemonProcess:
    """One daemon process with its own port and log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "VWE_API_PORT": str(self.port),
                    "VWE_API_HOST": "127.0.0.1"}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, wait_warm: int = 0, timeout: float = 60, role: str = "all",
              ready: bool = True, instance_id: str | None = None,
              **popen: Any) -> DaemonProcess:
        """`instance_id`: VWE_INSTANCE_ID (default: a new one each start); `popen`: extra
        `subprocess.Popen` arguments (e.g. `user=` to run the daemon as another uid)."""
        self.env["VWE_INSTANCE_ID"] = instance_id or f"d-{uuid.uuid4().hex[:8]}"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([str(ROOT / ".venv/bin/vwe-pool"), "serve",
                                          "--role", role],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=ROOT, **popen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.logs()}")
            try:
                r = httpx.get(f"{self.url}/readyz" if ready else f"{self.url}/healthz",
                              timeout=1)
                if r.status_code == 200 and r.json().get("warm", 0) >= wait_warm:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"daemon not ready in {timeout} s: {self.logs()}")

    @property
    def instance(self) -> str:
        return self.env["VWE_INSTANCE_ID"]

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the daemon's /metrics (0 when the series is absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every JSON log entry of event `name` this daemon wrote, oldest first."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("event") == name:
                        found.append(entry)
        return found

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)


