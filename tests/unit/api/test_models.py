"""Request validation and the job's public shape, without a server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.models import JobOut, PoolPatch, WorldRequest, check_seed
from pool.core.jobs import Artifact, Job, encode_artifacts
from pool.core.states import JobState

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", ["a", "MWd8eV6svz", "ÆØÅ æøå", "with space", "é" * 10])
def test_game_accepted_seeds(seed: str) -> None:
    assert check_seed(seed) == seed


@pytest.mark.parametrize(("seed", "message"), [
    ("", "must not be empty"),
    ("abcdefghijk", "at most 10 characters, got 11"),
    ("🙂", "Basic Multilingual Plane"),  # the game counts it as two characters
    ("c1\x85", "control characters"),
    ("tab\there", "control characters"),
    ("nul\x00", "control characters"),
])
def test_game_refused_seeds(seed: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_seed(seed)


def test_world_request_options_and_unknown_fields() -> None:
    req = WorldRequest(seed="abc", legacy_fwl=True)
    assert req.options(2048) == {"worldgen_version": 2, "legacy_fwl": True, "resolution": 2048,
                                 "layers": ["biomes"]}
    # Layers are part of the options and so of the cache key: canonical order, no repeats.
    both = WorldRequest(seed="abc", layers=["heights", "biomes", "heights"])
    assert both.options(2048)["layers"] == ["biomes", "heights"]
    assert WorldRequest(seed="abc", layers=["heights"]).options(64)["layers"] == ["heights"]
    for bad in ([], ["relief"], "biomes"):
        with pytest.raises(ValidationError):
            WorldRequest.model_validate({"seed": "abc", "layers": bad})
    with pytest.raises(ValidationError):
        WorldRequest.model_validate({"seed": "abc", "colour": "red"})
    with pytest.raises(ValidationError):
        WorldRequest.model_validate({"seed": "abc", "worldgen_version": 3})


def test_pool_patch_bounds() -> None:
    assert PoolPatch(size=3).model_dump(exclude_none=True) == {"size": 3}
    with pytest.raises(ValidationError):
        PoolPatch(size=-1)


def test_job_round_trips_through_its_redis_hash() -> None:
    art = Artifact("biomes.png", 10, "ab" * 32, "image/png")
    raw = {"id": "f" * 32, "seed": "abc", "seed_hash": "1099313834", "status": "succeeded",
           "attempts": "2", "queued_at": "100.0", "started_at": "101.5", "finished_at": "103.0",
           "generation_s": "1.25", "launch_type": "warm", "options": '{"resolution": 64}',
           "artifacts": encode_artifacts([art])}
    job = Job.from_hash(raw)
    assert job.status is JobState.SUCCEEDED and job.finished and job.attempts == 2
    out = JobOut.of(job)
    assert out.queue_wait_s == 1.5 and out.duration_s == 3.0
    assert out.artifacts[0].url == f"/v1/jobs/{'f' * 32}/artifacts/biomes.png"
    assert out.launch_type == "warm" and out.seed_hash == 1099313834
