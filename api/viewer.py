"""The world viewer: `GET /` (and `/?seed=...`), a page that submits a seed, follows the job and
shows the world on a Leaflet map (docs/architecture.md, "World viewer").

The page is three static files under ``api/static/viewer`` and Leaflet itself, served from the
folder of Debian's ``libjs-leaflet`` (``VWE_VIEWER_LEAFLET_DIR``, installed by the project's
set-up scripts). Nothing is fetched from the internet: the page's Content-Security-Policy allows
only this origin (plus ``data:``/``blob:`` images), so a stray outside URL fails loudly in the
browser instead of leaking a request.

The page talks to the API only through its public routes (``POST /v1/worlds``,
``GET /v1/jobs/{id}?wait=``, the artifacts), so the viewer adds no route to the hot path; these
routes sit after the API's own in the routing table.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from api.errors import ApiError
from api.models import ErrorOut

STATIC_DIR = Path(__file__).resolve().parent / "static" / "viewer"
PAGE = STATIC_DIR / "index.html"

# Same-origin only: the acceptance rule "no request leaves the machine", enforced by the browser.
# Leaflet positions tiles and controls with inline styles, hence 'unsafe-inline' for styles
# (never for scripts).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

viewer_router = APIRouter()


class StaticMount(Mount):
    """A mount that names itself as the request's route, so the HTTP metrics count its files
    under its path (``/static/viewer``) rather than as unmatched requests."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


@viewer_router.get("/", response_class=HTMLResponse, tags=["viewer"],
                   responses={503: {"model": ErrorOut, "description": "The server is at its "
                                    "concurrency limit (api/httpguard.py); retry shortly"}},
                   summary="The world viewer: type a seed, watch it generate, explore the map "
                           "(`/?seed=...` opens a seed directly)")
async def viewer_page() -> HTMLResponse:
    # Read per request (a few KiB, and only people load it): an edited page shows on reload.
    return HTMLResponse(PAGE.read_bytes(), headers=PAGE_HEADERS)


def viewer_routes(leaflet_dir: Path) -> list[BaseRoute]:
    """The page route and its static mounts: ``/static/viewer/*`` (the page's script and
    style) and ``/static/leaflet/*`` (Leaflet from ``leaflet_dir``). A missing ``leaflet_dir``
    is not an error at start-up (the API still serves jobs); its files then answer 404 and the
    page says that the map library is not installed."""
    leaflet: BaseRoute
    if (leaflet_dir / "leaflet.min.js").is_file():
        leaflet = StaticMount("/static/leaflet", StaticFiles(directory=leaflet_dir),
                              name="leaflet")
    else:
        async def missing(_: Request) -> None:
            raise ApiError(404, "leaflet_missing",
                           f"the map library is not installed: no leaflet.min.js in {leaflet_dir} "
                           "(apt-get install libjs-leaflet, or set VWE_VIEWER_LEAFLET_DIR)")
        leaflet = Route("/static/leaflet/{path:path}", missing, name="leaflet")
    return [
        *viewer_router.routes,
        StaticMount("/static/viewer", StaticFiles(directory=STATIC_DIR), name="viewer-static"),
        leaflet,
    ]
