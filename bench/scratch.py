"""Where a benchmark's throw-away state lives: a Redis database of its own and a /tmp folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def redis_url(db: int) -> str:
    """Database `db` of the test Redis (VWE_TEST_REDIS_URL, else the private one `make` runs)."""
    base = os.environ.get("VWE_TEST_REDIS_URL", "redis://127.0.0.1:6391/0").rsplit("/", 1)[0]
    return f"{base}/{db}"


def data_dir(prefix: str = "vweb-") -> Path:
    # Short and absolute: agent socket paths under it must fit in 108 bytes.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
