"""The worker's entry point: one seed text in, a folder of world artefacts out.

Output (``out_dir``)::

    worlds_local/<Name>/_main.0.fwl2   world metadata as Valheim 1.0 writes it for a new world
    worlds_local/<Name>.fwl            the same in the legacy layout (``legacy_fwl=True`` only)
    biomes.npy                         uint16 biome codes on the minimap lattice, row 0 = south
    biomes.png                         the same as a picture, north up, clear beyond 10 500 m
    heights.npy                        float32 GetHeight in metres, same lattice ("heights")
    relief.png                         the relief map: biome colours shaded, water by depth
    rivers.json                        the pre-generated lakes, rivers and streams ("heights")
    world.json                         what was generated, each biome's share, height statistics

``layers`` picks the outputs: ``"biomes"`` (biomes.npy, biomes.png) and ``"heights"``
(heights.npy, relief.png, rivers.json, the ``heights`` statistics); the default is
:data:`DEFAULT_LAYERS`.

The lattice is the game's minimap one: ``N x N`` cells of ``24576 / N`` metres (12 m for the
game's 2048), cell ``(i, j)`` centred at ``x = (j - N/2) * cell + cell/2`` and the same for ``z``
with ``i``. Everything that does not depend on the seed is prepared by :func:`warm_up`, which the
agent calls once at boot, so a request only pays for its own noise.

The world UID is random in the game (it mixes in the host name and a random draw); here it is
derived from the name and the seed so that the same request always gives the same bytes.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen import GENERATOR_VERSION, fwl
from worldgen.biomegrid import Lattice, lattice_for
from worldgen.biomes import BIOME_NAMES, Biome
from worldgen.hashing import seed_from_text, stable_hash, utf16_units
from worldgen.mapimage import write_png
from worldgen.output import check_target, staged
from worldgen.terrainfiles import write_terrain
from worldgen.unity_random import UnityRandom, world_offsets

MAP_SIZE_M = 24576.0  # the minimap's extent: 2048 px * 12 m
MIN_RESOLUTION = 16
MAX_RESOLUTION = 4096  # 16.7 M points; the lattice alone is then ~180 MB
MAX_SEED_LENGTH = 10  # the seed box's characterLimit (UTF-16 code units)
MAX_NAME_LENGTH = 64
WORLDGEN_VERSIONS = (0, 1, 2)
LAYERS = ("biomes", "heights")
DEFAULT_LAYERS = ("biomes",)  # heights cost seconds more per world: asked for explicitly

Progress = Callable[[float, str], None]
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


def lattice_coords(resolution: int) -> npt.NDArray[np.float32]:
    """Cell-centre coordinates of the ``resolution``-wide minimap lattice (metres, float32)."""
    cell = MAP_SIZE_M / resolution
    j = np.arange(resolution, dtype=np.float64)
    return ((j - resolution / 2) * cell + cell / 2).astype(np.float32)


def validate_seed(seed_text: str) -> None:
    """The game's rule for a typed seed: 1-10 characters, none of them a control character."""
    if not isinstance(seed_text, str):
        raise ValueError("seed must be a string")
    if seed_text == "":
        raise ValueError("seed must not be empty (1 to 10 characters)")
    try:
        units = utf16_units(seed_text)
        seed_text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("seed contains an unpaired surrogate") from exc
    if len(units) > MAX_SEED_LENGTH:
        raise ValueError(f"seed is {len(units)} characters long; the game allows 1 to "
                         f"{MAX_SEED_LENGTH}")
    for ch in seed_text:
        if unicodedata.category(ch) == "Cc":
            raise ValueError(f"seed contains the control character U+{ord(ch):04X}")


def sanitise_name(text: str) -> str:
    """A file-system-safe world name: ASCII letters, digits, ``_`` and ``-`` only."""
    name = _NAME_UNSAFE.sub("_", text)[:MAX_NAME_LENGTH]
    if name.upper() in _WINDOWS_RESERVED:
        name += "_"
    return name


