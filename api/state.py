"""What the HTTP routes work with, built by the composition root and typed end to end.

`create_app` stores one `ApiState` on the application; routes reach it through `api_state`,
never through untyped `app.state` attributes. The pool is seen only through `PoolControl`, one
per template (docs/deploy.md, "Templates").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from prometheus_client import Counter, make_asgi_app
from starlette.types import ASGIApp

from api.answer_cache import AnswerCache
from api.waiters import JobWaiters
from pool.core.jobs import DEFAULT_TEMPLATE
from pool.core.ports import PoolControl
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.infra.supervisor import Supervisor
from pool.store.job_store import JobStore


@dataclass(frozen=True)
class TemplateApi:
    """One template as the API serves it: its job store (its queue), its pool, the map
    resolution and default job options its jobs get where a request gives none, and whether
    this process runs its pool (`/readyz` checks those)."""

    store: JobStore
    pool: PoolControl
    resolution: int
    defaults: dict[str, object] = field(default_factory=dict)
    local: bool = False


@dataclass
class ApiState:
    """`store` and `pool` are the `default` template's (job records are shared by every
    template, so any store finds a job by its id)."""

    settings: Settings
    metrics: Metrics
    store: JobStore
    waiters: JobWaiters
    pool: PoolControl
    answers: AnswerCache
    # The process's supervised components: `/readyz` names those that are down.
    supervisor: Supervisor
    # Every defined template by name; unset: `default` alone, from `store` and `pool`.
    templates: dict[str, TemplateApi] = field(default_factory=dict)
    # The labelled child, looked up once: a cached answer increments it on the hot path.
    cached_total: Counter = field(init=False)
    # GET /metrics: prometheus_client's ASGI app over this process's registry.
    metrics_app: ASGIApp = field(init=False)

    def __post_init__(self) -> None:
        if not self.templates:
            self.templates = {DEFAULT_TEMPLATE: TemplateApi(
                self.store, self.pool, self.settings.map_resolution)}
        self.cached_total = self.metrics.jobs_total.labels("cached")
        self.metrics_app = make_asgi_app(self.metrics.registry)


def api_state(request: Request) -> ApiState:
    """The application's `ApiState` (a FastAPI dependency, or called directly by a route)."""
    state: ApiState = request.app.state.api
    return state
