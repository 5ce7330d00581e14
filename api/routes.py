"""The routes of docs/architecture.md ("HTTP API"). Handlers stay thin: validate, one store
call, shape the answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from api.artifacts import DescriptorResponse, open_artifact
from api.auth import require_admin
from api.contract import require_json
from api.errors import RETRY_AFTER_S, ApiError
from api.models import (
    TEMPLATE_PATTERN,
    ContainerOut,
    ErrorOut,
    JobOut,
    PoolOut,
    PoolPatch,
    ReadyOut,
    WorldRequest,
    job_body,
)
from api.state import ApiState, TemplateApi, api_state
from pool.core.jobs import DEFAULT_TEMPLATE
from pool.core.ports import Readiness
from pool.core.states import JobState
from worldgen import GENERATOR_VERSION
from worldgen.hashing import seed_from_text

ModelT = TypeVar("ModelT", bound=BaseModel)
router = APIRouter()
# The most of a request body read before answering 413; valid ones are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
JOB_ID = re.compile(JOB_ID_PATTERN)
# An artifact's name: slash-separated components of [A-Za-z0-9._-], none starting with a dot
# (the output rules of pool/infra/safefs.py).
ARTIFACT_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"
MAX_WAIT_S = 300
WHY = {
    400: "The body is not valid JSON (or never arrived)", 401: "No admin token sent",
    403: "Admin routes disabled (VWE_API_TOKEN unset) or a wrong token",
    404: "No such job (unknown or expired) or artifact, or no such template "
         "(template_not_found)", 409: "The change conflicts with the "
    "pool's policy (e.g. size above max)", 413: "The body is larger than VWE_HTTP_MAX_BODY_BYTES",
    415: "The body is not sent as application/json", 422: "A value breaks the schema's rules",
    429: "The queue is full; retry after Retry-After seconds",
    503: "Redis or Docker unreachable, or the server is at its concurrency limit",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error codes, each with the error model."""
    return {code: {"model": ErrorOut, "description": WHY[code]} for code in codes}


ERRORS = errors(404, 422, 503)
JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="32 lowercase hex digits")]
TemplateName = Annotated[str, PathParam(pattern=TEMPLATE_PATTERN,
                                        description="A template of VWE_TEMPLATES_FILE")]


def _template(state: ApiState, name: str) -> TemplateApi:
    """The template `name`; 404 template_not_found (the request is well-formed: what it
    names does not exist) naming the defined ones."""
    template = state.templates.get(name)
    if template is None:
        raise ApiError(404, "template_not_found",
                       f"template: no template {name!r}; defined: "
                       f"{', '.join(sorted(state.templates))}")
    return template


def _check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise ApiError(422, "invalid_job_id", "job_id must be 32 lowercase hex characters")
    return job_id


def _parse(model: type[ModelT], raw: bytes) -> ModelT:
    """Validate a JSON body: 400 when it is not JSON at all, 422 (the error model, via
    `RequestValidationError`) when a value is wrong."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        if problems and problems[0]["type"] == "json_invalid":
            raise ApiError(400, "invalid_json",
                           f"the body is not valid JSON: {problems[0]['msg']}") from None
        raise RequestValidationError(problems) from None


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, "body_too_large",
                               f"request bodies are limited to {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left, or the HTTP guard closed a body that never finished (408 sent):
        # an answer for nobody, not an error in the log.
        raise ApiError(400, "body_incomplete", "the request body did not arrive") from None
    return b"".join(chunks)


class PlainRoute(APIRoute):
    """A route whose endpoint takes the `Request` and returns its own `Response`. FastAPI still
    documents it from the decorator (response_model, openapi_extra); what is skipped is
    dependency solving and response validation, a fifth of a cached answer's CPU."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


busy_router = APIRouter(route_class=PlainRoute)


