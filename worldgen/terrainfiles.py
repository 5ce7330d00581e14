"""The ``heights`` layer's files: heights.npy, relief.png, rivers.json and the height statistics.

Heights are ``World.height_grid`` on the minimap lattice (row 0 south, as biomes.npy), float32
metres; the statistics cover the in-world cells (within 10 500 m) and also give the maximum as
the game's minimap cache would store it (an IEEE half, ties away from zero).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen.half import round_half
from worldgen.relief import WATER_LEVEL, write_relief_png
from worldgen.world import World

EDGE_HEIGHT = -400.0


def height_stats(heights: npt.NDArray[np.float32],
                 inworld: npt.NDArray[np.bool_]) -> dict[str, object]:
    """Summary of a height grid: metres, shares of the in-world cells, and the edge count."""
    inside = heights[inworld]
    water = inside < np.float32(WATER_LEVEL)
    return {
        "unit": "m",
        "water_level_m": WATER_LEVEL,
        "min_m": round(float(inside.min()), 3) if inside.size else None,
        "max_m": round(float(inside.max()), 3) if inside.size else None,
        # Rounding is monotonic, so the half-rounded maximum is the rounded maximum.
        "max_half_m": float(round_half([heights.max()])[0]) if heights.size else None,
        "mean_m": round(float(inside.astype(np.float64).mean()), 3) if inside.size else None,
        "land_share": round(float(1.0 - water.mean()), 6) if inside.size else 0.0,
        "water_share": round(float(water.mean()), 6) if inside.size else 0.0,
        "edge_cells": int((heights == np.float32(EDGE_HEIGHT)).sum()),
    }


def write_terrain(out: Path, seed: int, worldgen_version: int, coords: npt.NDArray[np.float32],
                  biomes: npt.NDArray[np.uint16], inworld: npt.NDArray[np.bool_],
                  files: dict[str, str], report: Callable[[float, str], None]
                  ) -> dict[str, object]:
    """Pre-generate the world, write the three files (recorded in ``files``), return the stats."""
    world = World(seed=seed, worldgen_version=worldgen_version)
    report(0.4, "computing heights")
    heights = world.height_grid(coords, coords)
    np.save(out / "heights.npy", heights, allow_pickle=False)
    files["heights"] = "heights.npy"
    cell = float(coords[1] - coords[0]) if coords.size > 1 else 1.0
    write_relief_png(out / "relief.png", biomes, heights, inworld, cell)
    files["relief"] = "relief.png"
    rivers = {"seed": seed, "units": "m", **world.describe_rivers()}
    (out / "rivers.json").write_text(json.dumps(rivers, separators=(",", ":")) + "\n",
                                     encoding="utf-8")
    files["rivers"] = "rivers.json"
    report(1.0, "terrain written")
    stats = height_stats(heights, inworld)
    stats.update({"lakes": len(world.lakes), "rivers": len(world.rivers),
                  "streams": len(world.streams)})
    return stats
