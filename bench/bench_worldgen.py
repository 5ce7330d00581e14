"""Benchmark: Valheim's full 2048 x 2048 biome grid on one core.

Run it pinned to one CPU so that numbers are comparable between machines and runs::

    taskset -c 0 .venv/bin/python bench/bench_worldgen.py

What is timed, each as the median of several runs in this one process:

* ``worldgen`` warm: :meth:`worldgen.biomes.Lattice.biomes` for a new seed each run, with the
  lattice precomputed (that is what the worker does after ``warm_up`` at boot);
* ``worldgen`` cold: building the lattice plus the first seed (a worker's first request if it
  skipped ``warm_up``, or any non-standard grid);
* a plain numpy baseline defined below: the same biome rules written the obvious way, float64,
  whole-array, no precomputation or masking (it is *not* bit-exact; only its speed matters);
* the kirilloid/valheim JavaScript port under node, when ``VWE_JS_PORT_DIR`` points at a
  checkout of it (``src/model/*.ts`` are transpiled with the ``typescript`` package found via
  ``VWE_TYPESCRIPT``, default ``$VWE_JS_PORT_DIR/node_modules/typescript``). Skipped otherwise.

It prints a markdown section and replaces the ``## worldgen`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import os

# One core: no hidden BLAS / OpenMP threads. Must happen before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worldgen import GENERATOR_VERSION  # noqa: E402
from worldgen.biomegrid import Lattice  # noqa: E402
from worldgen.biomes import Biome  # noqa: E402
from worldgen.generate import lattice_coords  # noqa: E402
from worldgen.unity_random import WorldOffsets, world_offsets  # noqa: E402

SECTION = "## worldgen"
RESOLUTION = 2048
REFERENCE_SEED = -1772362158  # "MWd8eV6svz"

# ---------------------------------------------------------------------------------------------
# The plain numpy baseline: textbook float64 Perlin with table gathers, whole grid at once.

_P = np.array([
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225, 140, 36, 103, 30,
    69, 142, 8, 99, 37, 240, 21, 10, 23, 190, 6, 148, 247, 120, 234, 75, 0, 26, 197, 62, 94,
    252, 219, 203, 117, 35, 11, 32, 57, 177, 33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171,
    168, 68, 175, 74, 165, 71, 134, 139, 48, 27, 166, 77, 146, 158, 231, 83, 111, 229, 122, 60,
    211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54, 65, 25, 63, 161, 1,
    216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169, 200, 196, 135, 130, 116, 188, 159, 86,
    164, 100, 109, 198, 173, 186, 3, 64, 52, 217, 226, 250, 124, 123, 5, 202, 38, 147, 118,
    126, 255, 82, 85, 212, 207, 206, 59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170,
    213, 119, 248, 152, 2, 44, 154, 163, 70, 221, 153, 101, 155, 167, 43, 172, 9, 129, 22, 39,
    253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104, 218, 246, 97, 228, 251, 34,
    242, 193, 238, 210, 144, 12, 191, 179, 162, 241, 81, 51, 145, 235, 249, 14, 239, 107, 49,
    192, 214, 31, 181, 199, 106, 157, 184, 84, 204, 176, 115, 121, 50, 45, 127, 4, 150, 254,
    138, 236, 205, 93, 222, 114, 67, 29, 24, 72, 243, 141, 128, 195, 78, 66, 215, 61, 156, 180,
] * 2)
_GX = np.array([1, -1, 1, -1, 1, -1, 1, -1, 0, 0, 0, 0, 1, 0, -1, 0], dtype=np.float64)
_GY = np.array([1, 1, -1, -1, 0, 0, 0, 0, 1, -1, 1, -1, 1, -1, 1, -1], dtype=np.float64)


def _naive_perlin(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
                  ) -> npt.NDArray[np.float64]:
    x = np.abs(x)
    y = np.abs(y)
    xf = np.floor(x)
    yf = np.floor(y)
    xi = xf.astype(np.int64) & 255
    yi = yf.astype(np.int64) & 255
    x = x - xf
    y = y - yf
    u = x * x * x * (x * (x * 6 - 15) + 10)
    v = y * y * y * (y * (y * 6 - 15) + 10)
    a = _P[xi] + yi
    b = _P[xi + 1] + yi

    def grad(h: npt.NDArray[np.int64], gx: npt.NDArray[np.float64],
             gy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        h = h & 15
        return _GX[h] * gx + _GY[h] * gy

    g00 = grad(_P[_P[a]], x, y)
    g10 = grad(_P[_P[b]], x - 1, y)
    g01 = grad(_P[_P[a + 1]], x, y - 1)
    g11 = grad(_P[_P[b + 1]], x - 1, y - 1)
    l0 = g00 + (g10 - g00) * u
    l1 = g01 + (g11 - g01) * u
    return (l0 + (l1 - l0) * v + 0.69) / 1.483


def _lerp_step(lo: float, hi: float, v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def _lerp(a: npt.NDArray[np.float64], b: float, t: npt.NDArray[np.float64]
          ) -> npt.NDArray[np.float64]:
    return a + (b - a) * t


def baseline_biomes(off: WorldOffsets, xs: npt.NDArray[np.float32],
                    zs: npt.NDArray[np.float32], rows: int = 64) -> npt.NDArray[np.uint16]:
    """Valheim's GetBiome, version 2, the obvious float64 numpy way (not bit-exact).

    Whole arrays, processed ``rows`` grid rows at a time only to bound memory.
    """
    return np.concatenate([_baseline_rows(off, xs, zs[r:r + rows])
                           for r in range(0, zs.size, rows)])


def _baseline_rows(off: WorldOffsets, xs: npt.NDArray[np.float32],
                   zs: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    wx, wy = np.meshgrid(xs.astype(np.float64), zs.astype(np.float64))
    dist = np.hypot(wx, wy)
    x = wx + 100000 + off.off0
    y = wy + 100000 + off.off1
    p = _naive_perlin
    h = p(x * 0.001, y * 0.001) * p(x * 0.0015, y * 0.0015)
    h = h + p(x * 0.002, y * 0.002) * p(x * 0.003, y * 0.003) * h * 0.9
    h = h + p(x * 0.005, y * 0.005) * p(x * 0.01, y * 0.01) * 0.5 * h - 0.07
    ch = np.abs(p(x * 0.0005 + 0.123, y * 0.0005 + 0.15123)
                - p(x * 0.0005 + 0.321, y * 0.0005 + 0.231))
    t = np.clip((dist - 744) / 256, 0, 1)
    h = h * (1 - (1 - _lerp_step(0.02, 0.12, ch)) * t * t * (3 - 2 * t))
    edge = dist > 10000
    he = _lerp(h, -0.2, _lerp_step(10000, 10500, dist))
    he = np.where(dist > 10490, _lerp(he, -2.0, _lerp_step(10490, 10500, dist)), he)
    cap = (dist < 1000) & (h > 0.28)
    hc = (0.28 + 0.1 * np.clip((h - 0.28) / 0.1, 0, 1))
    hc = hc + (h - hc) * _lerp_step(600, 1000, dist)
    base = np.where(edge, he, np.where(cap, hc, h))
    wob = np.sin(np.arctan2(wx, wy) * 20) * 100

    def mask(o: int) -> npt.NDArray[np.float64]:
        return p((o + wx) * 0.001, (o + wy) * 0.001)

    conditions = [
        np.hypot(wx, wy - 4000) > 12000 + wob,
        base <= 0.02,
        np.hypot(wx, wy + 4000) > 12000 + wob,
        base > 0.4,
        (mask(off.off0) > 0.6) & (dist > 2000) & (dist < 6000) & (base > 0.05) & (base < 0.25),
        (mask(off.off4) > 0.4) & (dist > 6000 + wob) & (dist < 10000),
        (mask(off.off1) > 0.4) & (dist > 3000 + wob) & (dist < 8000),
        (mask(off.off2) > 0.4) & (dist > 600 + wob) & (dist < 6000),
        dist > 5000 + wob,
    ]
    choices = [Biome.ASHLANDS, Biome.OCEAN, Biome.DEEP_NORTH, Biome.MOUNTAIN, Biome.SWAMP,
               Biome.MISTLANDS, Biome.PLAINS, Biome.BLACK_FOREST, Biome.BLACK_FOREST]
    return np.select(conditions, [int(c) for c in choices], int(Biome.MEADOWS)).astype(np.uint16)


# ---------------------------------------------------------------------------------------------
# The JavaScript port, driven by node.

_JS_DRIVER = r"""
const fs = require('fs');
const path = require('path');
const [, , portDir, tsModule, outDir, seedText, resText, runsText] = process.argv;
const ts = require(tsModule);
const srcDir = path.join(portDir, 'src', 'model');
const done = new Set();
function build(name) {
  if (done.has(name)) return;
  done.add(name);
  const file = path.join(srcDir, name + '.ts');
  const code = fs.readFileSync(file, 'utf8');
  for (const m of code.matchAll(/from\s+'\.\/([\w-]+)'/g)) {
    if (fs.existsSync(path.join(srcDir, m[1] + '.ts'))) build(m[1]);
  }
  const js = ts.transpileModule(code, { compilerOptions: {
    module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } }).outputText;
  fs.writeFileSync(path.join(outDir, name + '.js'), js);
}
build('world-generator');
const { WorldGenerator } = require(path.join(outDir, 'world-generator.js'));
const seed = Number(seedText), n = Number(resText), runs = Number(runsText);
let t = process.hrtime.bigint();
const wg = new WorldGenerator(seed);
const constructS = Number(process.hrtime.bigint() - t) / 1e9;
const cpuS = (u) => (u.user + u.system) / 1e6;
const cell = 24576 / n;
const c = new Float64Array(n);
for (let j = 0; j < n; j++) c[j] = (j - n / 2) * cell + cell / 2;
const times = [], cpu = [];
let checksum = 0;
for (let r = 0; r < runs; r++) {
  t = process.hrtime.bigint();
  const u = process.cpuUsage();
  let acc = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) acc += wg.getBiome(c[j], c[i]);
  cpu.push(cpuS(process.cpuUsage(u)));
  times.push(Number(process.hrtime.bigint() - t) / 1e9);
  checksum = acc;
}
console.log(JSON.stringify({ node: process.version, construct_s: constructS, wall_s: times,
                             cpu_s: cpu, checksum }));
