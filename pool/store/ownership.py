"""Who owns which container: the deployment id, the instance lease and fenced owner records.

Redis keys, under the pool's name `{p}` (docs/architecture.md, "Ownership"):

- `{p}:deployment`: the deployment id, created once (SET NX) and carried by every container
  as the `vwe.deployment` label. Two deployments may share a pool name on one engine; each
  daemon only ever lists, adopts or removes containers that carry its own deployment's id.
- `{p}:daemon:{instance}`: the instance lease, a per-process nonce with a TTL. Claimed with
  SET NX at start (a second process with the same `VWE_INSTANCE_ID` is refused), refreshed by
  the lease keeper (`pool.lease`), compared-and-deleted at the end of a drain.
- `{p}:fence`: the fencing-token counter. Every claim of a container INCRs it, so a newer
  owner always holds a larger token than any earlier one.
- `{p}:owner:{container}`: `"<token>:<instance>"`, the container's current owner.

The fencing counter never goes backwards from a token anyone has seen (issue 13 after a Redis
data loss, docs/architecture.md "Redis losing data"): every claim first raises the counter to
a floor (the largest token this daemon knows, the record's own token and, on a takeover, the
token the container's agent reports), so a new token is always larger than what the agent
holds. After a data loss the running daemon writes back what it owns: the deployment id (SET
NX, each heartbeat) and the record of each of its containers still running (`restore`, when
it re-proves them: after its lease lapsed, each reaping tick, and when a lease check finds no
record), with the counter raised to the token. A record is only ever missing after a data loss
or once its container was removed (removal comes before release), hence the engine check.

A takeover is one compare-and-set (a Lua script, so atomic in Redis): it succeeds only when
the record still holds what the caller saw, the recorded owner's lease is gone and the caller's
own lease is live. Of two daemons racing to adopt a dead daemon's container exactly one wins;
the other sees a live owner. A lease checks, in the same round trip that records the launch on
the job, that the daemon's lease is live and the container's token is still its own: a daemon
resumed after a freeze finds the token changed and drops the container ("fenced off"). The
agent enforces the token too (`worldgen.agent`): it refuses a job carrying a token older than
the newest it was shown, which closes the gap between the Redis check and the handoff.

Written by hand because redis-py's `Lock` has no fencing token and no compare-and-set on an
observed owner; the scripts are a few lines each.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from pool.store import keys as c

# Raise the fence counter (KEYS[2]) to at least a floor (ARGV[n]) before INCR: a data
# loss reset it, and tokens must stay larger than any an agent or daemon has seen.
_RAISE_LUA = """
local floor = tonumber(ARGV[{n}])
if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then
  redis.call('SET', KEYS[2], ARGV[{n}])
end
"""

# Claim a new container's record: only while the caller's lease is live.
# KEYS: caller's lease, fence counter, owner record. ARGV: nonce, instance, floor.
_CLAIM_NEW_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
""" + _RAISE_LUA.format(n=3) + """
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], token .. ':' .. ARGV[2])
return token
"""

# Compare-and-set takeover of one container's record.
# KEYS: caller's lease, fence counter, owner record. ARGV: caller's nonce, caller's instance,
# the record as the caller saw it ('' = none), the lease key prefix, the floor.
# Returns {token, ''} on success, {0, current} when the record changed, {-1, current} when its
# owner is alive, {-2, ''} when the caller's own lease is not live.
_TAKE_OVER_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-2, ''} end
local current = redis.call('GET', KEYS[3]) or ''
if current ~= ARGV[3] then return {0, current} end
if current ~= '' then
  local owner = string.sub(current, string.find(current, ':', 1, true) + 1)
  if owner ~= ARGV[2] and redis.call('EXISTS', ARGV[4] .. owner) == 1 then
    return {-1, current}
  end
end
""" + _RAISE_LUA.format(n=5) + """
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], token .. ':' .. ARGV[2])
return {token, ''}
"""

# Write back a record a data loss took (none there): the caller's, with the counter raised to
# its token. KEYS: caller's lease, fence counter, owner record. ARGV: nonce,
# "<token>:<instance>", token. 1 = the record is the caller's, 0 = the caller's lease is not
# live, -1 = another owner's record is there.
_RESTORE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = redis.call('GET', KEYS[3])
if not current then
""" + _RAISE_LUA.format(n=3) + """
  redis.call('SET', KEYS[3], ARGV[2])
elseif current ~= ARGV[2] then
  return -1
end
return 1
"""

