"""Request and response models: the HTTP contract of docs/architecture.md, typed."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pool.core.jobs import DEFAULT_TEMPLATE, Job
from pool.core.pool_policy import BY_NAME, FIELDS

MAX_SEED_UNITS = 10
LAYERS = ("biomes", "heights")  # worldgen.generate.LAYERS
DEFAULT_LAYERS = ["biomes"]
# A template's name (pool.infra.templates.NAME_PATTERN).
TEMPLATE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"


# The seed characters the API takes: the Basic Multilingual Plane less control characters
# (C0, DEL, C1) and surrogates. The game counts a seed's length in UTF-16 code units, where a
# character beyond the BMP (an emoji) counts two; JSON Schema counts characters, so the API
# takes BMP characters only, where both counts agree and the schema says exactly what is
# accepted. (The worldgen library and `vwe-pool worldgen` take any seed the game takes.)
SEED_CHARS = "\\u0020-\\u007e\\u00a0-\\ud7ff\\ue000-\\uffff"
SEED_PATTERN = f"^[{SEED_CHARS}]{{1,{MAX_SEED_UNITS}}}$"
_SEED_RE = re.compile(SEED_PATTERN)


def check_seed(seed: str) -> str:
    """The API's seed rule (`SEED_PATTERN`): 1-10 characters of the BMP, none of them a
    control character; the game's own limit is 10 UTF-16 code units.

    Raises:
        ValueError: naming what is wrong (empty, too long, a control or non-BMP character).
    """
    if _SEED_RE.fullmatch(seed):
        return seed
    if not seed:
        raise ValueError("seed must not be empty")
    if len(seed) > MAX_SEED_UNITS:
        raise ValueError(f"seed must be at most {MAX_SEED_UNITS} characters, got {len(seed)}")
    bad = next(ch for ch in seed if not _SEED_RE.fullmatch(ch))
    if ord(bad) > 0xFFFF:
        raise ValueError(f"seed characters must be in the Basic Multilingual Plane (found "
                         f"{bad!r}, which the game counts as two characters)")
    raise ValueError(f"seed must not contain control characters (found {bad!r})")


def _json_int(value: Any) -> Any:
    # JSON has no integer type of its own: 16 and 16.0 are both integers to JSON Schema, but
    # true and "16" are not (pydantic's lax mode would take them as 1 and 16).
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer (not a boolean or a string)")
    return value


# Strict JSON types: an integer is a number without a fraction (never a boolean or a string;
# the models check it with a "before" validator, which keeps the bounds in the schema), a
# boolean is true or false (never 0 or 1), a number is finite.
JsonBool = Annotated[bool, Field(strict=True)]
JsonFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class WorldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: Annotated[str, Field(strict=True)] = Field(
        # Checked by `check_seed` (one regex, and messages that say what is wrong); the
        # schema states the same rule.
        json_schema_extra={"pattern": SEED_PATTERN, "minLength": 1, "maxLength": MAX_SEED_UNITS},
        examples=["MWd8eV6svz"],
        description="Valheim seed text: 1-10 characters of the Basic Multilingual Plane, no "
                    "control characters")
    worldgen_version: int = Field(2, ge=0, le=2, description="Worldgen rules version")
    legacy_fwl: JsonBool = Field(False, description="Also write the legacy <Name>.fwl")
    resolution: int | None = Field(None, ge=16, le=4096,
                                   description="Biome map size in cells (default 2048)")
    layers: list[Literal["biomes", "heights"]] | None = Field(
        None, min_length=1, max_length=8,
        description="Outputs: biomes (biomes.npy/png), heights (heights.npy, relief.png, "
                    "rivers.json); default [\"biomes\"]", examples=[["biomes", "heights"]])
    template: Annotated[str, Field(strict=True)] = Field(
        DEFAULT_TEMPLATE, pattern=TEMPLATE_PATTERN, examples=["default"],
        description="The worker template (a kind of worker with a pool of its own; "
                    "config/templates.toml); its default options apply where the request "
                    "gives none. An undefined one is a 404 template_not_found")

    _ints = field_validator("worldgen_version", "resolution", mode="before")(_json_int)

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: str) -> str:
        return check_seed(value)

    def options(self, default_resolution: int,
                defaults: dict[str, Any] | None = None) -> dict[str, object]:
        """The job options (and so the cache key): each the request's own value, else the
        template's `defaults` (`TemplateOptions.as_dict`), else the model's default
        (`default_resolution` for the map); layers in canonical order, deduplicated."""
        if not defaults:
            layers = [x for x in LAYERS if x in (self.layers or DEFAULT_LAYERS)]
            return {"worldgen_version": self.worldgen_version, "legacy_fwl": self.legacy_fwl,
                    "resolution": self.resolution or default_resolution, "layers": layers}
        given = self.model_fields_set
        wanted = self.layers or defaults.get("layers") or DEFAULT_LAYERS
        return {
            "worldgen_version": (self.worldgen_version if "worldgen_version" in given
                                 else defaults.get("worldgen_version", self.worldgen_version)),
            "legacy_fwl": (self.legacy_fwl if "legacy_fwl" in given
                           else defaults.get("legacy_fwl", self.legacy_fwl)),
            "resolution": self.resolution or defaults.get("resolution", default_resolution),
            "layers": [x for x in LAYERS if x in wanted],
        }


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
    template: str = Field(DEFAULT_TEMPLATE, description="The template the job runs on")

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
        "error": job.error, "cached": cached, "template": job.template,
    }


class ContainerOut(BaseModel):
    id: str
    name: str
    state: str
    age_s: float
    uses: int
    daemon: str


class PoolOut(BaseModel):
    template: str = Field(description="The template whose pool this is")
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
    bounds = spec.field_constraints()
    shown = spec.bounds() if bounds else "true or false"
    # Integers go through `_json_int` instead of strict mode: JSON Schema counts 110.0 as an
    # integer, so the schema's own examples must be accepted.
    strict = spec.kind is not int
    return Field(None, strict=strict, description=f"{spec.doc} ({shown})", **bounds)


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

    _ints = field_validator(*(f.name for f in FIELDS if f.patchable and f.kind is int),
                            mode="before")(_json_int)


class ReadyOut(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool] = Field(description="Each check and whether it passes")
    down: list[str] = Field(description="The failing checks")
    reasons: dict[str, str] = Field(description="Why each failing check fails")
    warm: int | None = Field(None, description="Warm containers (with a daemon)")
    busy: int | None = Field(None, description="Busy containers (with a daemon)")
    workers: int | None = Field(None, description="Live daemons (role api only)")
    templates: dict[str, int] | None = Field(
        None, description="Warm containers of each template this process runs a pool for")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
