"""One worker container as the pool tracks it, and the folder it shares with the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from pool.core.policy import ContainerRecord
from pool.core.states import ContainerState, LaunchType
from pool.daemon.agent_client import AgentClient
from pool.daemon.runtime import ContainerRuntime


@dataclass(eq=False)
class Container:
    """One worker container's effects side: its Docker id, shared folder, agent and fencing
    token. Its state, uses and times are its record in the pool's
    `pool.core.machine.PoolMachine` (`record`), read here and changed only by the machine."""

    name: str
    host_dir: Path
    owner: str
    record: ContainerRecord
    id: str = ""
    token: int = 0  # the fencing token of this daemon's owner record; 0 until claimed
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())
    agent: AgentClient = field(init=False)

    def __post_init__(self) -> None:
        self.agent = AgentClient(self.host_dir)

    @property
    def state(self) -> ContainerState:
        return self.record.state

    @property
    def uses(self) -> int:
        return self.record.uses

    @property
    def created_at(self) -> float:
        return self.record.created_at

    @property
    def last_used_at(self) -> float:
        return self.record.last_used_at

    @property
    def claimed(self) -> bool:
        """A booting container promised to a job waiting for it."""
        return self.record.promised


@dataclass(frozen=True)
class Lease:
    container: Container
    launch_type: LaunchType


class LeaseNotHeld(Exception):
    """This daemon's instance lease is not live: it may not create or use containers now."""


def prepare_dir(path: Path, worker_user: str) -> None:
    """Create a container's folder for the worker (`uid:gid`) to make its socket and output in.

    The least privilege is a daemon of the worker's own uid (docs/deploy.md): the folder stays
    0700. A root daemon gives it away. (A daemon of another uid is refused at start,
    `pool.daemon.preflight`; the 0777 branch only serves in-process tools.)"""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid, _, gid = worker_user.partition(":")
    if uid.isdigit() and os.geteuid() == int(uid):
        path.chmod(0o700)
    elif os.geteuid() == 0 and uid.isdigit():
        os.chown(path, int(uid), int(gid or uid))
        path.chmod(0o700)
    else:
        path.chmod(0o777)


async def container_logs(runtime: ContainerRuntime, c: Container) -> str:
    """The last lines of a container's log, for the record of a failed boot ('' if none)."""
    if not c.id:
        return ""
    with contextlib.suppress(Exception):
        return (await runtime.logs(c.id, tail=20))[-2000:]
    return ""
