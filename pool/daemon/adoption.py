"""Adoption and reaping: this deployment's containers that no live daemon holds.

Run at start, on every reaping tick and at the end of a drain. Only containers labelled with
this daemon's deployment id are ever looked at (`vwe.deployment`; a pool name is not an
identity). For each one this daemon does not track:

- its owner record names a live daemon (lease present): not ours, left alone;
- otherwise (owner dead, or this instance id from an earlier process, or no record): taken
  over by compare-and-set (`OwnershipStore.take_over`): of several daemons trying at once
  exactly one wins, with a new, larger fencing token. The winner shows the agent that token
  at once (a `ping` with `fence`), so a job still carrying the old owner's token is refused.
- Then: idle, answering and compatible (same image id and `vwe.spec` hash) -> adopted warm;
  idle but of another image or spec -> kept unleased and retired once the target is warm with
  current ones (`outdated`); anything else -> removed.

A drain additionally waits (bounded) for owners whose lease has stopped being renewed, so a
daemon restarted right after a `kill -9` and stopped again at once still removes what its
predecessor left (issue 13, failure 5).
"""

from __future__ import annotations

import asyncio
import shutil
import time

from pool.core import constants
from pool.core.exceptions import BootFailed
from pool.core.states import ContainerState
from pool.daemon.agent_client import AgentClient
from pool.daemon.container import Container
from pool.daemon.runtime import (
    LABEL_CREATED,
    LABEL_DEPLOYMENT,
    LABEL_POOL,
    LABEL_SPEC,
    LABEL_TEMPLATE,
    ContainerInfo,
)
from pool.daemon.warm_pool import WarmPool
from pool.infra.logs import get_logger
from pool.store.ownership import LeaseCheck, Owner

log = get_logger("vwe.adoption")

# A live daemon renews its lease every HEARTBEAT_INTERVAL_S: one whose lease has this much
# less than the full TTL left has missed several renewals and is probably dead.
STALE_AFTER_S = 3 * constants.HEARTBEAT_INTERVAL_S


async def open_pool(pool: WarmPool) -> None:
    """Start a pool: learn who we are, take over what dead daemons left, then fill."""
    await pool.prepare()
    await reap(pool, at_start=True)
    pool.reconcile()


async def close_pool(pool: WarmPool, timeout: float, leftovers_s: float = 0.0) -> None:
    """Drain a pool (busy containers get up to `timeout`), then sweep: creates whose id it
    never learned and what dead daemons left, waiting up to `leftovers_s` for a lease that
    stopped being renewed to run out."""
    await pool.drain(timeout)
    await sweep(pool, wait_s=leftovers_s)
    log.info("pool drained")


def fence_off(pool: WarmPool, c: Container, reason: str) -> None:
    """Stop using a container another daemon took over: no removal, no folder cleanup (both
    are the new owner's now)."""
    if pool.containers.get(c.name) is not c and pool.outdated.get(c.name) is not c:
        return
    if not c.ready.done():
        c.ready.set_exception(BootFailed(f"container {c.name} was taken over"))
        c.ready.exception()
    pool.metrics.fenced.labels(pool.template).inc()
    log.warning("container fenced off", container=c.name, token=c.token, reason=reason)
    pool.forget(c)


def give_back(pool: WarmPool, c: Container) -> None:
    """Undo a lease that was not used (the lease check found this daemon's lease lapsed)."""
    pool.give_back(c)


async def revalidate(pool: WarmPool) -> None:
    """Re-prove every container by its token (after a lapsed lease, and on each reaping
    tick); fence off the ones whose record names another owner now. A record that is gone
    while its container still runs was lost with Redis's data: written back (`restore`)."""
    tracked = [c for c in [*pool.containers.values(), *pool.outdated.values()] if c.token]
    owners = await pool.ownership.owners([c.name for c in tracked])
    missing = [c for c in tracked if owners.get(c.name) is None]
    running = {i.name for i in await pool.runtime.list(_labels(pool)) if i.running} \
        if missing else set()
    for c in tracked:
        owner = owners.get(c.name)
        if owner is None:
            if c.name in running:
                await restore(pool, c)
            elif c.state is not ContainerState.BOOTING:  # a boot may not be listed yet
                fence_off(pool, c, "no owner record, and the container is not running")
        elif owner != pool.ownership.mine(c.token):
            fence_off(pool, c, "its owner record names another daemon")


async def restore(pool: WarmPool, c: Container) -> bool:
    """Write back the owner record of a running container this daemon holds, after Redis lost
    its data; fence it off when another owner's record is there. True when it is ours."""
    result = await pool.ownership.restore(c.name, c.token)
    if result is LeaseCheck.FENCED:
        fence_off(pool, c, "its owner record names another daemon")
    elif result is LeaseCheck.OK:
        log.warning("owner record restored (Redis lost its data?)", container=c.name,
                    token=c.token)
    return result is LeaseCheck.OK


async def prove_missing(pool: WarmPool, c: Container) -> bool:
    """A lease check found no owner record: the container is still this daemon's if it runs
    (Redis lost the record: written back); otherwise it is dropped. True when usable."""
    if c.id and await pool.runtime.is_running(c.id):
        return await restore(pool, c)
    fence_off(pool, c, "no owner record, and the container is not running")
    return False


