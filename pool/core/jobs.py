"""A job as stored in Redis: one hash, read in one call, typed on the way out."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from pool.core.states import JobState

# The template a job runs on when it names none (docs/deploy.md, "Templates"); its Redis keys
# are the pool's own, as they were before templates existed.
DEFAULT_TEMPLATE = "default"


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int
    sha256: str
    content_type: str


@dataclass
class Job:
    id: str
    seed: str
    status: JobState
    seed_hash: int | None = None
    generator: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    launch_type: str | None = None
    attempts: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    generation_s: float | None = None
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    container: str | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    template: str = DEFAULT_TEMPLATE

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Job:
        def num(name: str) -> float | None:
            value = raw.get(name)
            return float(value) if value not in (None, "") else None

        seed_hash = raw.get("seed_hash")
        return cls(
            id=raw["id"],
            seed=raw.get("seed", ""),
            status=JobState(raw.get("status", JobState.QUEUED)),
            seed_hash=int(seed_hash) if seed_hash not in (None, "") else None,
            generator=raw.get("generator", ""),
            options=json.loads(raw.get("options") or "{}"),
            launch_type=raw.get("launch_type") or None,
            attempts=int(raw.get("attempts") or 0),
            queued_at=num("queued_at"),
            started_at=num("started_at"),
            finished_at=num("finished_at"),
            generation_s=num("generation_s"),
            progress=float(raw.get("progress") or 0.0),
            message=raw.get("message", ""),
            error=raw.get("error") or None,
            container=raw.get("container") or None,
            artifacts=[Artifact(**a) for a in json.loads(raw.get("artifacts") or "[]")],
            template=raw.get("template") or DEFAULT_TEMPLATE,
        )

    @property
    def finished(self) -> bool:
        return self.status in (JobState.SUCCEEDED, JobState.FAILED)


def encode_artifacts(artifacts: list[Artifact]) -> str:
    return json.dumps([a.__dict__ for a in artifacts], separators=(",", ":"))
