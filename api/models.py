"""Request and response models: the HTTP contract of docs/architecture.md, typed."""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pool.core.jobs import Job
from pool.core.pool_policy import BY_NAME

MAX_SEED_UNITS = 10
LAYERS = ("biomes", "heights")  # worldgen.generate.LAYERS
DEFAULT_LAYERS = ["biomes"]


def check_seed(seed: str) -> str:
    """The game's rule: 1-10 characters (UTF-16 code units), none of them a control character."""
    if not seed:
        raise ValueError("seed must not be empty")
    if len(seed) <= MAX_SEED_UNITS and seed.isascii() and seed.isprintable():
        return seed  # the common case, decided without a per-character lookup
    units = len(seed.encode("utf-16-le")) // 2
    if units > MAX_SEED_UNITS:
        raise ValueError(f"seed must be at most {MAX_SEED_UNITS} characters, got {units}")
    bad = [ch for ch in seed if unicodedata.category(ch) in ("Cc", "Cs")]
    if bad:
        raise ValueError(f"seed must not contain control characters (found {bad[0]!r})")
    return seed


class WorldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: str = Field(description="Valheim seed text: 1-10 characters, no control characters",
                      examples=["MWd8eV6svz"])
    worldgen_version: Literal[0, 1, 2] = Field(2, description="Worldgen rules version")
    legacy_fwl: bool = Field(False, description="Also write the legacy <Name>.fwl")
    resolution: int | None = Field(None, ge=16, le=4096,
                                   description="Biome map size in cells (default 2048)")
    layers: list[Literal["biomes", "heights"]] | None = Field(
        None, min_length=1, max_length=8,
        description="Outputs: biomes (biomes.npy/png), heights (heights.npy, relief.png, "
                    "rivers.json); default [\"biomes\"]", examples=[["biomes", "heights"]])

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: str) -> str:
        return check_seed(value)

    def options(self, default_resolution: int) -> dict[str, object]:
        """The job options (and so the cache key): layers in canonical order, deduplicated."""
        layers = [x for x in LAYERS if x in (self.layers or DEFAULT_LAYERS)]
        return {"worldgen_version": self.worldgen_version, "legacy_fwl": self.legacy_fwl,
                "resolution": self.resolution or default_resolution, "layers": layers}


class ArtifactOut(BaseModel):
    name: str
    size: int
    sha256: str
    content_type: str
    url: str


class JobOut(BaseModel):
    job_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    seed: str
    seed_hash: int | None
    generator: str
    options: dict[str, object]
    launch_type: Literal["warm", "cold"] | None
    attempts: int
    progress: float
    message: str
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    queue_wait_s: float | None
    generation_s: float | None
    duration_s: float | None
    artifacts: list[ArtifactOut]
    error: str | None
    cached: bool = False

    @classmethod
    def of(cls, job: Job, *, cached: bool = False) -> JobOut:
        return cls(**job_body(job, cached=cached))


def job_body(job: Job, *, cached: bool = False) -> dict[str, Any]:
    """A job as the API shows it (the fields of `JobOut`), as plain data: the hot path of
    POST /v1/worlds encodes this directly instead of building and validating the model."""
    def delta(a: float | None, b: float | None) -> float | None:
        return round(b - a, 4) if a is not None and b is not None else None

    return {
        "job_id": job.id, "status": job.status.value, "seed": job.seed,
        "seed_hash": job.seed_hash, "generator": job.generator, "options": job.options,
        "launch_type": job.launch_type if job.launch_type in ("warm", "cold") else None,
        "attempts": job.attempts, "progress": job.progress, "message": job.message,
        "queued_at": job.queued_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "queue_wait_s": delta(job.queued_at, job.started_at),
        "generation_s": job.generation_s, "duration_s": delta(job.queued_at, job.finished_at),
        "artifacts": [{"name": a.name, "size": a.size, "sha256": a.sha256,
                       "content_type": a.content_type,
                       "url": f"/v1/jobs/{job.id}/artifacts/{a.name}"} for a in job.artifacts],
        "error": job.error, "cached": cached,
    }


class ContainerOut(BaseModel):
    id: str
    name: str
    state: str
    age_s: float
    uses: int
    daemon: str


class PoolOut(BaseModel):
    size: int
    max: int
    min: int
    target: int
    autoscale: bool
    autoscale_reason: str | None
    max_age_s: float
    max_uses: int
    idle_ttl_s: float
    surplus_idle_s: float
    queue_depth: int
    containers: list[ContainerOut]


def _patch(name: str) -> Any:
    """A PATCH field: bounds and meaning from `pool.core.pool_policy.FIELDS`; strict, so a
    boolean is not a number (`{"size": true}`) nor a number a boolean, and finite."""
    spec = BY_NAME[name]
    bounds: dict[str, Any] = {}
    if spec.lo is not None:
        bounds["ge"] = spec.kind(spec.lo)
    if spec.hi is not None:
        bounds["le"] = spec.kind(spec.hi)
    if spec.kind is float:
        bounds["allow_inf_nan"] = False
    shown = spec.bounds() if bounds else "true or false"
    return Field(None, strict=True, description=f"{spec.doc} ({shown})", **bounds)


class PoolPatch(BaseModel):
    """The patchable fields of `pool.core.pool_policy.FIELDS` (a unit test keeps them equal);
    any subset, the others unchanged."""

    model_config = ConfigDict(extra="forbid")

    size: int | None = _patch("size")
    max: int | None = _patch("max")
    min: int | None = _patch("min")
    max_age_s: float | None = _patch("max_age_s")
    max_uses: int | None = _patch("max_uses")
    idle_ttl_s: float | None = _patch("idle_ttl_s")
    surplus_idle_s: float | None = _patch("surplus_idle_s")
    autoscale: bool | None = _patch("autoscale")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
