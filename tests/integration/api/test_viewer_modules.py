"""The viewer's own JavaScript, run in the real headless Chromium: the .npy reader against files
numpy itself writes, and the river centre lines against the game's rule. The viewer's routes
are served by uvicorn alone (no Redis or Docker needed for static files)."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from browser import Browser
from conftest import free_port
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api import errors
from api.viewer import viewer_routes
from pool.infra.settings import Settings

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def serve_viewer(leaflet_dir: Path) -> Iterator[str]:
    """The viewer's routes alone, served by uvicorn in a thread; yields the base URL."""
    app = FastAPI(routes=viewer_routes(leaflet_dir))
    errors.install(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    assert httpx.get(f"{url}/static/viewer/npy.js").status_code == 200
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def viewer_url() -> Iterator[str]:
    with serve_viewer(Settings(_env_file=None).viewer_leaflet_dir) as url:
        yield url


@pytest.fixture(scope="module")
def page(viewer_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    # One browser for the module: these tests only run scripts in the page.
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    b.driver.get(f"{viewer_url}/")
    yield b
    assert b.console_errors() == [] and b.outside_requests() == []
    b.quit()


PARSE = """
const [b64, done] = arguments;
import("/static/viewer/npy.js").then(({ parseNpy }) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    const { shape, data } = parseNpy(bytes.buffer);
    // JSON has no -0: send it as a string, so signs of zero are compared too.
    const values = Array.from(data, (v) => (Object.is(v, -0) ? "-0" : v));
    done({ shape, data: values, type: data.constructor.name });
  } catch (err) { done({ error: err.message }); }
});
"""


def parse_in_browser(browser: Browser, raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = browser.driver.execute_async_script(
        PARSE, base64.b64encode(raw).decode())
    return result


def npy_bytes(array: np.ndarray[Any, Any], version: tuple[int, int] | None = None) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, version=version, allow_pickle=False)
    return out.getvalue()


@pytest.mark.parametrize(("array", "typed"), [
    (np.array([[1, 2, 4], [256, 512, 0]], dtype=np.uint16), "Uint16Array"),
    (np.array([[-400.0, 23.619], [457.0, -0.0]], dtype=np.float32), "Float32Array"),
    (np.arange(7, dtype=np.uint8), "Uint8Array"),
    (np.array([1e-300, -2.5], dtype=np.float64), "Float64Array"),
])
def test_npy_reader_reads_what_numpy_writes(page: Browser, array: np.ndarray[Any, Any],
                                            typed: str) -> None:
    for version in (None, (2, 0)):
        got = parse_in_browser(page, npy_bytes(array, version))
        assert got.get("error") is None, got
        assert got["shape"] == list(array.shape) and got["type"] == typed
        values = [float(v) if isinstance(v, str) else v for v in got["data"]]
        back = np.array(values, dtype=array.dtype).reshape(array.shape)
        assert back.tobytes() == array.tobytes()  # bit for bit, signs of zero included


def test_npy_reader_names_what_it_cannot_read(page: Browser) -> None:
    fortran = np.asfortranarray(np.arange(6, dtype=np.uint16).reshape(2, 3))
    assert "Fortran" in parse_in_browser(page, npy_bytes(fortran))["error"]
    assert "bad magic" in parse_in_browser(page, b"PK\x03\x04 not numpy")["error"]
    complex_ = npy_bytes(np.zeros(2, dtype=np.complex64))
    assert "unsupported .npy dtype <c8" in parse_in_browser(page, complex_)["error"]
    truncated = npy_bytes(np.zeros((4, 4), dtype=np.uint16))[:-5]
    assert "shorter than its header" in parse_in_browser(page, truncated)["error"]


RIVER = """
const [river, done] = arguments;
import("/static/viewer/terrain.js").then(({ riverLine }) => done(riverLine(river)));
"""


def test_river_centre_line_follows_the_games_river_points(page: Browser) -> None:
    # WorldGenerator.RenderRivers: point at distance s from p0 along the river, pushed sideways
    # (to the left of p0 -> p1) by sin(t) sin(0.63412 t) sin(0.33412 t) curve_width,
    # t = s / curve_wavelength.
    p0, p1 = (1000.0, -200.0), (1000.0 + 600.0, -200.0 + 800.0)  # 1000 m long
    river = {"p0": list(p0), "p1": {"x": p1[0], "y": p1[1]}, "width_min": 60, "width_max": 90,
             "curve_width": 1000 / 15, "curve_wavelength": 1000 / 20}
    line = page.driver.execute_async_script(RIVER, river)
    assert len(line) >= 25
    assert line[0] == pytest.approx([p0[1], p0[0]])
    # The last point is abreast of p1 (the game's points too end there, wiggle included).
    z_end, x_end = line[-1]
    assert (x_end - p0[0]) * 0.6 + (z_end - p0[1]) * 0.8 == pytest.approx(1000.0)
    nx, nz = 0.6, 0.8
    for z, x in line:
        s = (x - p0[0]) * nx + (z - p0[1]) * nz  # along the river
        side = -(x - p0[0]) * nz + (z - p0[1]) * nx  # to its left
        t = s / river["curve_wavelength"]
        expected = math.sin(t) * math.sin(t * 0.63412) * math.sin(t * 0.33412) * 1000 / 15
        assert side == pytest.approx(expected, abs=1e-6)
    assert max(abs(-(x - p0[0]) * nz + (z - p0[1]) * nx) for z, x in line) > 10


def test_without_leaflet_the_page_says_what_is_missing(page: Browser, tmp_path: Path) -> None:
    with serve_viewer(tmp_path / "no-leaflet") as url:
        page.driver.get(f"{url}/")
        WebDriverWait(page.driver, 10).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "error")
        notice = page.driver.find_element(By.ID, "notice")
        assert notice.is_displayed() and "libjs-leaflet" in notice.text
        # The only console errors are the 404s of Leaflet's script and style themselves.
        errors_ = page.console_errors()
        page.console.clear()
        assert sorted(e["message"].split(" - ")[0].rsplit("/", 1)[1] for e in errors_) == [
            "leaflet.css", "leaflet.min.js"], errors_
