"""The routes of docs/architecture.md ("HTTP API"). Handlers stay thin: validate, one store
call, shape the answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.artifacts import DescriptorResponse, open_artifact
from api.auth import require_admin
from api.errors import RETRY_AFTER_S, ApiError
from api.models import (
    ContainerOut,
    ErrorOut,
    JobOut,
    PoolOut,
    PoolPatch,
    WorldRequest,
    job_body,
)
from api.state import ApiState, api_state
from pool.core.states import JobState
from worldgen import GENERATOR_VERSION
from worldgen.hashing import seed_from_text

router = APIRouter()
# The most of a request body read before answering 413; valid ones are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (404, 422, 429, 503)
}


def _check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise ApiError(422, "invalid_job_id", "job_id must be 32 lowercase hex characters")
    return job_id


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large",
                           f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class PlainRoute(APIRoute):
    """A route whose endpoint takes the `Request` and returns its own `Response`. FastAPI still
    documents it from the decorator (response_model, openapi_extra); what is skipped is
    dependency solving and response validation, a fifth of a cached answer's CPU."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


busy_router = APIRouter(route_class=PlainRoute)


@busy_router.post("/v1/worlds", status_code=202, response_model=JobOut,
                  responses={**ERRORS, 413: {"model": ErrorOut}},
                  summary="Generate the world for a seed (or get it from the cache)",
                  openapi_extra={"requestBody": {"required": True, "content": {
                      "application/json": {"schema": WorldRequest.model_json_schema()}}}})
async def submit_world(request: Request) -> Response:
    state = api_state(request)
    raw = await _read_body(request)
    # Bytes that led to a finished world lead there again: a repeated request is answered
    # from memory before it is even parsed.
    answer = state.answers.get(raw)
    if answer is None:
        try:
            body = WorldRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        options = body.options(state.settings.map_resolution)
        submission = await state.store.submit(body.seed, seed_from_text(body.seed),
                                              GENERATOR_VERSION, options)
        job = submission.job
        if submission.created or not job.finished:
            return Response(orjson.dumps(job_body(job)), status_code=202,
                            media_type="application/json")
        answer = orjson.dumps(job_body(job, cached=True))
        if job.status is JobState.SUCCEEDED and job.finished_at is not None:
            state.answers.put(raw, answer, job.finished_at + state.settings.result_ttl_s)
    state.cached_total.inc()
    return Response(answer, status_code=200, media_type="application/json")


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses=ERRORS,
            summary="A job; with ?wait=S, wait up to S seconds for it to finish")
async def get_job(job_id: str, request: Request,
                  wait: Annotated[float, Query(ge=0, le=300)] = 0) -> Any:
    _check_job_id(job_id)
    state = api_state(request)
    with state.waiters.watch(job_id) as finished:
        job = await state.store.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"no job {job_id} (unknown or expired)")
        if wait > 0 and not job.finished:
            # The wait ends when the job does, when the client hangs up (nothing more is read
            # for a gone client), or at shutdown (answered at once, below).
            gone = asyncio.ensure_future(_disconnected(request))
            try:
                async with asyncio.timeout(wait):
                    while not job.finished:
                        woken = asyncio.ensure_future(finished.wait())
                        await asyncio.wait((woken, gone), return_when=asyncio.FIRST_COMPLETED)
                        woken.cancel()
                        if gone.done():
                            return Response(status_code=499)  # nobody reads it
                        if state.waiters.closing:
                            raise ApiError(503, "shutting_down",
                                           "the server is shutting down; the job goes on: "
                                           "ask again shortly", retry_after=RETRY_AFTER_S)
                        finished.clear()
                        job = await state.store.get(job_id) or job
            except TimeoutError:
                pass
            finally:
                gone.cancel()
    return JobOut.of(job)