"""


@dataclass
class Timing:
    """Per-run CPU and wall seconds of one implementation.

    CPU time is the headline: on a shared machine a pinned process still loses the core to
    others now and then, which inflates wall time but not the CPU time it actually used.
    """

    cpu: list[float]
    wall: list[float]

    @property
    def cpu_s(self) -> float:
        return statistics.median(self.cpu)

    @property
    def wall_s(self) -> float:
        return statistics.median(self.wall)


def run_js_port(runs: int) -> dict[str, Any] | None:
    """Median time of the JS port's getBiome over the grid, or None when it is not set up."""
    port = os.environ.get("VWE_JS_PORT_DIR")
    node = shutil.which("node")
    if not port or node is None:
        return None
    port_dir = Path(port)
    ts_module = os.environ.get("VWE_TYPESCRIPT", str(port_dir / "node_modules" / "typescript"))
    if not (port_dir / "src" / "model" / "world-generator.ts").is_file():
        print(f"VWE_JS_PORT_DIR={port} has no src/model/world-generator.ts; skipping",
              file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "driver.js"
        driver.write_text(_JS_DRIVER, encoding="utf-8")
        out = Path(tmp) / "out"
        out.mkdir()
        proc = subprocess.run(
            [node, str(driver), str(port_dir), ts_module, str(out), str(REFERENCE_SEED),
             str(RESOLUTION), str(runs)],
            capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"JS port failed, skipping:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["timing"] = Timing([float(v) for v in result["cpu_s"]],
                              [float(v) for v in result["wall_s"]])
    return result


# ---------------------------------------------------------------------------------------------


def _timed(fn: Callable[[int], object], runs: int) -> Timing:
    cpu, wall = [], []
    for i in range(runs):
        c, t = time.process_time(), time.perf_counter()
        fn(i)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return Timing(cpu, wall)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def _write_section(section: str) -> None:
    """Replace this benchmark's section via the shared ``bench/results.py`` when present."""
    try:
        from results import write_section  # bench/results.py, shared by the benchmarks
    except ImportError:
        _replace_section(ROOT / "bench" / "RESULTS.md", section)
        return
    body = section.split("\n", 1)[1] if section.startswith(SECTION) else section
    write_section(SECTION.removeprefix("## "), body)


def _replace_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        new = "\n".join([*lines[:start], *section.rstrip("\n").splitlines(), *lines[end:]])
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs of worldgen (warm)")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--js-runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    args = parser.parse_args()

    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(affinity) != 1:
        print(f"warning: running on CPUs {affinity}; use `taskset -c 0` for one core",
              file=sys.stderr)
    coords = lattice_coords(RESOLUTION)
    seeds = [world_offsets(REFERENCE_SEED + 7919 * i) for i in range(max(args.runs, 1))]

    holder: dict[str, Lattice] = {}
    cold = _timed(lambda _: holder.setdefault("lat", Lattice(coords, coords, 2)), 1)
    lattice = holder["lat"]
    first = _timed(lambda _: lattice.biomes(world_offsets(REFERENCE_SEED)), 1)
    exact = lattice.biomes(world_offsets(REFERENCE_SEED))
    warm = _timed(lambda i: lattice.biomes(seeds[i]), args.runs)
    print(f"worldgen warm: median {warm.cpu_s:.3f} s CPU, {warm.wall_s:.3f} s wall")

    ref_off = world_offsets(REFERENCE_SEED)
    base = _timed(lambda i: baseline_biomes(ref_off, coords, coords), args.baseline_runs)
    differ = int(np.count_nonzero(baseline_biomes(ref_off, coords, coords) != exact))
    print(f"numpy baseline: median {base.cpu_s:.3f} s CPU, {base.wall_s:.3f} s wall")
    js = run_js_port(args.js_runs) if args.js_runs > 0 else None
    if js is not None:
        print(f"JS port: median {js['timing'].cpu_s:.3f} s CPU, construct "
              f"{js['construct_s']:.3f} s")

    points = RESOLUTION * RESOLUTION
    rows = [
        ("worldgen, warm lattice (per seed)", warm, f"{args.runs} runs"),
        ("worldgen, cold (lattice build + first seed)",
         Timing([cold.cpu[0] + first.cpu[0]], [cold.wall[0] + first.wall[0]]),
         f"lattice {cold.cpu[0]:.3f} s + first seed {first.cpu[0]:.3f} s CPU"),
        ("plain numpy float64 baseline (in this file)", base,
         f"{args.baseline_runs} runs; not bit-exact: differs from the exact map at "
         f"{differ} points"),
    ]
    if js is not None:
        rows.append((f"kirilloid/valheim JS port (node {js['node']})", js["timing"],
                     f"{args.js_runs} runs of its getBiome at the same {points:,} points; its "
                     f"constructor (rivers etc., {float(js['construct_s']):.2f} s) not counted"))
    table = ["| implementation | median CPU (s) | median wall (s) | CPU vs worldgen warm | notes |",
             "| --- | ---: | ---: | ---: | --- |"]
    for name, timing, note in rows:
        table.append(f"| {name} | {timing.cpu_s:.3f} | {timing.wall_s:.3f} | "
                     f"{timing.cpu_s / warm.cpu_s:.1f}x | {note} |")
    warm_s = warm.cpu_s
    section = "\n".join([
        SECTION,
        "",
        f"Full {RESOLUTION} x {RESOLUTION} biome grid ({points:,} points, the game's 12 m "
        "minimap lattice), Valheim 1.0.15 rules, worldgen version 2, one core "
        "(BLAS/OpenMP threads = 1), median of several runs in one process; ratios use CPU "
        "time.",
        "",
        *table,
        "",
        f"- Target: <= 1.0 s per grid on one core. worldgen warm: **{warm_s:.3f} s CPU**, "
        f"{warm.wall_s:.3f} s wall ({'met' if max(warm_s, warm.wall_s) <= 1.0 else 'NOT met'}),"
        f" {points / warm_s / 1e6:.1f} M points per CPU second.",
        "- Command: `taskset -c 0 .venv/bin/python bench/bench_worldgen.py` "
        "(JS port: `VWE_JS_PORT_DIR=<checkout> VWE_TYPESCRIPT=<typescript package>`).",
        f"- Machine: {_cpu_name()}, CPUs allowed {affinity}, load average "
        f"{_load()} at the end (other work on a shared machine inflates wall time most); Python "
        f"{platform.python_version()}, numpy {np.__version__}; generator "
        f"{GENERATOR_VERSION}; {time.strftime('%Y-%m-%d')}.",
        "",
    ])
    print()
    print(section)
    if not args.no_write:
        _write_section(section)
        print(f"wrote {ROOT / 'bench' / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