# The check before a lease, in the round trip that records the launch on the job.
# KEYS: caller's lease, owner record, job hash. ARGV: nonce, "<token>:<instance>", launch
# type, container name. 1 = go ahead, 0 = the caller's lease is not live, -1 = fenced off,
# -3 = no record at all (Redis lost it, or the container is gone): the caller proves the
# container alive and `restore`s the record, or drops it.
_CHECK_LEASE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = redis.call('GET', KEYS[2])
if not current then return -3 end
if current ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[3], 'launch_type', ARGV[3], 'container', ARGV[4])
return 1
"""

# Re-claim a container this daemon still owns with a new token above a floor (an agent holds a
# newer token than the record: the counter went backwards). KEYS: caller's lease, fence
# counter, owner record. ARGV: nonce, instance, floor, "<token>:<instance>" as now.
# Returns the new token, 0 when the record is not the caller's, -2 when its lease is not live.
_RECLAIM_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return 0 end
""" + _RAISE_LUA.format(n=3) + """
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], token .. ':' .. ARGV[2])
return token
"""

# Delete a record (or a lease) only if it still holds the caller's value.
_COMPARE_AND_DELETE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The lease keeper's refresh: 1 = refreshed, 0 = lapsed (gone), -1 = held by another process.
REFRESH_LEASE_LUA = """
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not value then return 0 end
return -1
"""


class LeaseCheck(StrEnum):
    """The outcome of the check before a lease."""

    OK = "ok"
    LAPSED = "lapsed"  # this daemon's lease is not live: wait for the keeper to renew it
    FENCED = "fenced"  # another daemon took the container over: stop using it
    MISSING = "missing"  # no record at all: Redis lost its data, or the container is gone


@dataclass(frozen=True)
class Owner:
    """One container's owner record: the fencing token and the daemon instance holding it."""

    token: int
    instance: str

    def encode(self) -> str:
        return f"{self.token}:{self.instance}"

    @classmethod
    def parse(cls, raw: str | bytes | None) -> Owner | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        token, sep, instance = text.partition(":")
        if not sep or not token.isdigit():
            return None
        return cls(int(token), instance)


@dataclass(frozen=True)
class Takeover:
    """The outcome of `OwnershipStore.take_over`: a new token, or why not."""

    token: int | None
    current: Owner | None = None  # the record as it is now, when the takeover lost
    owner_alive: bool = False
    lease_lapsed: bool = False


class InstanceTaken(Exception):
    """Another live process holds this instance id's lease."""

    def __init__(self, instance: str, ttl_s: float) -> None:
        super().__init__(
            f"VWE_INSTANCE_ID={instance!r} is held by another live daemon on this Redis and "
            f"pool (its lease expires in {ttl_s:.1f} s unless renewed): give each daemon its "
            "own VWE_INSTANCE_ID (or leave it unset for a unique default)")
        self.instance = instance
        self.ttl_s = ttl_s


async def recorded_owners(redis: aioredis.Redis, pool: str,
                          containers: Sequence[str]) -> dict[str, Owner | None]:
    """The owner records of some containers, for readers that hold no lease (the API)."""
    if not containers:
        return {}
    prefix = c.key(c.OWNER_KEY_PREFIX, pool)
    raw = await redis.mget([prefix + n for n in containers])
    return {n: Owner.parse(v) for n, v in zip(containers, raw, strict=True)}


