"""Valheim world generation (Valheim 1.0.15, world generator version 2), bit for bit.

``from worldgen import World, Biome`` is the public API (see docs/architecture.md, "World
generator API"): biomes, base heights, heights, lakes, rivers and streams. Standard library +
numpy are enough to import and use it; numba, when installed, compiles the terrain kernels
(the same results, much faster). ``World`` and ``Biome`` load lazily so that importing the wire
protocol (``worldgen.protocol``) stays cheap for the daemon.

``GENERATOR_VERSION`` is part of the result-cache key: bump the ``-rN`` suffix whenever the
output for a given request changes (numbers, files, image, JSON layout).
"""

from __future__ import annotations

from typing import Any

GENERATOR_VERSION = "vwe-1.0.15-wg2-r2"

__all__ = ["GENERATOR_VERSION", "Biome", "World"]


def __getattr__(name: str) -> Any:
    if name == "World":
        from worldgen.world import World

        return World
    if name == "Biome":
        from worldgen.biomes import Biome

        return Biome
    raise AttributeError(f"module 'worldgen' has no attribute {name!r}")
