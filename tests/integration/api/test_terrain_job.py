"""A terrain job through the pool: heights.npy and the relief map come back, as recorded."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from apiclient import submit, wait_job
from conftest import DaemonProcess
from pngtools import decode_rgb_png

pytestmark = pytest.mark.integration


def test_terrain_job_returns_heights_and_relief(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory().start(wait_warm=1)
    accepted = submit(d.url, "MWd8eV6svz", resolution=256, layers=["biomes", "heights"])
    assert accepted.status_code == 202, accepted.text
    job = wait_job(d.url, accepted.json()["job_id"], timeout=100)
    assert job["status"] == "succeeded", job
    assert job["options"]["layers"] == ["biomes", "heights"]
    arts = {a["name"]: a for a in job["artifacts"]}
    assert {"biomes.npy", "heights.npy", "relief.png", "rivers.json", "world.json"} <= set(arts)
    blobs: dict[str, bytes] = {}
    for name in ("heights.npy", "relief.png", "rivers.json", "world.json"):
        r = httpx.get(d.url + arts[name]["url"], timeout=30)
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == arts[name]["sha256"]
        assert len(r.content) == arts[name]["size"]
        blobs[name] = r.content
    heights = np.load(io.BytesIO(blobs["heights.npy"]), allow_pickle=False)
    assert heights.shape == (256, 256) and heights.dtype == np.float32
    world = json.loads(blobs["world.json"])
    assert world["layers"] == ["biomes", "heights"]
    assert world["heights"]["max_m"] == round(float(heights.max()), 3)
    assert world["heights"]["edge_cells"] == int((heights == -400.0).sum()) > 0
    rgb, _ = decode_rgb_png(blobs["relief.png"])
    assert rgb.shape == (256, 256, 3)
    assert not np.all(rgb == (255, 0, 255), axis=2).any()
    assert len(json.loads(blobs["rivers.json"])["rivers"]) == world["heights"]["rivers"] > 0
    # The same seed with the default layers is a different job (layers are in the cache key).
    other = submit(d.url, "MWd8eV6svz", resolution=256)
    assert other.json()["job_id"] != job["job_id"]
