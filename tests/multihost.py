"""A multi-host deployment on one machine, and the proof that it survives losing a host and the
Redis primary (issue 16; docs/deploy.md, "Several hosts").

Each "host" is its own `dockerd` (own socket, data root, exec root, pidfile; the worker image
loaded into it with `docker save | docker load`) with one `vwe-pool serve --role worker` and a
host-local data folder. Shared: a Redis primary with replicas and three Sentinels
(`redisha.py`), one worlds folder, and API processes (`--role api`). The shared Docker engine
and the shared Redis are never touched. The engines' folders are the run's own (under its root
folder, so two runs never share one) and are removed, mounts first, when the cluster stops.

Run by tests/integration/test_multihost.py, bench/bench_multihost.py and, for an operator,
`scripts/multihost.sh` (prints the report as JSON; exit 1 when a job was lost, duplicated or a
container leaked).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemonproc import DaemonProcess
from ownprocs import remove_engine_dir
from redisha import RedisHA, env_for

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("VWE_WORKER_IMAGE", "vwe-worker:latest")


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(c) for c in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


class Engine:
    """One host's Docker engine."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.dir = name, folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = f"unix://{folder}/docker.sock"

    def start(self, timeout: float = 60) -> Engine:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "daemon.json").write_text("{}")
        for stale in ("docker.pid", "docker.sock"):
            (self.dir / stale).unlink(missing_ok=True)
        args = ["dockerd", "--host", self.host, "--data-root", str(self.dir / "data"),
                "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "docker.pid"),
                "--config-file", str(self.dir / "daemon.json"), "--bridge=none",
                "--iptables=false", "--ip6tables=false", "--log-level=warn"]
        with (self.dir / "dockerd.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd {self.name} exited; see {self.dir}/dockerd.log")
            if self.answers():
                return self
            time.sleep(0.1)
        raise TimeoutError(f"dockerd {self.name} not up in {timeout} s")

    def answers(self) -> bool:
        """GET /_ping on the engine's socket (a plain socket: docker-py's client can leave one
        open when the engine is not up yet)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            try:
                sock.connect(str(self.dir / "docker.sock"))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return b" 200 " in sock.recv(64).split(b"\r\n", 1)[0]
            except OSError:
                return False

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=30, version="1.41")

    def load_image(self, tag: str) -> None:
        """Copy `tag` from the shared engine unless this engine already has that image."""
        shared = docker.from_env()
        try:
            want = shared.images.get(tag).id
        finally:
            shared.close()
        client = self.client()
        try:
            with contextlib.suppress(docker.errors.ImageNotFound):
                if client.images.get(tag).id == want:
                    return
        finally:
            client.close()
        with subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE) as save:
            subprocess.run(["docker", "-H", self.host, "load", "-q"], stdin=save.stdout,
                           check=True, capture_output=True)
        if save.returncode != 0:
            raise RuntimeError(f"docker save {tag} failed")

    def kill(self) -> None:
        """SIGKILL the engine and its containerd, as a crashed host's engine."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pids = children(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def containers(self, pool: str) -> list[dict[str, Any]]:
        client = self.client()
        try:
            rows: list[dict[str, Any]] = client.api.containers(
                all=True, filters={"label": f"vwe.pool={pool}"})
            return rows
        finally:
            client.close()

    def remove_all(self, pool: str) -> None:
        client = self.client()
        try:
            for row in client.api.containers(all=True, filters={"label": f"vwe.pool={pool}"}):
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_container(row["Id"], force=True)
        finally:
            client.close()


