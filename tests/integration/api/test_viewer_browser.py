"""The world viewer (`GET /`) in a real headless Chromium against a real daemon: type a seed,
watch it generate, read the cursor readout at a known point and check it against the world
generator, take desktop and phone screenshots; errors (invalid seed, full queue, Redis down)
shown as a person reads them. No console errors; no request leaves the machine."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import PHONE, Browser, colour_shares
from conftest import DaemonProcess
from ownprocs import RedisServer
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from worldgen import GENERATOR_VERSION
from worldgen.biomes import BIOME_NAMES, Biome
from worldgen.hashing import seed_from_text
from worldgen.mapimage import BIOME_COLOURS
from worldgen.world import World

pytestmark = pytest.mark.integration

SEED = "MWd8eV6svz"
# Where screenshots are also copied (e.g. to refresh docs/viewer.png); unset: only tmp_path.
SHOTS_DIR = os.environ.get("VWE_VIEWER_SHOTS")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "profile")
    yield b
    b.quit()


def _state(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").get_attribute("data-state"))


def wait_state(driver: WebDriver, *states: str, timeout: float = 60) -> str:
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: _state(d) in states, message=f"page never reached {states}")
    return _state(driver)


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def type_seed(driver: WebDriver, seed: str) -> None:
    box = driver.find_element(By.ID, "seed")
    box.clear()
    box.send_keys(seed, Keys.ENTER)


def world(seed: str) -> World:
    # The biome does not depend on pre-generation (lakes, rivers): skip it.
    return World(seed, pregenerate=False)


def biome_name(seed: str, x: float, z: float) -> str:
    """`World.biome` at one point, by the game's name."""
    return BIOME_NAMES[Biome(int(world(seed).biome(x, z)))]


def uniform_point(seed: str) -> tuple[float, float, Biome]:
    """A land point whose surroundings (+-250 m) are all one biome, so the biome there is the
    same whether looked up exactly or in the map's cell (up to 96 m wide at the tests'
    resolution) or a pixel off."""
    centres = np.arange(-7000.0, 7001.0, 500.0, dtype=np.float32)
    cx, cz = (a.ravel() for a in np.meshgrid(centres, centres))
    offsets = np.arange(-250.0, 251.0, 125.0, dtype=np.float32)
    ox, oz = (a.ravel() for a in np.meshgrid(offsets, offsets))
    codes = world(seed).biome(cx[:, None] + ox[None, :], cz[:, None] + oz[None, :])
    uniform = (codes == codes[:, :1]).all(axis=1) & (codes[:, 0] != Biome.OCEAN)
    k = int(np.flatnonzero(uniform)[0])
    return float(cx[k]), float(cz[k]), Biome(int(codes[k, 0]))


def point_at(browser: Browser, x: float, z: float, tap: bool = False) -> dict[str, int]:
    """Put the (real, Selenium-driven) mouse over world point (x, z), and click there when
    `tap`; return the readout once it shows a biome."""
    driver = browser.driver
    pixel = driver.execute_script(
        "const p = window.vweViewer.map.map.latLngToContainerPoint([arguments[1], arguments[0]]);"
        "return [p.x, p.y];", x, z)
    element = driver.find_element(By.ID, "map")
    size = element.size
    # Selenium 4 offsets are from the element's centre.
    dx, dy = round(pixel[0] - size["width"] / 2), round(pixel[1] - size["height"] / 2)
    actions = ActionChains(driver).move_to_element_with_offset(element, dx, dy)
    (actions.click() if tap else actions).perform()
    WebDriverWait(driver, 20).until(
        lambda d: text(d, "readout-biome") not in ("\u2013", "", "loading…"))
    return {"x": int(text(driver, "readout-x")), "z": int(text(driver, "readout-z"))}


def assert_shows_the_map(image_path: Path, browser: Browser) -> None:
    image = browser.screenshot(image_path)
    if SHOTS_DIR:
        shutil.copy(image_path, Path(SHOTS_DIR) / image_path.name)
    colours = {BIOME_NAMES[b]: c for b, c in BIOME_COLOURS.items()}
    shares = colour_shares(image, colours)
    shown = {name for name, share in shares.items() if share > 0.002}
    assert shares["Ocean"] > 0.02 and len(shown) >= 4, (image_path, shares)
    assert len(image.getcolors(maxcolors=image.width * image.height) or []) > 50, image_path


