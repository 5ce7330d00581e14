"""Prometheus metrics: event counters and histograms here, pool gauges computed at scrape time.

Each daemon owns one `Metrics` (its own registry), so several can live in one test process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pool.core.states import FailurePhase, LaunchType, RecycleReason

# Warm handoffs are sub-millisecond; cold ones pay a boot of seconds to minutes.
ACQUIRE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
BOOT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 20, 25, 30, 45, 60, 90, 120, 180, 300)
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

POOL_STATES = ("booting", "warm", "busy", "retiring")
JOB_STATUSES = ("succeeded", "failed", "cached", "rejected", "retried")
BOOT_OUTCOMES = ("ready", "failed", "timeout")


class PoolSnapshot(Protocol):
    """What the scrape-time collector reads from the live pool."""

    template: str

    def state_counts(self) -> dict[str, int]: ...
    def target(self) -> int: ...
    def cap(self) -> int: ...
    def queue_depth(self) -> int: ...
    def component_up(self) -> dict[str, bool]: ...
    def autoscale_choice(self) -> tuple[int, str] | None: ...


class PoolCollector(Collector):
    def __init__(self) -> None:
        self.pools: list[PoolSnapshot] = []

    def collect(self) -> Iterator[Metric]:
        containers = GaugeMetricFamily("vwe_pool_containers",
                                       "Containers the pool tracks, by state",
                                       labels=["template", "state"])
        target = GaugeMetricFamily("vwe_pool_target", "Warm target", labels=["template"])
        cap = GaugeMetricFamily("vwe_pool_max", "Hard cap on containers", labels=["template"])
        depth = GaugeMetricFamily("vwe_queue_depth", "Jobs accepted and not yet running")
        up = GaugeMetricFamily("vwe_up", "Dependency reachable (1) or not (0)",
                               labels=["component"])
        autoscale = GaugeMetricFamily("vwe_autoscale_target",
                                      "Warm target the autoscaler chose, with its reason",
                                      labels=["template", "reason"])
        # One pool per template: the unlabelled series are the sum (queue depth) or all-of
        # (up) over the process's pools, so each is exposed once whatever the templates.
        waiting = 0
        components: dict[str, bool] = {}
        for pool in self.pools:
            counts = pool.state_counts()
            for state in POOL_STATES:
                containers.add_metric([pool.template, state], counts.get(state, 0))
            target.add_metric([pool.template], pool.target())
            cap.add_metric([pool.template], pool.cap())
            waiting += pool.queue_depth()
            for component, ok in pool.component_up().items():
                components[component] = components.get(component, True) and ok
            choice = pool.autoscale_choice()
            if choice is not None:
                autoscale.add_metric([pool.template, choice[1]], choice[0])
        if self.pools:
            depth.add_metric([], waiting)
        for component, ok in components.items():
            up.add_metric([component], 1.0 if ok else 0.0)
        yield from (containers, target, cap, depth, up, autoscale)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.acquire_total = Counter("vwe_acquire_total", "Containers acquired for jobs",
                                     ["template", "launch_type"], registry=r)
        self.acquire_duration = Histogram(
            "vwe_acquire_duration_seconds", "Job taken off the queue -> agent accepted it",
            ["template", "launch_type"], buckets=ACQUIRE_BUCKETS, registry=r)
        self.boot_duration = Histogram(
            "vwe_boot_duration_seconds", "Container create -> agent ready",
            ["template", "outcome"], buckets=BOOT_BUCKETS, registry=r)
        self.generation_duration = Histogram(
            "vwe_generation_duration_seconds", "The agent's own generation time",
            ["template"], buckets=GENERATION_BUCKETS, registry=r)
        self.job_duration = Histogram(
            "vwe_job_duration_seconds", "Accepted by the API -> result recorded",
            ["launch_type"], buckets=JOB_BUCKETS, registry=r)
        self.queue_wait = Histogram("vwe_queue_wait_seconds", "Accepted -> taken by a daemon",
                                    buckets=QUEUE_BUCKETS, registry=r)
        self.jobs_total = Counter("vwe_jobs_total", "Jobs by outcome", ["status"], registry=r)
        self.recycled_total = Counter("vwe_recycled_total", "Containers retired, by reason",
                                      ["template", "reason"], registry=r)
        self.container_failures = Counter(
            "vwe_container_failures_total", "Container failures, by phase",
            ["template", "phase"], registry=r)
        self.takeovers = Counter(
            "vwe_takeovers_total",
            "Containers taken over from a dead daemon (compare-and-set on the owner record)",
            ["template"], registry=r)
        self.fenced = Counter(
            "vwe_fenced_containers_total",
            "Containers this daemon stopped using: another daemon holds a newer token",
            ["template"], registry=r)
        self.lease_lost = Counter(
            "vwe_lease_lost_total",
            "Times this daemon's instance lease lapsed (silent past VWE_HEARTBEAT_TTL_S) or "
            "was taken", registry=r)
        self.http_requests = Counter("vwe_http_requests_total", "HTTP API requests",
                                     ["method", "route", "code"], registry=r)
        self.http_duration = Histogram("vwe_http_request_duration_seconds",
                                       "HTTP API request duration", ["method", "route"],
                                       buckets=HTTP_BUCKETS, registry=r)
        # Supervised tasks and periodic jobs that failed (pool/supervisor.py).
        self.task_restarts = Counter("vwe_task_restarts_total",
                                     "Supervised tasks and periodic jobs that failed and were "
                                     "restarted", ["task"], registry=r)
        self.pool_collector = PoolCollector()
        r.register(self.pool_collector)
        self._disk: Collector | None = None
        # Export every known label value at 0 from the start: rate() and increase() cannot see
        # the first increment of a series that appears already at 1.
        for status in JOB_STATUSES:
            self.jobs_total.labels(status)
        for launch_type in LaunchType:
            self.job_duration.labels(launch_type.value)
        self.http_requests.labels("POST", "/v1/worlds", "429")

    def init_template(self, template: str) -> None:
        """Create a template's series at 0, for the same reason."""
        for launch_type in LaunchType:
            self.acquire_total.labels(template, launch_type.value)
            self.acquire_duration.labels(template, launch_type.value)
        for outcome in BOOT_OUTCOMES:
            self.boot_duration.labels(template, outcome)
        for reason in RecycleReason:
            self.recycled_total.labels(template, reason.value)
        for phase in FailurePhase:
            self.container_failures.labels(template, phase.value)
        self.takeovers.labels(template)
        self.fenced.labels(template)
        self.generation_duration.labels(template)

    def watch_disk(self, collector: Collector) -> None:
        """Export the data folder's disk use (pool/worlds.py `DiskCollector`), once."""
        if self._disk is None:
            self._disk = collector
            self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
