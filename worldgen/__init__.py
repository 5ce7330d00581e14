"""Valheim world generation (biomes of Valheim 1.0.15, world generator version 2), bit for bit.

Standard library + numpy only: this package runs inside the minimal worker image.

``GENERATOR_VERSION`` is part of the result-cache key: bump the ``-rN`` suffix whenever the
output for a given request changes (numbers, files, image, JSON layout).
"""

GENERATOR_VERSION = "vwe-1.0.15-wg2-r1"

__all__ = ["GENERATOR_VERSION"]
