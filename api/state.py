"""What the HTTP routes work with, built by the composition root and typed end to end.

`create_app` stores one `ApiState` on the application; routes reach it through `api_state`,
never through untyped `app.state` attributes. The pool is seen only through `PoolControl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from prometheus_client import Counter, make_asgi_app
from starlette.types import ASGIApp

from api.answer_cache import AnswerCache
from api.waiters import JobWaiters
from pool.core.ports import PoolControl
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.infra.supervisor import Supervisor
from pool.store.job_store import JobStore


@dataclass
class ApiState:
    settings: Settings
    metrics: Metrics
    store: JobStore
    waiters: JobWaiters
    pool: PoolControl
    answers: AnswerCache
    # The process's supervised components: `/readyz` names those that are down.
    supervisor: Supervisor
    # The labelled child, looked up once: a cached answer increments it on the hot path.
    cached_total: Counter = field(init=False)
    # GET /metrics: prometheus_client's ASGI app over this process's registry.
    metrics_app: ASGIApp = field(init=False)

    def __post_init__(self) -> None:
        self.cached_total = self.metrics.jobs_total.labels("cached")
        self.metrics_app = make_asgi_app(self.metrics.registry)


def api_state(request: Request) -> ApiState:
    """The application's `ApiState` (a FastAPI dependency, or called directly by a route)."""
    state: ApiState = request.app.state.api
    return state
