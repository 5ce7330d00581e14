"""`PoolControl` backed by the daemon running in this process (`--role all` or `worker`)."""

from __future__ import annotations

from pool.core.pool_policy import PoolPolicy
from pool.core.ports import PoolStatus, Readiness
from pool.daemon.service import Daemon
from pool.store.pool_view import owned_only, published_containers


class DaemonPool:
    """Status, policy and readiness of the local daemon's pool, plus what other daemons of the
    same pool publish in Redis. The supervised components' state is the route's to add (the
    supervisor watches the whole process)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

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
                          queue_depth=await self.daemon.store.depth(),
                          containers=await owned_only(self.daemon.store, containers))

    async def readiness(self) -> Readiness:
        """The worker side's checks (`Daemon.readiness`): dispatcher, scheduled jobs, the
        engine, and whether the pool can run or boot a container."""
        counts = self.daemon.pool.state_counts()
        return Readiness(self.daemon.readiness(), warm=counts.get("warm", 0),
                         busy=counts.get("busy", 0))
