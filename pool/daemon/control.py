"""`PoolControl` backed by the daemon running in this process (`--role all` or `worker`)."""

from __future__ import annotations

from collections.abc import Callable

from pool.core.pool_policy import PoolPolicy
from pool.core.ports import PoolStatus, Readiness, failed_components
from pool.daemon.service import Daemon
from pool.store.pool_view import published_containers


class DaemonPool:
    """Status, policy and readiness of the local daemon's pool, plus what other daemons of the
    same pool publish in Redis.

    `components` names the health of the process's supervised tasks (True = running); the
    composition root passes its supervisor's view, so a dead loop shows in `/readyz`.
    """

    def __init__(self, daemon: Daemon,
                 components: Callable[[], dict[str, bool]] = dict) -> None:
        self.daemon = daemon
        self.components = components

    async def policy(self) -> PoolPolicy:
        return self.daemon.pool.policy

    async def set_policy(self, policy: PoolPolicy) -> None:
        await self.daemon.store.save_policy(policy)
        self.daemon.pool.set_policy(policy)

    async def status(self) -> PoolStatus:
        pool = self.daemon.pool
        containers = pool.snapshot()
        containers.extend(await published_containers(self.daemon.store,
                                                     skip_daemon=self.daemon.settings.instance_id))
        autoscaled = pool.autoscaled
        return PoolStatus(policy=pool.policy, target=pool.target(),
                          autoscale_reason=autoscaled[1] if autoscaled else None,
                          queue_depth=await self.daemon.store.depth(), containers=containers)

    async def readiness(self) -> Readiness:
        checks = {"docker": await self.daemon.runtime.ping(),
                  "pool_booted": self.daemon.pool.filled}
        checks.update(failed_components(self.components()))
        return Readiness(checks, warm=self.daemon.pool.state_counts().get("warm", 0))