@busy_router.post("/v1/worlds", status_code=202, response_model=JobOut,
                  responses={200: {"model": JobOut, "description": "That world was already "
                                   "generated: the finished job, with \"cached\": true"},
                             **errors(400, 404, 413, 415, 422, 429, 503)},
                  response_description="Accepted: the job is queued (or already running)",
                  summary="Generate the world for a seed (or get it from the cache)",
                  openapi_extra={"requestBody": {"required": True, "content": {
                      "application/json": {"schema": WorldRequest.model_json_schema()}}}})
async def submit_world(request: Request) -> Response:
    state = api_state(request)
    require_json(request)
    raw = await _read_body(request)
    # Bytes that led to a finished world lead there again: a repeated request is answered
    # from memory before it is even parsed.
    answer = state.answers.get(raw)
    if answer is None:
        body = _parse(WorldRequest, raw)
        template = _template(state, body.template)
        options = body.options(template.resolution, template.defaults)
        submission = await template.store.submit(body.seed, seed_from_text(body.seed),
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
async def get_job(job_id: JobId, request: Request,
                  wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, allow_inf_nan=False)] = 0,
                  ) -> Any:
    _check_job_id(job_id)
    state = api_state(request)
    # The server's own cap (VWE_API_MAX_WAIT_S) may be lower: the answer then comes earlier.
    wait = min(wait, state.settings.api_max_wait_s)
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


@router.get("/v1/jobs/{job_id}/artifacts/{name:path}",
            responses={200: {"description": "The file", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {}}}},
                **errors(400, 404, 422, 503),
                403: {"model": ErrorOut, "description": "The file failed the serve-time check "
                      "(a link or special file appeared after collection)"}},
            response_class=Response, summary="One artifact of a finished job")
async def get_artifact(job_id: JobId, request: Request,
                       name: Annotated[str, PathParam(pattern=ARTIFACT_NAME_PATTERN,
                                                      max_length=1024)]) -> Any:
    _check_job_id(job_id)
    state = api_state(request)
    job = await state.store.get(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id} (unknown or expired)")
    artifact = next((a for a in job.artifacts if a.name == name), None)
    if artifact is None:
        raise ApiError(404, "artifact_not_found",
                       f"job {job_id} has no artifact {name!r}; see the job's artifacts list")
    fd = open_artifact(Path(state.settings.worlds_dir), job_id, name,
                       state.settings.output_limits(), size=artifact.size,
                       finished_at=job.finished_at)
    return DescriptorResponse(fd, media_type=artifact.content_type,
                              filename=name.rsplit("/", 1)[-1])


async def _pool_out(state: ApiState, name: str) -> PoolOut:
    status = await _template(state, name).pool.status()
    policy = status.policy
    return PoolOut(
        template=name, size=policy.size, max=policy.max, min=policy.min, target=status.target,
        autoscale=policy.autoscale, autoscale_reason=status.autoscale_reason,
        max_age_s=policy.max_age_s, max_uses=policy.max_uses, idle_ttl_s=policy.idle_ttl_s,
        surplus_idle_s=policy.surplus_idle_s, queue_depth=status.queue_depth,
        containers=[ContainerOut(**c) for c in status.containers],
    )


@router.get("/v1/pool", response_model=PoolOut, responses=errors(503),
            summary="The default template's warm target, cap and every container")
async def get_pool(request: Request) -> PoolOut:
    return await _pool_out(api_state(request), DEFAULT_TEMPLATE)


@router.get("/v1/pool/{template}", response_model=PoolOut, responses=ERRORS,
            summary="One template's warm target, cap and every container")
async def get_template_pool(template: TemplateName, request: Request) -> PoolOut:
    return await _pool_out(api_state(request), template)


PATCH_DOC: dict[str, Any] = {"security": [{"admin": []}], "requestBody": {
    "required": True, "content": {"application/json": {"schema": PoolPatch.model_json_schema()}}}}


@busy_router.patch(
    "/v1/pool", response_model=PoolOut,
    responses=errors(400, 401, 403, 409, 413, 415, 422, 503),
    summary="Change the default template's pool size and policy at run time (persists "
            "across restarts)", openapi_extra=PATCH_DOC)