async def _disconnected(request: Request) -> None:
    """Returns when the client has hung up (ASGI `http.disconnect`)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


@router.get("/v1/jobs/{job_id}/artifacts/{name:path}", responses=ERRORS,
            response_class=Response, summary="One artifact of a finished job")
async def get_artifact(job_id: str, name: str,
                       state: Annotated[ApiState, Depends(api_state)]) -> Any:
    _check_job_id(job_id)
    job = await state.store.get(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id} (unknown or expired)")
    artifact = next((a for a in job.artifacts if a.name == name), None)
    if artifact is None:
        raise ApiError(404, "artifact_not_found",
                       f"job {job_id} has no artifact {name!r}; see the job's artifacts list")
    fd = open_artifact(Path(state.settings.worlds_dir), job_id, name,
                       state.settings.output_limits())
    return DescriptorResponse(fd, media_type=artifact.content_type,
                              filename=name.rsplit("/", 1)[-1])


async def _pool_out(state: ApiState) -> PoolOut:
    status = await state.pool.status()
    policy = status.policy
    return PoolOut(
        size=policy.size, max=policy.max, min=policy.min, target=status.target,
        autoscale=policy.autoscale, autoscale_reason=status.autoscale_reason,
        max_age_s=policy.max_age_s, max_uses=policy.max_uses, idle_ttl_s=policy.idle_ttl_s,
        surplus_idle_s=policy.surplus_idle_s, queue_depth=status.queue_depth,
        containers=[ContainerOut(**c) for c in status.containers],
    )


@router.get("/v1/pool", response_model=PoolOut, summary="The warm target, the cap, every container")
async def get_pool(state: Annotated[ApiState, Depends(api_state)]) -> PoolOut:
    return await _pool_out(state)


@router.patch("/v1/pool", response_model=PoolOut, dependencies=[Depends(require_admin)],
              responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, **ERRORS},
              summary="Change pool size and policy at run time (persists across restarts)")
async def patch_pool(patch: PoolPatch, state: Annotated[ApiState, Depends(api_state)]
                     ) -> PoolOut:
    current = await state.pool.policy()
    try:
        new = current.updated(**patch.model_dump(exclude_none=True))
    except ValueError as exc:
        raise ApiError(422, "invalid_policy", str(exc)) from None
    await state.pool.set_policy(new)
    return await _pool_out(state)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Can a job submitted now be taken? Says which check fails",
            responses={503: {"description": "not ready; `down` names the failing checks"}})
async def readyz(state: Annotated[ApiState, Depends(api_state)]) -> JSONResponse:
    """Ready means a job submitted now will be taken (docs/architecture.md, "Readiness"):
    Redis answers, the dispatcher and every supervised job are alive, the Docker engine
    answers, and the pool can run a job (a container warm or busy) or boot one."""
    results: dict[str, tuple[bool, str]] = {}
    try:
        async with asyncio.timeout(state.settings.redis_timeout_s * 2):
            results["redis"] = (await state.store.ping_or_raise(), "")
    except Exception as exc:
        results["redis"] = (False, f"{type(exc).__name__}: {exc}")
    if state.waiters.closing:
        results["shutdown"] = (False, "the server is shutting down")
    for name, why in state.supervisor.down().items():
        results[name] = (False, why)
    pool = await state.pool.readiness()
    results.update(pool.checks)
    body: dict[str, Any] = {}
    if pool.workers is not None:
        # Informational: jobs are accepted (and wait in the queue) with no worker alive.
        body["workers"] = pool.workers
    if pool.warm is not None:
        body["warm"] = pool.warm
    if pool.busy is not None:
        body["busy"] = pool.busy
    down = sorted(name for name, (ok, _) in results.items() if not ok)
    body.update({
        "status": "unavailable" if down else "ready",
        "checks": {name: ok for name, (ok, _) in results.items()},
        "down": down,
        "reasons": {name: results[name][1] or "failed" for name in down},
    })
    return JSONResponse(body, status_code=503 if down else 200)


class AsgiResponse(Response):
    """A response written by another ASGI application, which gets the request as it came."""

    def __init__(self, app: ASGIApp) -> None:  # the app sends its own status and headers
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@busy_router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
                 responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """prometheus_client's own ASGI app: the text or OpenMetrics format as the scraper asks,
    gzip when accepted, `name[]` filters."""
    return AsgiResponse(api_state(request).metrics_app)
