"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven through Selenium,
for the world viewer's tests: console messages and every request URL the page made are kept,
and screenshots are checked to show something.

Chromium runs as root here, hence `--no-sandbox`; every flag that lets it phone home (component
updates, background networking, sync, QUIC) is off, and the profile is an empty folder per
browser, so the only requests are the ones the page itself makes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
]
DESKTOP = (1280, 800)
PHONE = (390, 844)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def find_chromium() -> tuple[str, str]:
    """The browser and driver binaries, or an AssertionError saying how to get them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert browser and driver, (
        "headless Chromium is missing: `make test` installs Debian's chromium and "
        "chromium-driver (scripts/ensure-test-tools.sh)")
    return browser, driver


class Browser:
    """One headless Chromium with an empty profile in `profile_dir`."""

    def __init__(self, profile_dir: Path, size: tuple[int, int] = DESKTOP) -> None:
        binary, driver = find_chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile_dir}")
        options.add_argument(f"--window-size={size[0]},{size[1]}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # Both paths given: Selenium Manager (which may download drivers) is never consulted.
        self.driver = webdriver.Chrome(service=Service(executable_path=driver), options=options)
        self.driver.set_page_load_timeout(30)
        self.console: list[dict[str, Any]] = []
        self.requests: list[str] = []

    def collect(self) -> None:
        """Move what Chromium logged since the last call into `console` and `requests`."""
        self.console.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]
        for entry in self.driver.get_log("performance"):  # type: ignore[no-untyped-call]
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])

    def console_errors(self, allowed: Iterable[str] = ()) -> list[dict[str, Any]]:
        self.collect()
        return [m for m in self.console if m["level"] == "SEVERE"
                and not any(a in m["message"] for a in allowed)]

    def outside_requests(self) -> list[str]:
        """Every request URL that does not stay on this machine. data: and blob: are the page's
        own bytes; chrome: is the browser's built-in new-tab page before the first navigation,
        served from inside the binary."""
        self.collect()
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "chrome", "about"):
                continue
            if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
                out.append(url)
        return out

    def resize(self, size: tuple[int, int]) -> None:
        self.driver.set_window_size(*size)

    def screenshot(self, path: Path) -> Image.Image:
        assert self.driver.save_screenshot(str(path)), f"no screenshot saved to {path}"
        image = Image.open(path)
        image.load()
        return image.convert("RGB")

    def quit(self) -> None:
        self.driver.quit()


def colour_shares(image: Image.Image, colours: dict[str, tuple[int, int, int]]) -> dict[str, float]:
    """The fraction of the image's pixels that are exactly each named colour."""
    pixels = image.width * image.height
    counts = {rgb: n for n, rgb in image.getcolors(maxcolors=pixels) or []}
    return {name: counts.get(rgb, 0) / pixels for name, rgb in colours.items()}