def test_seed_to_map_readout_matches_the_generator(
    daemon_factory: Callable[..., DaemonProcess], browser: Browser, tmp_path: Path,
) -> None:
    d = daemon_factory().start(wait_warm=1)
    driver = browser.driver
    driver.get(f"{d.url}/")
    assert wait_state(driver, "idle") == "idle"
    type_seed(driver, SEED)
    assert wait_state(driver, "ready", "error", "failed") == "ready", text(driver, "notice")
    assert driver.current_url.endswith(f"/?seed={SEED}")

    # The world panel: seed, its hash, the generator, a download link for every artifact.
    assert text(driver, "world-seed") == SEED
    assert text(driver, "world-seed-hash") == str(seed_from_text(SEED))
    assert text(driver, "world-generator") == GENERATOR_VERSION
    job_id = driver.find_element(By.TAG_NAME, "body").get_attribute("data-job-id")
    job = httpx.get(f"{d.url}/v1/jobs/{job_id}", timeout=10).json()
    links = {a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR,
                                                                   "#downloads a")}
    assert links == {d.url + a["url"] for a in job["artifacts"]}
    assert {"biomes.npy", "biomes.png", "world.json"} <= {a["name"] for a in job["artifacts"]}

    # The readout at a known point, against the generator itself.
    x, z, expected = uniform_point(SEED)
    read = point_at(browser, x, z)
    assert abs(read["x"] - x) <= 60 and abs(read["z"] - z) <= 60, (read, x, z)
    shown = text(driver, "readout-biome")
    assert shown == BIOME_NAMES[expected] == biome_name(SEED, read["x"], read["z"])
    # And at the centre (the spawn is always Meadows).
    point_at(browser, 0.0, 0.0)
    assert text(driver, "readout-biome") == biome_name(SEED, 0.0, 0.0) == "Meadows"
    # Past the world edge (10 500 m) the grid still answers, and the readout says where it is.
    read = point_at(browser, 11000.0, 0.0)
    assert text(driver, "readout-biome") == (
        f"{biome_name(SEED, read['x'], read['z'])} (beyond the world edge)")

    assert_shows_the_map(tmp_path / "viewer-desktop.png", browser)
    browser.resize(PHONE)
    driver.execute_script("window.vweViewer.map.map.invalidateSize();"
                          "window.vweViewer.map.map.fitBounds([[-10500,-10500],[10500,10500]]);")
    assert_shows_the_map(tmp_path / "viewer-phone.png", browser)
    assert driver.find_element(By.ID, "map").size["width"] <= PHONE[0]

    assert browser.console_errors() == []
    assert browser.outside_requests() == []
    assert any("/static/leaflet/leaflet.min.js" in u for u in browser.requests)


def test_errors_read_as_sentences(
    daemon_factory: Callable[..., DaemonProcess], browser: Browser, own_redis: RedisServer,
) -> None:
    # An API without workers and a one-job queue: the first seed waits, the second is refused.
    # Its Redis is the test's own: the test stops it.
    d = daemon_factory(VWE_REDIS_URL=own_redis.url(), VWE_QUEUE_MAX="1").start(role="api")
    driver = browser.driver
    driver.get(f"{d.url}/?seed=elevenchars")
    assert wait_state(driver, "invalid") == "invalid"
    error = driver.find_element(By.ID, "seed-error")
    assert error.is_displayed() and "at most 10 characters" in error.text

    type_seed(driver, "waiting")
    assert wait_state(driver, "waiting") == "waiting"
    WebDriverWait(driver, 10).until(lambda dr: "queued" in text(dr, "progress-text"))
    assert not driver.find_element(By.ID, "seed-error").is_displayed()

    type_seed(driver, "refused")
    assert wait_state(driver, "queue-full") == "queue-full"
    notice = text(driver, "notice")
    assert "queue is full (HTTP 429)" in notice and "Retrying in" in notice, notice

    own_redis.stop()
    type_seed(driver, "nostore")
    assert wait_state(driver, "unavailable", timeout=30) == "unavailable"
    notice = text(driver, "notice")
    assert "(HTTP 503)" in notice and "Redis" in notice, notice

    expected = ("/v1/worlds - Failed to load resource",)
    assert browser.console_errors(allowed=expected) == []
    assert browser.outside_requests() == []


def test_cached_seed_from_a_shared_link_shows_at_once_and_a_phone_loads_grids_on_tap(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path,
) -> None:
    d = daemon_factory().start(wait_warm=1)
    seed = "cached"
    job = httpx.post(f"{d.url}/v1/worlds", json={"seed": seed}, timeout=10).json()
    httpx.get(f"{d.url}/v1/jobs/{job['job_id']}", params={"wait": 60}, timeout=70)
    browser = Browser(tmp_path / "profile", size=PHONE)
    try:
        driver = browser.driver
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
        driver.get(f"{d.url}/?seed={seed}")
        assert wait_state(driver, "ready", "error", "failed") == "ready"
        assert "from the cache" in text(driver, "world-job")
        # Straight from the POST's 200 to the map: the page never long-polled the job.
        browser.collect()
        assert not [u for u in browser.requests if "/v1/jobs/" in u and "wait=" in u]
        assert driver.find_element(By.ID, "progress").get_attribute("hidden") is not None
        # A touch screen: the megabytes of grids wait for the first tap.
        assert driver.execute_script("return matchMedia('(pointer: coarse)').matches") is True
        assert not [u for u in browser.requests if u.endswith(".npy")], browser.requests
        x, z, expected = uniform_point(seed)
        read = point_at(browser, x, z, tap=True)
        assert text(driver, "readout-biome") == BIOME_NAMES[expected] == biome_name(
            seed, read["x"], read["z"])
        browser.collect()
        assert [u for u in browser.requests if u.endswith("/biomes.npy")]
        assert browser.console_errors() == [] and browser.outside_requests() == []
    finally:
        browser.quit()


