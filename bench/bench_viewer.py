"""The world viewer (`GET /`) in a real headless Chromium: is it light and responsive enough for
a phone? A real daemon (real engine and Redis) generates a 2048² world; then, for a phone
(390 x 844, touch, CPU slowed 4x through the DevTools protocol) and a desktop (1280 x 800, full
speed), each in a fresh browser profile:

- time to map: navigation to `/?seed=...` of a generated seed -> the map image drawn (the page
  marks `data-state="ready"`); baseline in the same run: the plain biomes.png opened in the
  same browser (what a person had before the viewer), its load event;
- bytes the page transferred up to then, and the longest main-thread task (Long Tasks API);
- zoom: `setZoom(+2)` -> `zoomend` (Leaflet's animation is 250 ms of it);
- desktop only: ready -> the first biome readout under the mouse (the 8 MiB biomes.npy fetched
  and parsed; with terrain, also the height from the 16 MiB heights.npy). The desktop is also
  measured with terrain (`&terrain=1`: the relief map shown, rivers and lakes drawn).

    VWE_TEST_REDIS_URL=redis://127.0.0.1:6391/0 .venv/bin/python bench/bench_viewer.py
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import DESKTOP, PHONE, Browser  # noqa: E402
from daemonproc import DaemonProcess  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bench import scratch  # noqa: E402
from bench.results import write_section  # noqa: E402

SEED = "MWd8eV6svz"
HEADER = ("| profile | viewer: time to map (s) | plain PNG (s) | ratio | KiB transferred "
          "| longest task (ms) | zoom +2 (ms) | biome readout (s) |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
LONG_TASKS = ("window.__long = []; new PerformanceObserver((l) => { for (const e of "
              "l.getEntries()) window.__long.push(e.duration); })"
              ".observe({ type: 'longtask', buffered: true });")


def open_browser(profile: Path, phone: bool) -> Browser:
    b = Browser(profile, size=PHONE if phone else DESKTOP)
    d = b.driver
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_TASKS})
    if phone:
        d.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": 4})
        d.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    return b


def viewer_run(url: str, phone: bool, terrain: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        b = open_browser(Path(tmp) / "profile", phone)
        d = b.driver
        try:
            started = time.perf_counter()
            d.get(f"{url}/?seed={SEED}" + ("&terrain=1" if terrain else ""))
            WebDriverWait(d, 60, poll_frequency=0.01).until(
                lambda dr: dr.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                == "ready")
            ready = time.perf_counter() - started
            out: dict[str, Any] = {
                "ready_s": ready,
                "bytes": d.execute_script(
                    "return performance.getEntriesByType('resource')"
                    ".reduce((s, e) => s + e.transferSize, 0)"),
                "long_ms": max(d.execute_script("return window.__long") or [0.0]),
            }
            out["zoom_ms"] = d.execute_async_script(
                "const done = arguments[0], m = window.vweViewer.map.map, t = performance.now();"
                "m.once('zoomend', () => done(performance.now() - t));"
                "m.setZoom(m.getZoom() + 2);")
            if not phone:
                t0 = time.perf_counter()
                ActionChains(d).move_to_element_with_offset(
                    d.find_element(By.ID, "map"), 10, 10).perform()
                WebDriverWait(d, 60, poll_frequency=0.01).until(
                    lambda dr: dr.find_element(By.ID, "readout-biome").text
                    not in ("\u2013", "", "loading…")
                    and (not terrain or dr.find_element(By.ID, "readout-height").text != "\u2013"))
                out["readout_s"] = time.perf_counter() - t0
            assert b.console_errors() == [] and b.outside_requests() == [], "page misbehaved"
            return out
        finally:
            b.quit()


def plain_png_run(png_url: str, phone: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        b = open_browser(Path(tmp) / "profile", phone)
        try:
            started = time.perf_counter()
            b.driver.get(png_url)  # returns on the load event: the image decoded and drawn
            return time.perf_counter() - started
        finally:
            b.quit()


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    redis_url = scratch.redis_url(11)
    redis.Redis.from_url(redis_url).flushdb()
    data = scratch.data_dir()
    env = {"VWE_REDIS_URL": redis_url, "VWE_DATA_DIR": str(data), "VWE_POOL_SIZE": "1",
           "VWE_POOL_MAX": "2", "VWE_POOL_NAME": "bench-viewer", "VWE_LOG_FORMAT": "json"}
    daemon = DaemonProcess(env, data / "daemon.log")
    try:
        daemon.start(wait_warm=1, timeout=120)
        jobs = {}
        for terrain in (False, True):
            body: dict[str, Any] = {"seed": SEED}
            if terrain:
                body["layers"] = ["biomes", "heights"]
            job = httpx.post(f"{daemon.url}/v1/worlds", json=body, timeout=10).json()
            job = httpx.get(f"{daemon.url}/v1/jobs/{job['job_id']}", params={"wait": 120},
                            timeout=130).json()
            assert job["status"] == "succeeded", job
            jobs[terrain] = job
        sizes = {a["name"]: a["size"] for a in jobs[True]["artifacts"]}

        def png(terrain: bool) -> str:
            name = "relief.png" if terrain else "biomes.png"
            return f"{daemon.url}/v1/jobs/{jobs[terrain]['job_id']}/artifacts/{name}"

        results = {}
        for name, phone, terrain in (("phone", True, False), ("desktop", False, False),
                                     ("desktop, terrain", False, True)):
            runs, plain = [], []
            for _ in range(args.runs):  # interleaved, so load drifts hit both alike
                runs.append(viewer_run(daemon.url, phone, terrain))
                plain.append(plain_png_run(png(terrain), phone))
            results[name] = (runs, statistics.median(plain))
    finally:
        daemon.stop(timeout=60)
        redis.Redis.from_url(redis_url).flushdb()
        shutil.rmtree(data, ignore_errors=True)

    rows = []
    for name, (runs, plain) in results.items():
        readout = "on first tap" if name == "phone" else f"{med(runs, 'readout_s'):.2f}"
        rows.append(
            f"| {name} | {med(runs, 'ready_s'):.2f} | {plain:.2f} | "
            f"{med(runs, 'ready_s') / plain:.1f}x | {med(runs, 'bytes') / 1024:.0f} | "
            f"{med(runs, 'long_ms'):.0f} | {med(runs, 'zoom_ms'):.0f} | {readout} |")
    body = f"""Seed {SEED} at 2048² (biomes.png {sizes['biomes.png'] / 1024:.0f} KiB, biomes.npy \
{sizes['biomes.npy'] / 2**20:.1f} MiB; with terrain also relief.png \
{sizes['relief.png'] / 2**20:.1f} MiB, heights.npy {sizes['heights.npy'] / 2**20:.0f} MiB), \
already generated; headless Chromium \
(`tests/browser.py` flags), fresh profile per run, median of {args.runs} runs; phone = \
390 x 844 with touch and the CPU slowed 4x (DevTools `Emulation.setCPUThrottlingRate`), \
desktop = 1280 x 800 at full speed. "plain PNG" is biomes.png opened on its own in the same \
browser (its load event; relief.png for the terrain row), the baseline measured in the same \
run. The terrain row's readout waits for the height too.

{HEADER}
{chr(10).join(rows)}

- One image per layer, no tiles: the biome map (~155 KiB, 16 MiB decoded) is light enough for a
  phone, and a touch screen starts with it even with terrain, fetching the relief map (3.3 MiB)
  only when picked; the grids behind the readout (8 MiB of biomes, 16 MiB of heights) load on a
  touch screen's first tap, at once otherwise (so "KiB transferred" on the desktop includes
  whatever of them had arrived when the map was drawn).
- Command: `.venv/bin/python bench/bench_viewer.py` ({platform.python_implementation()} \
{platform.python_version()}, {platform.machine()}, {time.strftime('%Y-%m-%d')}; a shared 2-core \
machine: wall times include other work).
"""
    print(body)
    if not args.no_write:
        write_section("viewer", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