def _world_name(seed_text: str, world_name: str | None) -> str:
    if world_name is None:
        return sanitise_name(seed_text)
    if not isinstance(world_name, str) or not world_name.strip():
        raise ValueError("world_name must be a non-empty string")
    name = sanitise_name(world_name)
    if name != world_name:
        raise ValueError("world_name may only hold ASCII letters, digits, '_' and '-' "
                         f"(at most {MAX_NAME_LENGTH})")
    return name


def world_uid(name: str, seed: int) -> int:
    """A stable stand-in for the game's random UID, in its shape: name hash + positive draw."""
    draw = UnityRandom(seed ^ stable_hash(name)).range_int(1, 2**31 - 1)
    return stable_hash(name) + draw


def warm_up(resolution: int = 2048, terrain: bool = True) -> None:
    """Precompute the lattice (and its seed-independent biome facts) for ``resolution``.

    One throw-away world (seed 0, the menu world's) is also generated, so that the reusable
    buffers exist and numpy's code paths are loaded before the first real request. With
    ``terrain`` the height kernels are compiled (or loaded from numba's cache) too, so the first
    request with heights does not pay for it.
    """
    _check_resolution(resolution)
    coords = lattice_coords(resolution)
    lattice_for(coords, coords, 2).biomes_and_counts(0)
    if terrain:
        from worldgen.fastworld import compile_kernels
        from worldgen.jitcore import HAVE_NUMBA

        if HAVE_NUMBA:
            compile_kernels()


def normalise_layers(layers: object) -> tuple[str, ...]:
    """The requested layers in canonical order; ``ValueError`` names anything unknown."""
    if layers is None:
        return DEFAULT_LAYERS
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)):
        raise ValueError(f"layers must be a list drawn from {list(LAYERS)}")
    unknown = [str(x) for x in layers if x not in LAYERS]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; choose from {list(LAYERS)}")
    if not layers:
        raise ValueError(f"layers must name at least one of {list(LAYERS)}")
    return tuple(x for x in LAYERS if x in layers)