# World(SEED) pre-generates lakes, rivers and streams before it answers a height: seconds on an
# idle machine, much longer on a loaded one (the terrain issue's World tests allow 600 s too).
@pytest.mark.timeout(600)
def test_terrain_relief_rivers_lakes_and_height_readout(
    daemon_factory: Callable[..., DaemonProcess], browser: Browser, tmp_path: Path,
) -> None:
    d = daemon_factory().start(wait_warm=1)
    driver = browser.driver
    driver.get(f"{d.url}/?seed={SEED}&terrain=1")  # a shared link asking for terrain
    assert wait_state(driver, "ready", "error", "failed", "invalid") == "ready", (
        text(driver, "notice"), text(driver, "seed-error"))
    assert driver.find_element(By.ID, "terrain").is_selected()
    job_id = driver.find_element(By.TAG_NAME, "body").get_attribute("data-job-id")
    job = httpx.get(f"{d.url}/v1/jobs/{job_id}", timeout=10).json()
    names = {a["name"] for a in job["artifacts"]}
    assert {"heights.npy", "relief.png", "rivers.json", "biomes.npy"} <= names
    links = {a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR,
                                                                   "#downloads a")}
    assert links == {d.url + a["url"] for a in job["artifacts"]}

    # Layers: the relief map shown, the biome map one click away, rivers and lakes drawn.
    rivers = httpx.get(f"{d.url}/v1/jobs/{job_id}/artifacts/rivers.json", timeout=10).json()
    shown = driver.execute_script("""
        const m = window.vweViewer.map;
        const count = (label) => m.overlays[label] ? m.overlays[label].getLayers().length : -1;
        return {bases: Object.keys(m.bases), overlays: Object.keys(m.overlays),
                relief: m.map.hasLayer(m.bases.Relief), rivers: count("Rivers"),
                lakes: count("Lakes"), streams: count("Streams"),
                streamsShown: m.map.hasLayer(m.overlays.Streams)};""")
    assert shown["bases"] == ["Relief", "Biomes"] and shown["relief"] is True, shown
    assert {"World edge", "Rivers", "Lakes", "Streams"} <= set(shown["overlays"])
    assert (shown["rivers"], shown["lakes"], shown["streams"]) == (
        len(rivers["rivers"]), len(rivers["lakes"]), len(rivers["streams"]))
    assert shown["lakes"] > 0 and shown["streamsShown"] is False

    # The height readout is heights.npy at the cell under the cursor, which is the game's
    # GetHeight at that cell's centre.
    heights = np.load(io.BytesIO(httpx.get(
        f"{d.url}/v1/jobs/{job_id}/artifacts/heights.npy", timeout=10).content))
    x, z, expected = uniform_point(SEED)
    read = point_at(browser, x, z)
    assert text(driver, "readout-biome") == BIOME_NAMES[expected]
    cell = 24576 / heights.shape[0]
    i, j = int((read["z"] + 12288) // cell), int((read["x"] + 12288) // cell)
    shown_height = float(text(driver, "readout-height"))
    assert abs(shown_height - float(heights[i, j])) <= 0.05, (shown_height, heights[i, j])
    cz = (i - heights.shape[0] / 2) * cell + cell / 2
    cx = (j - heights.shape[1] / 2) * cell + cell / 2
    assert float(World(SEED).height(np.float32(cx), np.float32(cz))) == float(heights[i, j])

    image = browser.screenshot(tmp_path / "viewer-terrain.png")
    if SHOTS_DIR:
        shutil.copy(tmp_path / "viewer-terrain.png", Path(SHOTS_DIR) / "viewer-terrain.png")
    assert len(image.getcolors(maxcolors=image.width * image.height) or []) > 200
    assert browser.console_errors() == [] and browser.outside_requests() == []

    # A phone starts with the light biome map: the relief's megabytes load only when picked.
    # The same browser, now a touch screen of a phone's size (a second Chromium costs seconds).
    browser.collect()
    browser.requests.clear()
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    browser.resize(PHONE)
    driver.get(f"{d.url}/?seed={SEED}&terrain=1")
    assert wait_state(driver, "ready", "error", "failed") == "ready"
    on = driver.execute_script(
        "const m = window.vweViewer.map;"
        "return [m.map.hasLayer(m.bases.Biomes), m.map.hasLayer(m.bases.Relief)];")
    assert on == [True, False]
    browser.collect()
    assert [u for u in browser.requests if u.endswith("/biomes.png")]
    assert not [u for u in browser.requests if u.endswith("/relief.png")], browser.requests
    assert browser.console_errors() == [] and browser.outside_requests() == []
