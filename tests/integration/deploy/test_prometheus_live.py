"""The Grafana dashboard against a real Prometheus scraping a real daemon.

Prometheus (Debian's 2.42) scrapes `vwe-pool serve` every second and evaluates config/alerts.yml.
The test drives the daemon through everything the dashboard shows: warm and cold launches,
recycles (max uses, unhealthy), boot and generation failures (containers killed from outside),
retries, cached requests, 404/422/429 answers and an alert firing. Then it evaluates every
PromQL expression of the dashboard through Prometheus' HTTP API and asserts that each returns
data, listing every empty panel at once.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
import redis
from apiclient import eventually, get_job, pool_state, submit, wait_job, warm_names
from conftest import ROOT, DaemonProcess, free_port
from dashboard_exprs import SUBSTITUTIONS, dashboard_exprs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROMETHEUS = "/usr/bin/prometheus"
ALERTS_YML = ROOT / "config" / "alerts.yml"
# Short windows so a test of about a minute has data in every rate; the dashboard's own
# `$__range` covers the whole test.
EXPR_SUBSTITUTIONS = {**SUBSTITUTIONS, "__rate_interval": "1m", "__range": "5m"}
# How long the traffic phase runs; every event of the test stays inside the 1m rate window.
TRAFFIC_S = 25.0


class PrometheusProcess:
    """`prometheus` in a subprocess, scraping one daemon every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.config = workdir / "prometheus.yml"
        # JSON is YAML: no YAML writer needed.
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS_YML)],
            "scrape_configs": [{
                "job_name": "vwe-pool", "metrics_path": "/metrics", "scheme": "http",
                "static_configs": [{"targets": [target]}],
            }],
        }, indent=2))
        self.storage = workdir / "tsdb"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> PrometheusProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.storage}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.logs()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready in {timeout} s: {self.logs()}")

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query at now: Prometheus' whole answer (status, data or error)."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        try:
            body: dict[str, Any] = r.json()
        except ValueError:
            return {"status": "error", "error": f"HTTP {r.status_code}: {r.text[:200]}"}
        return body

    def labels(self, expr: str, label: str) -> set[str]:
        """The values of `label` among the series `expr` returns."""
        body = self.query(expr)
        if body.get("status") != "success":
            return set()
        return {s["metric"].get(label, "") for s in body["data"]["result"]}

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def prometheus_factory(data_dir: Path, request: pytest.FixtureRequest
                       ) -> Iterator[Callable[[str], PrometheusProcess]]:
    started: list[PrometheusProcess] = []

    def make(target: str) -> PrometheusProcess:
        p = PrometheusProcess(data_dir / f"prometheus-{len(started)}", target)
        started.append(p)
        return p

    yield make
    failed = getattr(request.node, "rep_call", None)
    for p in started:
        p.stop()
        if failed is not None and failed.failed:
            print(f"\n--- prometheus log ---\n{p.logs()}")


def describe(body: dict[str, Any]) -> str | None:
    """Why Prometheus' answer is not data a panel can show, or None when it is."""
    if body.get("status") != "success":
        return f"{body.get('errorType', 'error')}: {body.get('error', body)}"
    data = body["data"]
    if data["resultType"] == "scalar":
        values = [data["result"][1]]
    elif data["resultType"] == "vector":
        values = [s["value"][1] for s in data["result"]]
    else:
        return f"unexpected result type {data['resultType']}"
    if not values:
        return "empty result"
    if all(math.isnan(float(v)) for v in values):
        return f"only NaN ({len(values)} series)"
    return None


def panel_failures(prom: PrometheusProcess, exprs: list[tuple[str, str]]) -> list[str]:
    failures = []
    for title, expr in exprs:
        problem = describe(prom.query(expr))
        if problem is not None:
            failures.append(f"{title!r}: {problem}\n      {expr}")
    return failures


def coverage_failures(prom: PrometheusProcess) -> list[str]:
    """The scenario produced every label value the dashboard's breakdowns are meant to show."""
    expected = [
        ("vwe_acquire_total", "launch_type", {"warm", "cold"}),
        ("vwe_recycled_total", "reason", {"max_uses", "unhealthy"}),
        ("vwe_container_failures_total", "phase", {"boot"}),
        ("vwe_boot_duration_seconds_count", "outcome", {"ready", "failed"}),
        ("vwe_jobs_total", "status", {"succeeded", "cached", "rejected", "retried"}),
        ("vwe_http_requests_total", "code", {"200", "202", "404", "422", "429"}),
    ]
    failures = []
    for metric, label, wanted in expected:
        seen = prom.labels(f'{metric}{{job="vwe-pool"}}', label)
        if not wanted <= seen:
            failures.append(f"{metric}: {label} {sorted(wanted - seen)} never seen "
                            f"(seen {sorted(seen)})")
    phases = prom.labels('vwe_container_failures_total{job="vwe-pool"}', "phase")
    if not phases & {"handoff", "generation"}:
        failures.append(f"vwe_container_failures_total: no handoff/generation failure "
                        f"(seen {sorted(phases)})")
    return failures


def kill(docker_client: docker.DockerClient, name: str) -> bool:
    try:
        docker_client.containers.get(name).kill()
        return True
    except docker.errors.NotFound:
        return False  # not created yet, or already removed
    except docker.errors.APIError:
        return False  # created but not started yet, or already stopping


def seed() -> str:
    return uuid.uuid4().hex[:10]


