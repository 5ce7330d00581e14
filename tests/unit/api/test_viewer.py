"""The viewer's routes on their own (no Redis): the page, its static files, Leaflet, and what
happens when Leaflet is not installed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import errors
from api.viewer import STATIC_DIR, viewer_routes

pytestmark = pytest.mark.unit


def client_for(leaflet_dir: Path) -> httpx.AsyncClient:
    app = FastAPI(routes=viewer_routes(leaflet_dir))
    errors.install(app)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://viewer")


@pytest.fixture
def leaflet_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "leaflet"
    folder.mkdir()
    (folder / "leaflet.min.js").write_text("window.L = {};\n")
    (folder / "leaflet.css").write_text(".leaflet-container {}\n")
    return folder


async def test_page_is_html_that_may_only_load_from_its_own_origin(leaflet_dir: Path) -> None:
    r = await client_for(leaflet_dir).get("/", params={"seed": "MWd8eV6svz"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no inline or outside scripts
    # Every resource the page names is a path on this origin, never a URL elsewhere.
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert refs and all(ref.startswith("/") or ref == "data:," for ref in refs), refs


async def test_every_file_the_page_loads_is_served(leaflet_dir: Path) -> None:
    client = client_for(leaflet_dir)
    page = (await client.get("/")).text
    for ref in re.findall(r'(?:src|href)="(/[^"]+)"', page):
        r = await client.get(ref)
        assert r.status_code == 200, ref
    # The modules import each other by relative path: each of those is served too.
    for module in STATIC_DIR.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert (await client.get(f"/static/viewer/{imported}")).status_code == 200, imported
    r = await client.get("/static/viewer/viewer.js")
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))


async def test_missing_leaflet_is_a_404_that_says_what_to_install(tmp_path: Path) -> None:
    r = await client_for(tmp_path / "absent").get("/static/leaflet/leaflet.min.js")
    assert r.status_code == 404
    body = r.json()["error"]
    assert body["code"] == "leaflet_missing" and "libjs-leaflet" in body["message"]


async def test_static_files_do_not_leave_their_folder(leaflet_dir: Path) -> None:
    client = client_for(leaflet_dir)
    assert (await client.get("/static/viewer/../viewer.py")).status_code == 404
    assert (await client.get("/static/viewer/%2e%2e/viewer.py")).status_code == 404


async def test_static_files_are_counted_under_their_mount(leaflet_dir: Path) -> None:
    seen: list[str] = []

    async def record(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        seen.append(getattr(scope.get("route"), "path", "unmatched"))

    app = FastAPI(routes=viewer_routes(leaflet_dir))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=record), base_url="http://v")
    await client.get("/static/viewer/viewer.js")
    await client.get("/static/leaflet/leaflet.min.js")
    await client.get("/")
    assert seen == ["/static/viewer", "/static/leaflet", "/"]