class Cluster:
    """`hosts` engines with a worker daemon each, `apis` API processes, Redis HA, one store."""

    def __init__(self, root: Path, hosts: int = 3, apis: int = 2, replicas: int = 2,
                 min_replicas: int = 1, pool_size: int = 2, pool_max: int = 3,
                 resolution: int = 64, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.pool = f"mh-{uuid.uuid4().hex[:6]}"
        # This run's engines (short: the engines' unix socket paths must stay under 108 bytes).
        self.engines_dir = root / "e"
        self.engines = [Engine(f"h{i}", self.engines_dir / f"h{i}") for i in range(hosts)]
        self.ha = RedisHA(root / "redis", replicas=replicas)
        self.worlds = root / "worlds"
        self.apis_wanted = apis
        self.env = {
            "VWE_POOL_NAME": self.pool, "VWE_WORLDS_DIR": str(self.worlds),
            "VWE_WORKER_IMAGE": IMAGE, "VWE_POOL_SIZE": str(pool_size),
            "VWE_POOL_MAX": str(pool_max), "VWE_MAP_RESOLUTION": str(resolution),
            "VWE_REDIS_MIN_REPLICAS": str(min_replicas), "VWE_REDIS_WAIT_TIMEOUT_S": "0.5",
            "VWE_BOOT_TIMEOUT_S": "60", "VWE_HEALTH_INTERVAL_S": "2",
            "VWE_MAINTENANCE_INTERVAL_S": "1", "VWE_RECLAIM_IDLE_S": "10",
            "VWE_DRAIN_TIMEOUT_S": "20", "VWE_WORKER_MEMORY": "256m", "VWE_LOG_FORMAT": "json",
            "VWE_API_ANSWER_CACHE_S": "0", **(extra_env or {}),
        }
        self.workers: list[DaemonProcess | None] = [None] * hosts
        self.apis: list[DaemonProcess] = []
        self.logs: list[Path] = []  # every daemon's log, killed ones included

    def _proc(self, name: str, **env: str) -> DaemonProcess:
        log = self.root / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        return DaemonProcess({**self.env, **env_for(self.ha), **env}, log)

    def start(self, workers: int | None = None) -> Cluster:
        """Everything; only the first `workers` worker daemons (default: one per engine).
        What started is stopped again (and the engines' folders removed) when a part fails."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.worlds.mkdir(exist_ok=True)
            self.ha.start()
            failed: list[BaseException] = []

            def start_engine(e: Engine) -> None:
                try:
                    e.start().load_image(IMAGE)
                except BaseException as exc:  # raised again on the caller's thread
                    failed.append(exc)

            threads = [threading.Thread(target=start_engine, args=(e,)) for e in self.engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failed:
                raise failed[0]
            for i in range(len(self.engines) if workers is None else workers):
                self.start_worker(i)
            for i in range(self.apis_wanted):
                self.apis.append(self._proc(f"api{i}").start(role="api"))
        except BaseException:
            self.stop()
            raise
        return self

    def start_worker(self, i: int) -> DaemonProcess:
        engine = self.engines[i]
        data = self.root / f"h{i}"
        data.mkdir(exist_ok=True)
        w = self._proc(f"worker{i}", DOCKER_HOST=engine.host, VWE_DATA_DIR=str(data))
        self.workers[i] = w.start(wait_warm=1, role="worker", timeout=120)
        return w

    def stop_worker(self, i: int) -> int:
        """Stop (drain) host `i`'s worker daemon; its exit status."""
        w = self.workers[i]
        self.workers[i] = None
        return w.stop(timeout=60) if w is not None else 0

    def kill_host(self, i: int) -> None:
        """kill -9 the host's worker daemon, then its engine."""
        w = self.workers[i]
        if w is not None:
            w.kill()
        self.engines[i].kill()
        self.workers[i] = None

    def restart_host(self, i: int) -> None:
        self.engines[i].start()
        self.start_worker(i)

    def pids(self) -> dict[str, list[int]]:
        """The processes whose CPU counts as orchestration: APIs, workers, Redis."""
        redis = [n.proc.pid for n in [*self.ha.servers, *self.ha.watchers]
                 if n.proc is not None and n.alive]
        return {"api": [a.proc.pid for a in self.apis if a.proc is not None],
                "worker": [w.proc.pid for w in self.workers if w is not None and w.proc],
                "redis": redis}

    def stop(self) -> dict[str, int]:
        """Drain every process, stop the engines and remove their folders; return the pool's
        containers left on each engine. Safe to call again."""
        for p in [*self.apis, *(w for w in self.workers if w is not None)]:
            with contextlib.suppress(Exception):
                if p.proc is not None:
                    p.stop(timeout=60)
        left = {}
        try:
            for e in self.engines:
                if e.proc is not None and e.proc.poll() is None:
                    with contextlib.suppress(Exception):
                        left[e.name] = len(e.containers(self.pool))
                        e.remove_all(self.pool)
                e.stop()
        finally:
            self.ha.stop()
            remove_engine_dir(self.engines_dir)
        return left

    def generations(self) -> Counter[str]:
        """How many times each job's world was generated and published, from every daemon's
        log (a record lost in a failover and recorded again from the published world is one
        generation; see docs/architecture.md, "Exactly once")."""
        counts: Counter[str] = Counter()
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if '"world published"' in line:
                    with contextlib.suppress(ValueError):
                        counts[json.loads(line)["job_id"]] += 1
        return counts

    def events(self) -> Counter[str]:
        """How often each log event occurred across every daemon (killed ones included)."""
        counts: Counter[str] = Counter()
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    counts[json.loads(line)["event"]] += 1
        return counts

    def handoff_ms(self) -> dict[Path, list[float]]:
        """The warm handoffs' `acquire_ms` in each daemon's log, in order."""
        out: dict[Path, list[float]] = {}
        for log in self.logs:
            times = out.setdefault(log, [])
            for line in log.read_text(errors="replace").splitlines():
                if '"job handed off"' in line and '"warm"' in line:
                    with contextlib.suppress(ValueError, KeyError):
                        times.append(float(json.loads(line)["acquire_ms"]))
        return out


class Load:
    """Submits fresh seeds at `rate` per second, round robin over the API processes."""

    def __init__(self, urls: list[str], rate: float, prefix: str) -> None:
        self.urls, self.rate, self.prefix = urls, rate, prefix
        self.accepted: dict[str, float] = {}  # job id -> when the 202 came
        self.refused: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.n = 0

    def submit(self, client: httpx.Client) -> int:
        self.n += 1
        url = self.urls[self.n % len(self.urls)]
        seed = f"{self.prefix}{self.n:06d}"[-10:]
        try:
            r = client.post(f"{url}/v1/worlds", json={"seed": seed}, timeout=10)
        except httpx.HTTPError:
            self.refused[0] += 1
            return 0
        if r.status_code in (200, 202):
            self.accepted[r.json()["job_id"]] = time.monotonic()
        else:
            self.refused[r.status_code] += 1
        return r.status_code

    def _run(self) -> None:
        with httpx.Client() as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                self.submit(client)
                next_at += 1 / self.rate
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def wait_busy(worker: DaemonProcess, timeout: float = 30) -> bool:
    """Wait until the worker's pool has a container running a job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(f"{worker.url}/metrics", timeout=2).text
            for line in text.splitlines():
                if line.startswith("vwe_pool_containers{") and 'state="busy"' in line \
                        and float(line.rsplit(" ", 1)[1]) > 0:
                    return True
        time.sleep(0.01)
    return False


def first_accept_after(url: str, prefix: str, timeout: float = 60) -> tuple[float, str]:
    """Submit fresh seeds every 50 ms until one is accepted: (seconds taken, its job id)."""
    started = time.monotonic()
    with httpx.Client() as client:
        i = 0
        while time.monotonic() - started < timeout:
            i += 1
            with contextlib.suppress(httpx.HTTPError):
                r = client.post(f"{url}/v1/worlds", json={"seed": f"{prefix}{i:05d}"[-10:]},
                                timeout=5)
                if r.status_code == 202:
                    return time.monotonic() - started, r.json()["job_id"]
            time.sleep(0.05)
    raise TimeoutError(f"no submit accepted within {timeout} s of the failover")


def settle(url: str, job_ids: list[str], timeout: float = 120) -> dict[str, str]:
    """Each job's final status (or `missing`/`unfinished`)."""
    out: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        for job_id in job_ids:
            while True:
                try:
                    r = client.get(f"{url}/v1/jobs/{job_id}", params={"wait": 5}, timeout=15)
                except httpx.HTTPError:
                    time.sleep(0.5)
                    continue
                if r.status_code == 404:
                    out[job_id] = "missing"
                    break
                if r.status_code == 200 and r.json()["status"] in ("succeeded", "failed"):
                    out[job_id] = r.json()["status"]
                    break
                if time.monotonic() > deadline:
                    out[job_id] = "unfinished"
                    break
    return out


def prove(root: Path, rate: float = 4.0, warmup_s: float = 5.0, after_s: float = 8.0,
          **cluster: Any) -> dict[str, Any]:
    """The scenario of issue 16: steady load; kill -9 host 0's daemon and engine mid-job; kill
    the Redis primary; bring host 0 back; drain. Returns the report."""
    c = Cluster(root, **cluster).start()
    report: dict[str, Any] = {"pool": c.pool, "hosts": len(c.engines), "apis": len(c.apis),
                              "min_replicas": int(c.env["VWE_REDIS_MIN_REPLICAS"])}
    left: dict[str, int] = {}
    try:
        load = Load([a.url for a in c.apis], rate, "ld").start()
        time.sleep(warmup_s)
        victim = c.workers[0]
        assert victim is not None
        report["host_killed_mid_job"] = wait_busy(victim)
        c.kill_host(0)
        time.sleep(after_s)
        old = c.ha.primary()
        old.kill()
        report["failover_s"], probe_job = first_accept_after(c.apis[1].url, "fo")
        load.accepted[probe_job] = time.monotonic()
        time.sleep(after_s)
        c.restart_host(0)
        time.sleep(after_s)
        load.stop()
        statuses = settle(c.apis[0].url, list(load.accepted))
        recorded = c.generations()
        report.update({
            "accepted": len(load.accepted),
            "refused": {str(k): v for k, v in load.refused.items()},
            "succeeded": sum(1 for s in statuses.values() if s == "succeeded"),
            "failed": sum(1 for s in statuses.values() if s == "failed"),
            "lost": sum(1 for s in statuses.values() if s in ("missing", "unfinished")),
            "finished_exactly_once": sum(1 for j, s in statuses.items()
                                         if s == "succeeded" and recorded[j] == 1),
            "duplicated": sum(1 for j in load.accepted if recorded[j] > 1),
        })
        events = c.events()
        report["jobs_reclaimed"] = events["reclaimed a job from another daemon"]
        report["orphans_removed"] = events["orphan container removed"]
    finally:
        left = c.stop()
    report["leaked_containers"] = sum(left.values())
    report["leaked_by_engine"] = left
    report["engines_removed"] = not c.engines_dir.exists()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=4.0, help="submits per second")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs)")
    args = parser.parse_args(argv)
    # SIGTERM (an operator's kill, a CI timeout) unwinds like Ctrl-C: the engines, Redis and
    # daemons are stopped and the run's folders removed by the `finally` blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="vwe-mh-", dir="/tmp"))
    try:
        report = prove(root, rate=args.rate, hosts=args.hosts, replicas=args.replicas,
                       min_replicas=args.min_replicas)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=2))
    bad = report["lost"] or report["duplicated"] or report["leaked_containers"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