async def patch_pool(request: Request) -> Response:
    return await _patch_pool(request, DEFAULT_TEMPLATE)


@busy_router.patch(
    "/v1/pool/{template}", response_model=PoolOut,
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
    summary="Change one template's pool size and policy at run time (persists)",
    # A plain route declares no parameters of its own: the path's is documented here.
    openapi_extra={**PATCH_DOC, "parameters": [{
        "name": "template", "in": "path", "required": True,
        "description": "A template of VWE_TEMPLATES_FILE",
        "schema": {"type": "string", "pattern": TEMPLATE_PATTERN}}]})
async def patch_template_pool(request: Request) -> Response:
    return await _patch_pool(request, request.path_params["template"])


async def _patch_pool(request: Request, name: str) -> Response:
    # The token first, then the media type, then the template and the body: nobody without
    # the token gets the server to read or parse anything.
    require_admin(request)
    require_json(request)
    state = api_state(request)
    if not re.fullmatch(TEMPLATE_PATTERN, name):
        raise ApiError(422, "invalid_template", f"template must match {TEMPLATE_PATTERN}")
    pool = _template(state, name).pool
    patch = _parse(PoolPatch, await _read_body(request))
    current = await pool.policy()
    try:
        new = current.updated(**patch.model_dump(exclude_none=True))
    except ValueError as exc:
        # Each value was within its own bounds (422 otherwise): together with the rest of the
        # policy they conflict (e.g. size above max), which no schema can say.
        raise ApiError(409, "invalid_policy", str(exc)) from None
    await pool.set_policy(new)
    return Response((await _pool_out(state, name)).model_dump_json(),
                    media_type="application/json")


@router.get("/healthz", summary="The process is alive", responses=errors(503))
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut,
            responses={503: {"model": ReadyOut, "description": "Not ready: `down` names the "
                             "failing checks, `reasons` says why"}},
            summary="Can a job submitted now be taken? Says which check fails")
async def readyz(request: Request) -> JSONResponse:
    """Ready means a job submitted now will be taken (docs/architecture.md, "Readiness"):
    Redis answers, the dispatcher and every supervised job are alive, the Docker engine
    answers, and the pool can run a job (a container warm or busy) or boot one."""
    state = api_state(request)
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
    pool, warm_by_template = await _readiness(state)
    results.update(pool.checks)
    body: dict[str, Any] = {}
    if warm_by_template is not None:
        body["templates"] = warm_by_template
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


async def _readiness(state: ApiState) -> tuple[Readiness, dict[str, int] | None]:
    """The pools this process runs, together, and the warm containers of each template when
    it runs several; the default template's view when it runs none. With several, each one's
    checks are prefixed with its template's name and warm and busy are summed."""
    local = {name: t for name, t in state.templates.items() if t.local}
    if not local:
        return await state.pool.readiness(), None
    each = {name: await t.pool.readiness() for name, t in local.items()}
    if len(each) == 1:
        return next(iter(each.values())), None
    return Readiness(
        {f"{name}:{check}": result for name, r in each.items()
         for check, result in r.checks.items()},
        warm=sum(r.warm or 0 for r in each.values()),
        busy=sum(r.busy or 0 for r in each.values())), \
        {name: r.warm or 0 for name, r in each.items()}


class AsgiResponse(Response):
    """A response written by another ASGI application, which gets the request as it came."""

    def __init__(self, app: ASGIApp) -> None:  # the app sends its own status and headers
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@busy_router.get("/metrics", summary="Prometheus metrics (text exposition format 0.0.4)",
                 response_class=PlainTextResponse,
                 responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                            **errors(503)})
async def metrics(request: Request) -> Response:
    """prometheus_client's own ASGI app: the text or OpenMetrics format as the scraper asks,
    gzip when accepted, `name[]` filters."""
    return AsgiResponse(api_state(request).metrics_app)