def _check_resolution(resolution: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise ValueError("resolution must be an integer")
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(f"resolution must be between {MIN_RESOLUTION} and {MAX_RESOLUTION}")


def biome_shares(counts: dict[Biome, int]) -> dict[str, float]:
    """Each biome's fraction of the in-world points (distance from the centre <= 10 500 m)."""
    total = sum(counts.values())
    return {name: (counts.get(b, 0) / total if total else 0.0) for b, name in BIOME_NAMES.items()}


def generate_world(seed_text: str, out_dir: Path, *, resolution: int = 2048,
                   worldgen_version: int = 2, legacy_fwl: bool = False,
                   world_name: str | None = None, layers: object = None,
                   progress: Progress | None = None) -> dict[str, object]:
    """Generate one world's artefacts into ``out_dir`` and return the ``world.json`` content.

    The files are written to a temporary folder and renamed into place (`worldgen.output`):
    ``out_dir`` ends up holding exactly this world, or is left as it was.

    Raises ValueError for a bad seed, resolution, version, world name or layer list
    (``worldgen_version`` and ``resolution`` must be ints, ``legacy_fwl`` a bool), and
    `worldgen.output.OutputError` (a ValueError) when ``out_dir`` cannot take the world: a
    file, a folder of other files, read-only, a full disk.
    """
    _check_arguments(seed_text, resolution, worldgen_version, legacy_fwl)
    _world_name(seed_text, world_name)
    wanted = normalise_layers(layers)
    check_target(Path(out_dir))  # before the work, not after it
    with staged(Path(out_dir)) as stage:
        return _generate_into(seed_text, stage, resolution=resolution,
                              worldgen_version=worldgen_version, legacy_fwl=legacy_fwl,
                              world_name=world_name, wanted=wanted, progress=progress)


def _check_arguments(seed_text: str, resolution: int, worldgen_version: int,
                     legacy_fwl: bool) -> None:
    validate_seed(seed_text)
    _check_resolution(resolution)
    # type() and not isinstance: True is an int, and 2.0 == 2 would pass `in`.
    if type(worldgen_version) is not int or worldgen_version not in WORLDGEN_VERSIONS:
        raise ValueError(f"worldgen_version must be one of the integers {WORLDGEN_VERSIONS}, "
                         f"got {worldgen_version!r}")
    if not isinstance(legacy_fwl, bool):
        raise ValueError(f"legacy_fwl must be True or False, got {legacy_fwl!r}")


def _generate_into(seed_text: str, out: Path, *, resolution: int, worldgen_version: int,
                   legacy_fwl: bool, world_name: str | None, wanted: tuple[str, ...],
                   progress: Progress | None) -> dict[str, object]:
    """The generation proper, into the (empty, temporary) folder ``out``."""
    started = time.perf_counter()
    report: Progress = progress or (lambda fraction, message: None)
    name = _world_name(seed_text, world_name)

    report(0.0, "seed accepted")
    seed = seed_from_text(seed_text)
    offsets = world_offsets(seed)
    coords = lattice_coords(resolution)
    lattice: Lattice = lattice_for(coords, coords, worldgen_version)
    report(0.1, "lattice ready")
    biomes, counts = lattice.biomes_and_counts(offsets)
    shares = biome_shares(counts)
    inworld = lattice.inworld
    del lattice  # its per-cell arrays (about 200 MB at 4096 cells) are not needed again
    report(0.7, "biomes computed")

    files: dict[str, str] = {}
    if "biomes" in wanted:
        np.save(out / "biomes.npy", biomes, allow_pickle=False)
        files["biomes"] = "biomes.npy"
        write_png(out / "biomes.png", biomes, inworld)
        files["image"] = "biomes.png"
    heights_stats: dict[str, object] | None = None
    if "heights" in wanted:
        report(0.75, "pre-generating lakes, rivers and streams")
        heights_stats = write_terrain(out, seed, worldgen_version, coords, biomes,
                                      inworld, files,
                                      lambda f, m: report(0.75 + 0.15 * f, m))
    report(0.9, "maps written")
    meta = fwl.WorldMeta(name=name, seed_name=seed_text, seed=seed, uid=world_uid(name, seed),
                         worldgen_version=worldgen_version)
    worlds = out / "worlds_local"
    main = fwl.main_path(worlds, name)
    fwl.write(main, meta)
    files["fwl2"] = main.relative_to(out).as_posix()
    if legacy_fwl:
        legacy_meta = fwl.WorldMeta(name=name, seed_name=seed_text, seed=seed, uid=meta.uid,
                                    worldgen_version=worldgen_version,
                                    version=fwl.LEGACY_WORLD_VERSION)
        legacy = fwl.legacy_path(worlds, name)
        fwl.write(legacy, legacy_meta)
        files["fwl"] = legacy.relative_to(out).as_posix()

    world: dict[str, object] = {
        "seed_text": seed_text,
        "seed": seed,
        "worldgen_version": worldgen_version,
        "world_name": name,
        "world_uid": meta.uid,
        "offsets": {
            "off0": offsets.off0, "off1": offsets.off1, "off2": offsets.off2,
            "off3": offsets.off3, "river_seed": offsets.river_seed,
            "stream_seed": offsets.stream_seed, "off4": offsets.off4,
        },
        "resolution": resolution,
        "cell_size_m": MAP_SIZE_M / resolution,
        "biome_codes": {BIOME_NAMES[b]: int(b) for b in BIOME_NAMES},
        "biome_shares": {k: round(v, 6) for k, v in shares.items()},
        "layers": list(wanted),
        "files": files,
        "generator_version": GENERATOR_VERSION,
    }
    if heights_stats is not None:
        world["heights"] = heights_stats
    world["generation_time_s"] = round(time.perf_counter() - started, 4)
    (out / "world.json").write_text(json.dumps(world, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    report(1.0, "done")
    return world
