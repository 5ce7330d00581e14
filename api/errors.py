"""The error model: every error is `{"error": {"code", "message"}}`; never a 500 for bad input."""

from __future__ import annotations

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.state import api_state
from pool.core.exceptions import NotReplicated, QueueFull, RuntimeUnavailable, StoreUnavailable
from pool.infra.logs import get_logger

log = get_logger("vwe.api")

# Seconds a client is asked to wait when the queue is full.
RETRY_AFTER_S = 5


def error(status: int, code: str, message: str,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else None


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid_request", _describe(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                403: "forbidden"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(QueueFull)
    async def full(request: Request, exc: QueueFull) -> JSONResponse:
        api_state(request).metrics.jobs_total.labels("rejected").inc()
        return error(429, "queue_full", f"{exc}; retry in {RETRY_AFTER_S} s",
                     {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(NotReplicated)
    async def not_replicated(_: Request, exc: NotReplicated) -> JSONResponse:
        log.warning("submit not confirmed by enough replicas", error=str(exc))
        return error(503, "not_replicated",
                     f"{exc}; the job was not acknowledged (it may still run): retry shortly, "
                     "the same request joins the same job",
                     {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(redis.exceptions.MaxConnectionsError)
    async def busy(request: Request, exc: Exception) -> JSONResponse:
        # Every connection of this process's pool stayed busy for VWE_REDIS_POOL_TIMEOUT_S:
        # load, not an outage (pool/store/redis_client.py).
        log.warning("redis connection pool exhausted", error=str(exc))
        return error(503, "busy", f"the server is busy{_nothing_done(request)}, retry shortly",
                     {"Retry-After": "1"})

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis unreachable", error=repr(exc))
        return error(503, "redis_unavailable",
                     f"the job store (Redis) is unreachable{_nothing_done(request)}, "
                     "retry shortly", {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(RuntimeUnavailable)
    async def docker_down(_: Request, exc: Exception) -> JSONResponse:
        return error(503, "docker_unavailable", str(exc), {"Retry-After": str(RETRY_AFTER_S)})


def _nothing_done(request: Request) -> str:
    """What a refused request left undone, for the methods that change something."""
    return {"POST": "; nothing was accepted", "PATCH": "; nothing was changed"}.get(
        request.method, "")
