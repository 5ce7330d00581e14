"""States of containers and jobs, stored as their string values."""

from enum import StrEnum


class ContainerState(StrEnum):
    BOOTING = "booting"
    WARM = "warm"
    BUSY = "busy"
    RETIRING = "retiring"
    GONE = "gone"
    FAILED = "failed"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LaunchType(StrEnum):
    WARM = "warm"
    COLD = "cold"


class RecycleReason(StrEnum):
    MAX_AGE = "max_age"
    MAX_USES = "max_uses"
    IDLE = "idle"
    UNHEALTHY = "unhealthy"
    RESIZE = "resize"
    DRAIN = "drain"
    # Adopted from a dead daemon but made from another image or worker spec: retired once
    # the pool's target is warm with current ones, never leased.
    OUTDATED = "outdated"


class FailurePhase(StrEnum):
    BOOT = "boot"
    HANDOFF = "handoff"
    GENERATION = "generation"
