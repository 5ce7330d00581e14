"""The FastAPI application; the daemon starts and stops inside its lifespan."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import contract, errors
from api.answer_cache import AnswerCache
from api.routes import busy_router, router
from api.viewer import viewer_routes
from api.waiters import JobWaiters
from pool import __version__
from pool.core.exceptions import ConfigError
from pool.daemon.service import Daemon
from pool.daemon.worlds import DiskCollector
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.infra.supervisor import Supervisor
from pool.store.job_store import JobStore
from pool.store.redis_client import RedisHealth, connect_redis

log = get_logger("vwe.api.app")

Role = Literal["all", "api", "worker"]
# What a `worker` serves: it takes no jobs over HTTP (docs/deploy.md, "Roles").
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def routes_for(role: Role, settings: Settings) -> list[BaseRoute]:
    """`all` and `api`: every route; `worker`: only the operational ones (`OPS_PATHS`)."""
    routes = [*busy_router.routes, *router.routes, *viewer_routes(settings.viewer_leaflet_dir)]
    if role == "worker":
        routes = [r for r in routes if getattr(r, "path", None) in OPS_PATHS]
    return routes

# A request allocates a few thousand short-lived objects; at the default 700 the collector
# runs several times per request. Cycles are rare here, so collecting less often costs little.
GC_YOUNG_THRESHOLD = 10_000


class HttpMetrics:
    """Counts requests by route template (not raw path, which would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled children, looked up once per label set: `labels()` validates, converts
        # and locks on every call, a measurable share of a cached answer. Same label sets as
        # the metrics themselves, so no new growth.
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            path = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            count = self._counts.get((method, path, status))
            if count is None:
                count = self._counts[method, path, status] = self.metrics.http_requests.labels(
                    method, path, str(status))
            count.inc()
            duration = self._durations.get((method, path))
            if duration is None:
                duration = self._durations[method, path] = self.metrics.http_duration.labels(
                    method, path)
            duration.observe(elapsed)


def begin_shutdown(app: FastAPI) -> None:
    """Called on SIGTERM/SIGINT before the server stops: open long-polls answer now (503 with
    Retry-After) instead of being cut off, and /readyz says not ready."""
    app.state.closing = True
    waiters = getattr(app.state, "waiters", None)
    if waiters is not None:
        waiters.close()


def create_app(settings: Settings, role: Role = "all") -> FastAPI:
    metrics = Metrics()
    metrics.watch_disk(DiskCollector(settings.data_dir))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor = Supervisor(metrics.task_restarts)
        health = RedisHealth()
        # Separate clients (and connection pools) for the HTTP handlers, the job-event
        # subscription and the daemon: none can starve another (pool/store/redis_client.py).
        redis = connect_redis(settings, "api", health)
        events = connect_redis(settings, "events", health)
        store = JobStore(redis, settings.pool_name, settings.result_ttl_s, settings.queue_max,
                         min_replicas=settings.redis_min_replicas,
                         wait_timeout_s=settings.redis_wait_timeout_s)
        await store.ensure_group()
        waiters = JobWaiters(events, store.events)
        if role != "worker":  # a worker serves no long polls
            supervisor.spawn("events", waiters.run)
        # `api` runs no pool and needs no Docker engine.
        daemon = (Daemon(settings, metrics, connect_redis(settings, "daemon", health),
                         supervisor=supervisor) if role in ("all", "worker") else None)
        app.state.settings, app.state.metrics, app.state.redis = settings, metrics, redis
        app.state.store, app.state.waiters, app.state.daemon = store, waiters, daemon
        app.state.supervisor, app.state.redis_health = supervisor, health
        app.state.role = role
        app.state.configured_policy = settings.pool_policy()
        app.state.answers = AnswerCache(settings.api_answer_cache_s)
        app.state.cached_total = metrics.jobs_total.labels("cached")
        app.state.shutdown_clean = None
        if daemon is not None:
            try:
                await daemon.start()
            except BaseException as exc:
                if isinstance(exc, ConfigError):  # a refused setting, a held instance id
                    log.error("refusing to start", error=str(exc))
                # Whatever it started (containers above all) is removed before giving up.
                await daemon.stop()
                await supervisor.stop()
                raise
        # Everything allocated so far lives as long as the process. Frozen, it is left out of
        # the collector's full passes, which otherwise scan ~80k objects for ~45 ms on this
        # kind of machine and show up as the p99 of every route.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        try:
            yield
        finally:
            # Never raises: every step runs whatever failed before it; the outcome becomes the
            # process's exit code (pool/entry/cli.py).
            waiters.close()
            clean = True
            if daemon is not None:
                clean = await daemon.stop()
            clean = await supervisor.stop() and clean
            for client in (events, redis):
                try:
                    await client.aclose()
                except Exception as exc:
                    log.warning("closing a redis client failed", error=repr(exc))
            app.state.shutdown_clean = clean

    # The routes are handed over directly rather than through `include_router`, whose lazy
    # per-request resolution costs a cached answer about 10% of its CPU. OpenTelemetry is off:
    # Prometheus is this daemon's telemetry, and FastAPI's per-request check for a configured
    # OpenTelemetry provider costs another 6%.
    app = FastAPI(title="vwe-pool", version=__version__, lifespan=lifespan,
                  description="Warm-pool engine of the Valheim World Engine: a world for a "
                              "seed, now.",
                  routes=routes_for(role, settings),
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    errors.install(app)
    contract.install(app, settings.cors_origin_list)
    app.add_middleware(HttpMetrics, metrics=metrics)
    return app
