"""The HTTP contract around the routes: JSON-only request bodies, CORS, 405 with a true Allow
header, and an OpenAPI description that says every status code the API answers with
(docs/architecture.md, "HTTP API" and "Trust boundaries").

- ``POST`` and ``PATCH`` take ``application/json`` only (415 otherwise): a browser can send
  ``text/plain`` or a form cross-site without asking, but not JSON, so no page can make a
  visitor's browser submit jobs or change the pool.
- CORS is off unless ``VWE_CORS_ORIGINS`` lists origins (Starlette's `CORSMiddleware`).
- Starlette answers 405 with the ``Allow`` of the first route whose path matched, so
  ``GET /v1/pool`` and ``PATCH /v1/pool`` (two routes) each hid the other; the handler here
  lists the methods of every route of that path.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from api.errors import ApiError, error

JSON_TYPE = b"application/json"


def require_json(request: Request) -> None:
    """Refuse a body that is not ``application/json`` (parameters such as charset allowed).

    Raises:
        ApiError: 415 ``unsupported_media_type`` naming what was sent.
    """
    # The raw header list: this runs on the hot path of POST /v1/worlds.
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            if value.split(b";", 1)[0].strip().lower() == JSON_TYPE:
                return
            shown = value.decode("latin-1")[:60]
            break
    else:
        shown = "none"
    raise ApiError(415, "unsupported_media_type",
                   f"the body must be JSON sent as 'Content-Type: application/json' (got {shown})")


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """The methods of every route whose path matches ``scope``'s."""
    methods: set[str] = set()
    probe = {**scope, "type": "http"}
    for route in app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(probe)
            if match in (Match.FULL, Match.PARTIAL):
                methods |= route.methods
    return sorted(methods)


def install(app: FastAPI, cors_origins: list[str]) -> None:
    """Add the 405 handler, CORS (when origins are configured) and the OpenAPI additions."""

    @app.exception_handler(405)
    async def method_not_allowed(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        allow = ", ".join(allowed_methods(app, dict(request.scope)))
        return error(405, "method_not_allowed",
                     f"{request.method} is not allowed here; allowed: {allow}", {"Allow": allow})

    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins,
                           allow_methods=["GET", "POST", "PATCH"],
                           allow_headers=["Content-Type", "Authorization"], max_age=600)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "admin": {"type": "http", "scheme": "bearer",
                          "description": "VWE_API_TOKEN; unset: admin routes answer 403"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
