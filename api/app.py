"""The FastAPI application: routes, error model and request metrics over an `ApiState`."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import contract, errors
from api.routes import busy_router, router
from api.state import ApiState
from api.viewer import viewer_routes
from pool import __version__
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings

Role = Literal["all", "api", "worker"]
# What a `worker` serves: it takes no jobs over HTTP (docs/deploy.md, "Roles").
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def routes_for(role: Role, settings: Settings) -> list[BaseRoute]:
    """`all` and `api`: every route; `worker`: only the operational ones (`OPS_PATHS`)."""
    routes = [*busy_router.routes, *router.routes, *viewer_routes(settings.viewer_leaflet_dir)]
    if role == "worker":
        routes = [r for r in routes if getattr(r, "path", None) in OPS_PATHS]
    return routes


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


def create_app(state: ApiState, role: Role = "all") -> FastAPI:
    """The HTTP application over `state`, with the routes of `role`. It starts and stops
    nothing: the composition root (`pool.entry.root`) owns the process, so the app can also
    run in process in tests."""
    # The routes are handed over directly rather than through `include_router`, whose lazy
    # per-request resolution costs a cached answer about 10% of its CPU. OpenTelemetry is off:
    # Prometheus is this daemon's telemetry, and FastAPI's per-request check for a configured
    # OpenTelemetry provider costs another 6%.
    # FastAPIOffline: /docs and /redoc with Swagger UI and ReDoc served from the package, not
    # from a CDN (the daemon may have no internet, and the browser should fetch nothing else).
    app = FastAPIOffline(title="vwe-pool", version=__version__,
                  description="Warm-pool engine of the Valheim World Engine: a world for a "
                              "seed, now.",
                  routes=routes_for(role, state.settings),
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.api = state
    errors.install(app)
    contract.install(app, state.settings.cors_origin_list)
    app.add_middleware(HttpMetrics, metrics=state.metrics)
    return app