async def reassert(pool: WarmPool, c: Container) -> bool:
    """The agent refused a job as fenced though the record is this daemon's: the counter went
    backwards (Redis lost it). Take a token above the agent's and show it; False when the
    record is not ours (fence it off)."""
    answer = await c.agent.ping(timeout=1.0)
    agent_fence = answer.get("fence") if answer else None
    if not isinstance(agent_fence, int) or isinstance(agent_fence, bool):
        return False
    token = await pool.ownership.reclaim(c.name, c.token, agent_fence)
    if token is None:
        return False
    c.token = token
    await c.agent.ping(timeout=1.0, fence=token)
    log.warning("container re-claimed above its agent's token (the fence counter went "
                "backwards: Redis lost its data?)", container=c.name, token=token,
                agent_fence=agent_fence)
    return True


def _labels(pool: WarmPool) -> dict[str, str]:
    return {LABEL_POOL: pool.settings.pool_name, LABEL_TEMPLATE: pool.template,
            LABEL_DEPLOYMENT: pool.deployment}


async def _untracked(pool: WarmPool) -> list[ContainerInfo]:
    infos = await pool.runtime.list(_labels(pool))
    return [i for i in infos if i.name not in pool.containers and i.name not in pool.outdated]


async def _warn_foreign(pool: WarmPool) -> None:
    """Say once, at start, that containers of this pool name belong to another deployment."""
    foreign = [i.name for i in await pool.runtime.list({LABEL_POOL: pool.settings.pool_name})
               if i.labels.get(LABEL_DEPLOYMENT) != pool.deployment]
    if foreign:
        log.warning("containers of this pool name belong to another deployment (or predate "
                    "deployment ids): left alone", count=len(foreign), examples=foreign[:3],
                    deployment=pool.deployment)


async def reap(pool: WarmPool, *, at_start: bool = False) -> None:
    """Take over what dead daemons left, then adopt, hold as outdated or remove each."""
    if at_start:
        await _warn_foreign(pool)
    if not pool.lease_fresh():
        return  # a takeover needs a live lease; the next tick tries again
    untracked = await _untracked(pool)
    owners = await pool.ownership.owners([i.name for i in untracked])
    alive = await pool.ownership.alive(sorted({o.instance for o in owners.values()
                                               if o is not None and o.instance != pool.instance}))
    for info in untracked:
        seen = owners[info.name]
        if seen is not None and seen.instance != pool.instance and seen.instance in alive:
            continue  # a live daemon's container: not ours to touch
        await _take_over(pool, info, seen)


async def _take_over(pool: WarmPool, info: ContainerInfo, seen: Owner | None) -> bool:
    host_dir = pool.sockets_dir / info.name
    agent = AgentClient(host_dir)
    # The token its agent holds: the new one must be larger, or the agent refuses every job
    # (after Redis lost the fence counter, the counter alone would start again from 0).
    before = await agent.ping() if info.running else None
    agent_fence = before.get("fence") if before else 0
    if not isinstance(agent_fence, int) or isinstance(agent_fence, bool):
        agent_fence = 0
    result = await pool.ownership.take_over(info.name, seen, agent_fence)
    if result.token is None:
        return False  # another daemon won the race, or the owner came back, or our lease lapsed
    token = result.token
    pool.metrics.takeovers.labels(pool.template).inc()
    previous = seen.instance if seen else None
    log.info("container taken over", container=info.name, previous_owner=previous, token=token)
    answer = await agent.ping(fence=token) if info.running else None
    idle = answer is not None and not answer.get("busy")
    compatible = (info.image_id == pool.image_id
                  and info.labels.get(LABEL_SPEC) == pool.spec_hash)
    if idle and not pool.closing and (not compatible or len(pool.containers) < pool.cap()):
        created = float(info.labels.get(LABEL_CREATED) or pool.clock())
        assert answer is not None
        c = pool.adopt(info.name, host_dir=host_dir, container_id=info.id, token=token,
                       created_at=created, uses=int(answer.get("uses", 0)),
                       outdated=not compatible)
        log.info("container adopted" if compatible else "outdated container held for retiring",
                 container=c.name, previous_owner=previous, image_id=info.image_id[:19])
        return True
    log.info("orphan container removed", container=info.name, previous_owner=previous,
             running=info.running, busy=bool(answer and answer.get("busy")))
    await pool.runtime.remove(info.id)
    await pool.ownership.release(info.name, token)
    shutil.rmtree(host_dir, ignore_errors=True)
    return True


async def sweep(pool: WarmPool, wait_s: float) -> None:
    """At the end of a drain (the pool is closing: nothing is adopted, all is removed): what
    this daemon still owns, and what dead daemons left. An owner whose lease is running out
    without being renewed is waited for, up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        untracked = await _untracked(pool)
        owners = await pool.ownership.owners([i.name for i in untracked])
        wait = 0.0
        for info in untracked:
            seen = owners[info.name]
            if seen is not None and seen.instance != pool.instance:
                left = await pool.ownership.lease_ttl(seen.instance)
                if left is not None:
                    if left < pool.settings.heartbeat_ttl_s - STALE_AFTER_S:
                        wait = max(wait, left)  # not renewed lately: wait for it to lapse
                    continue
            await _take_over(pool, info, seen)
        if wait <= 0 or time.monotonic() + wait > deadline:
            if wait > 0:
                log.warning("left containers of a silent daemon whose lease outlasts the "
                            "drain; the next daemon to start removes them", wait_s=wait)
            return
        await asyncio.sleep(wait + 0.05)