class OwnershipStore:
    """The ownership records of one pool, as seen by one daemon instance.

    `nonce` identifies this process's lease: a restarted process with the same instance id has
    another nonce, so it cannot renew (or delete) the lease of its predecessor.
    """

    def __init__(self, redis: aioredis.Redis, pool: str, instance: str,
                 nonce: str | None = None) -> None:
        self.redis: Any = redis  # replies are decoded explicitly; see JobStore
        self.pool = pool
        self.instance = instance
        self.nonce = nonce or secrets.token_hex(12)
        # The largest fencing token this daemon has held or read: no claim of its own gets a
        # smaller one, even after Redis lost the counter.
        self.highest = 0
        self.lease_prefix = c.key(c.HEARTBEAT_KEY_PREFIX, pool)
        self.lease_key = self.lease_prefix + instance
        self.fence_key = c.key(c.FENCE_KEY, pool)
        self.owner_prefix = c.key(c.OWNER_KEY_PREFIX, pool)
        self._claim_new = self.redis.register_script(_CLAIM_NEW_LUA)
        self._take_over = self.redis.register_script(_TAKE_OVER_LUA)
        self._check = self.redis.register_script(_CHECK_LEASE_LUA)
        self._restore = self.redis.register_script(_RESTORE_LUA)
        self._reclaim = self.redis.register_script(_RECLAIM_LUA)
        self._cad = self.redis.register_script(_COMPARE_AND_DELETE_LUA)

    def owner_key(self, container: str) -> str:
        return self.owner_prefix + container

    def mine(self, token: int) -> Owner:
        return Owner(token, self.instance)

    def seen(self, token: int | None) -> int:
        """Note a token this daemon held or read; returns the floor for its next claim."""
        self.highest = max(self.highest, token or 0)
        return self.highest

    # ---- deployment and instance ----
    async def deployment_id(self) -> str:
        """This deployment's id: created by the first daemon ever to start, then fixed."""
        key = c.key(c.DEPLOYMENT_KEY, self.pool)
        await self.redis.set(key, uuid.uuid4().hex, nx=True)
        value = await self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else str(value)

    async def restore_deployment(self, deployment: str) -> str | None:
        """Write this daemon's deployment id back if Redis lost it (SET NX, each heartbeat):
        otherwise the next daemon to start makes a new one and leaves every container of this
        one alone, for ever. Returns the id Redis holds (another one: a second deployment
        started in between; its daemons leave this one's containers alone)."""
        if not deployment:
            return None
        # SET NX GET (Redis >= 7.0): the value held before, or nil when this one was set.
        held = await self.redis.set(c.key(c.DEPLOYMENT_KEY, self.pool), deployment, nx=True,
                                    get=True)
        if held is None:
            return deployment
        return held.decode() if isinstance(held, bytes) else str(held)

    async def claim_instance(self, ttl_s: float) -> None:
        """Claim this instance id's lease, or raise `InstanceTaken` when a live one holds it."""
        ok = await self.redis.set(self.lease_key, self.nonce, nx=True, px=int(ttl_s * 1000))
        if not ok:
            left = await self.redis.pttl(self.lease_key)
            raise InstanceTaken(self.instance, max(0, int(left)) / 1000)

    async def release_instance(self) -> None:
        await self._cad(keys=[self.lease_key], args=[self.nonce])

    async def lease_ttl(self, instance: str) -> float | None:
        """Seconds left on a daemon's lease, or None when it has none (dead, or never was)."""
        left = int(await self.redis.pttl(self.lease_prefix + instance))
        return left / 1000 if left >= 0 else None

    async def alive(self, instances: Sequence[str]) -> set[str]:
        """Which of these instances hold a lease now."""
        if not instances:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for instance in instances:
                pipe.exists(self.lease_prefix + instance)
            found = await pipe.execute()
        return {i for i, n in zip(instances, found, strict=True) if n}

    # ---- containers ----
    async def claim_new(self, container: str) -> int | None:
        """A record for a container about to be created: its token, or None when this
        daemon's lease is not live (it must not create anything then)."""
        token = int(await self._claim_new(
            keys=[self.lease_key, self.fence_key, self.owner_key(container)],
            args=[self.nonce, self.instance, self.seen(0)]))
        self.seen(token)
        return token or None

    async def owners(self, containers: Sequence[str]) -> dict[str, Owner | None]:
        found = await recorded_owners(self.redis, self.pool, containers)
        for owner in found.values():
            self.seen(owner.token if owner else 0)
        return found

    async def take_over(self, container: str, seen: Owner | None,
                        agent_fence: int = 0) -> Takeover:
        """Compare-and-set the record from `seen` (None = no record) to this daemon.
        `agent_fence`: the token the container's agent holds; the new token is larger."""
        floor = max(self.seen(seen.token if seen else 0), agent_fence)
        code, current = await self._take_over(
            keys=[self.lease_key, self.fence_key, self.owner_key(container)],
            args=[self.nonce, self.instance, seen.encode() if seen else "", self.lease_prefix,
                  floor])
        code = int(code)
        if code > 0:
            self.seen(code)
            return Takeover(code)
        return Takeover(None, Owner.parse(current), owner_alive=code == -1,
                        lease_lapsed=code == -2)

    async def check_lease(self, container: str, token: int, job_key: str,
                          launch_type: str) -> LeaseCheck:
        """Before a handoff: lease live and token current; records the launch on the job."""
        self.seen(token)
        code = int(await self._check(
            keys=[self.lease_key, self.owner_key(container), job_key],
            args=[self.nonce, self.mine(token).encode(), launch_type, container]))
        return {1: LeaseCheck.OK, 0: LeaseCheck.LAPSED,
                -3: LeaseCheck.MISSING}.get(code, LeaseCheck.FENCED)

    async def restore(self, container: str, token: int) -> LeaseCheck:
        """Write back this daemon's record of a container it holds when Redis has none (a data
        loss), raising the counter to the token. FENCED when another owner's record is there."""
        code = int(await self._restore(
            keys=[self.lease_key, self.fence_key, self.owner_key(container)],
            args=[self.nonce, self.mine(token).encode(), self.seen(token)]))
        return {1: LeaseCheck.OK, 0: LeaseCheck.LAPSED}.get(code, LeaseCheck.FENCED)

    async def reclaim(self, container: str, token: int, agent_fence: int) -> int | None:
        """A new token, above `agent_fence`, for a container whose record is still this
        daemon's but whose agent holds a newer token (the counter went backwards). None when
        the record is not ours (taken over: fence it off) or our lease is not live."""
        code = int(await self._reclaim(
            keys=[self.lease_key, self.fence_key, self.owner_key(container)],
            args=[self.nonce, self.instance, max(self.seen(token), agent_fence),
                  self.mine(token).encode()]))
        if code > 0:
            self.seen(code)
            return code
        return None

    async def release(self, container: str, token: int) -> bool:
        """Delete the record if it is still this daemon's (after removing the container)."""
        return bool(await self._cad(keys=[self.owner_key(container)],
                                    args=[self.mine(token).encode()]))