def fail_boots_until_alert(d: DaemonProcess, prom: PrometheusProcess,
                           docker_client: docker.DockerClient, timeout: float = 45) -> int:
    """Kill booting containers until VweBootFailuresRepeated fires; return how many."""
    firing = 'ALERTS{alertname="VweBootFailuresRepeated", alertstate="firing"}'
    killed: set[str] = set()
    deadline = time.monotonic() + timeout
    while not prom.query(firing)["data"]["result"]:
        assert time.monotonic() < deadline, (
            f"VweBootFailuresRepeated did not fire after {len(killed)} boot kills")
        for c in pool_state(d.url)["containers"]:
            if (c["state"] == "booting" and c["name"] not in killed
                    and kill(docker_client, c["name"])):
                killed.add(c["name"])
        time.sleep(0.05)
    return len(killed)


def kill_mid_job(d: DaemonProcess, docker_client: docker.DockerClient,
                 redis_client: redis.Redis) -> None:
    """A long job whose container is killed while it generates: a generation failure, a retry."""
    job_id = submit(d.url, seed(), resolution=4096).json()["job_id"]
    key = f"{d.env['VWE_POOL_NAME']}:job:{job_id}"

    def running_in() -> str | None:
        if get_job(d.url, job_id)["status"] != "running":
            return None
        name = redis_client.hget(key, "container")
        return name.decode() if isinstance(name, bytes) else name

    victim = eventually(running_in, timeout=30, interval=0.02)
    assert kill(docker_client, victim)
    done = wait_job(d.url, job_id, timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] >= 2, done


def burst_until_rejected(d: DaemonProcess, tries: int = 5) -> list[str]:
    """Concurrent submissions past VWE_QUEUE_MAX: some are answered 429."""
    accepted: list[str] = []
    for _ in range(tries):
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            answers = list(ex.map(lambda _: submit(d.url, seed(), resolution=1024), range(6)))
        accepted += [a.json()["job_id"] for a in answers if a.status_code == 202]
        if any(a.status_code == 429 for a in answers):
            return accepted
    pytest.fail(f"no 429 in {tries} bursts of 6 submissions")


def drive_traffic(d: DaemonProcess, seconds: float) -> list[dict[str, Any]]:
    """Pairs of concurrent jobs (one warm, one cold when the pool has one warm container),
    a cached request and caller errors, for `seconds`."""
    done: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            ids = [a.json()["job_id"] for a in ex.map(
                lambda _: submit(d.url, seed(), resolution=512), range(2))]
            done += list(ex.map(lambda i: wait_job(d.url, i, timeout=60), ids))
        cached = submit(d.url, done[-1]["seed"], resolution=512)
        assert cached.status_code == 200 and cached.json()["cached"] is True, cached.text
        assert submit(d.url, "eleven-chars").status_code == 422
        assert httpx.get(f"{d.url}/v1/jobs/{'0' * 32}", timeout=10).status_code == 404
        time.sleep(0.3)
    return done


@pytest.mark.timeout(300)
def test_every_dashboard_expression_has_data_in_a_live_prometheus(
    daemon_factory: Callable[..., DaemonProcess],
    prometheus_factory: Callable[[str], PrometheusProcess],
    docker_client: docker.DockerClient, redis_client: redis.Redis,
) -> None:
    d = daemon_factory(
        VWE_POOL_SIZE="1", VWE_POOL_MAX="2",
        VWE_MAX_USES="1",  # every container is retired after one job: vwe_recycled_total
        VWE_AUTOSCALE="true", VWE_POOL_MIN="1",  # vwe_autoscale_target, never below one warm
        VWE_QUEUE_MAX="2",  # bursts get 429
        VWE_WORKER_READY_DELAY_S="1",  # booting containers live long enough to be killed
        VWE_BOOT_BACKOFF_S="0.2", VWE_BOOT_BACKOFF_MAX_S="2",
    ).start(wait_warm=1)
    prom = prometheus_factory(f"127.0.0.1:{d.port}").start()
    eventually(lambda: prom.query('up{job="vwe-pool"} == 1')["data"]["result"], timeout=20)

    # A warm container killed from outside: the health probe retires it (unhealthy); its
    # replacements are killed while booting until the boot-failure alert fires.
    (warm,) = warm_names(d.url)
    assert kill(docker_client, warm)
    boot_kills = fail_boots_until_alert(d, prom, docker_client)
    assert boot_kills >= 3

    eventually(lambda: warm_names(d.url), timeout=30)
    kill_mid_job(d, docker_client, redis_client)
    for job_id in burst_until_rejected(d):
        assert wait_job(d.url, job_id, timeout=60)["status"] == "succeeded"
    jobs = drive_traffic(d, TRAFFIC_S)
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    assert {j["launch_type"] for j in jobs} == {"warm", "cold"}

    exprs = dashboard_exprs(substitutions=EXPR_SUBSTITUTIONS)
    assert len(exprs) > 20 and any(t.startswith("annotation:") for t, _ in exprs)
    # A scrape and a rule evaluation after the last event; then every panel must have data.
    deadline = time.monotonic() + 20
    while True:
        failures = panel_failures(prom, exprs) + coverage_failures(prom)
        if not failures or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not failures, (
        f"{len(failures)} of {len(exprs)} dashboard expressions (or expected series) show "
        f"no data:\n  " + "\n  ".join(failures))
