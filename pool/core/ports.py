"""What the HTTP API may ask of the pool: the narrow, typed seam between `api` and the daemon.

The API never imports `pool.daemon`; the composition root (`pool.entry.root`) hands it an
object satisfying `PoolControl`: the local daemon's pool when this process runs one, or a view
of the pool kept in Redis when it only serves HTTP (docs/architecture.md, "Dependency rules").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pool.core.pool_policy import PoolPolicy


@dataclass(frozen=True)
class PoolStatus:
    """The pool as `GET /v1/pool` shows it.

    `containers` are the JSON records every daemon publishes (name, state, age_s, uses,
    daemon, ...), this process's own first; `target` is the warm target now (the autoscaler's
    when it is on); `queue_depth` counts jobs waiting.
    """

    policy: PoolPolicy
    target: int
    autoscale_reason: str | None
    queue_depth: int
    containers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Readiness:
    """`/readyz`'s answer for the pool: named checks {name: (ok, why)} (all must hold), the
    warm and busy counts where a pool runs here, the live workers (informational) where none
    does."""

    checks: dict[str, tuple[bool, str]]
    warm: int | None = None
    busy: int | None = None
    workers: int | None = None

    @property
    def ready(self) -> bool:
        return all(ok for ok, _ in self.checks.values())


class PoolControl(Protocol):
    """Status, policy and readiness of the pool, as the API sees them."""

    async def policy(self) -> PoolPolicy:
        """The policy in force (the persisted run-time one over the configured one)."""
        ...

    async def set_policy(self, policy: PoolPolicy) -> None:
        """Persist `policy` and apply it at once where a pool runs here."""
        ...

    async def status(self) -> PoolStatus: ...

    async def readiness(self) -> Readiness:
        """Checks of what this process runs: Redis always; Docker and a booted pool with a
        daemon. Never raises: an unreachable dependency is a failed check."""
        ...
