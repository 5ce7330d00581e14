"""The Redis job store and queue: records, a stream with a consumer group, attempts, results.

Delivery is at least once: an entry stays pending until its result is recorded, and a daemon
that dies leaves its entries to be reclaimed. Completion is exactly once: a result is recorded
only by the attempt that currently owns the job (checked under WATCH).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError, WatchError

from pool.core.exceptions import QueueFull
from pool.core.jobs import DEFAULT_TEMPLATE, Artifact, Job, encode_artifacts, new_job_id
from pool.core.pool_policy import PoolPolicy
from pool.core.states import JobState
from pool.infra.logs import get_logger
from pool.store import keys as k
from pool.store.autopipeline import AutoPipeline

log = get_logger("vwe.store")

# Keys SCAN looks at per round trip (Redis' default is 10: a keyspace of job records took
# hundreds of round trips).
SCAN_BATCH = 1000

# Atomic submit: serve the cache, join a generation in flight, or enqueue a new job.
# The job travels as one JSON string each way: parsing ~40 reply values in the client costs
# more than the rest of a cached request.
_SUBMIT_LUA = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local flat = redis.call('HGETALL', ARGV[1] .. existing)
  if #flat > 0 then
    local job = {}
    for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
    if job['status'] ~= 'failed' then return {'existing', existing, cjson.encode(job)} end
  end
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[4]) then
  return {'full', ''}
end
local fields = {}
for k, v in pairs(cjson.decode(ARGV[7])) do
  fields[#fields + 1] = k
  fields[#fields + 1] = v
end
redis.call('HSET', ARGV[1] .. ARGV[2], unpack(fields))
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[5])
redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'job', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
return {'created', ARGV[2]}
"""

# Atomic start of an attempt: skip (and ack) a job that finished or expired meanwhile.
_START_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if (not status) or status == 'succeeded' or status == 'failed' then
  redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
  return false
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3], 'entry', ARGV[2],
           'consumer', ARGV[4], 'progress', '0', 'message', 'handing off')
if status == 'queued' then redis.call('DECR', KEYS[2]) end
return redis.call('HGETALL', KEYS[1])
"""


# What Redis answers when the job stream or its consumer group no longer exists: Redis lost its
# data (restarted without persistence, flushed, failed over to an empty replica).
_STREAM_LOST = ("NOGROUP", "no such key", "UNBLOCKED the stream key no longer exists")


def stream_lost(exc: BaseException) -> bool:
    """True when `exc` says the job stream or the consumer group is gone."""
    return isinstance(exc, ResponseError) and any(s in str(exc) for s in _STREAM_LOST)


class Beat(NamedTuple):
    """What a heartbeat reads back (`JobStore.beat`)."""
    policy: PoolPolicy
    depth: int  # jobs queued, not yet taken


def _overlay(base: PoolPolicy, raw: dict[Any, Any]) -> PoolPolicy:
    """The persisted policy hash laid over `base`; invalid stored values are ignored with a
    warning."""
    policy, problems = base.overlay({_s(name): _s(v) for name, v in raw.items()})
    for problem in problems:
        log.warning("ignoring an invalid persisted policy value", problem=problem)
    return policy


@dataclass(frozen=True)
class Submission:
    job_id: str
    created: bool
    job: Job  # the new job as queued, or the existing one when `created` is False


class StreamEntry(NamedTuple):
    """One entry of the job stream (Redis Streams terms): its id and the job id it carries."""

    entry_id: str
    job_id: str


@dataclass(frozen=True)
class Attempt:
    """One attempt at a job: the stream entry this daemon took and the job as it started."""

    entry_id: str
    job: Job


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}


def _options_text(options: dict[str, Any]) -> str:
    """Options as stored in a job and in its seed key: sorted keys, no spaces."""
    return orjson.dumps(options, option=orjson.OPT_SORT_KEYS).decode()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, fields: dict[Any, Any]) -> StreamEntry:
    return StreamEntry(_s(entry_id), _s(fields.get(b"job", fields.get("job", ""))))


class JobStore:
    """The jobs of one template of a pool (`template`; docs/deploy.md, "Templates"): its own
    stream, queue depth, arrivals, boot times, policy and container records; job records,
    seed keys and events shared with the pool's other templates, so a job is found by its id
    alone."""

    def __init__(self, redis: aioredis.Redis, pool_name: str, result_ttl_s: int,
                 queue_max: int, *, min_replicas: int = 0, wait_timeout_s: float = 1.0,
                 template: str = DEFAULT_TEMPLATE) -> None:
        # redis-py types every reply as a union of sync and async shapes; the replies used
        # here are decoded explicitly, so the client is held untyped.
        self.redis: Any = redis
        self.pool = pool_name
        self.template = template
        self.scope = k.scope(pool_name, template)
        self.result_ttl_s = result_ttl_s
        self.queue_max = queue_max
        self.stream = k.key(k.JOB_STREAM, self.scope)
        self.depth_key = k.key(k.QUEUE_DEPTH_KEY, self.scope)
        self.job_prefix = k.key(k.JOB_KEY_PREFIX, pool_name)
        self.events = k.key(k.EVENTS_CHANNEL_PREFIX, pool_name)
        self._submit_sha = self.redis.register_script(_SUBMIT_LUA).sha
        # The API's busiest call; with min_replicas, acknowledged only once replicated.
        self._submits = AutoPipeline(redis, min_replicas=min_replicas,
                                     wait_timeout_s=wait_timeout_s)
        self._start = self.redis.register_script(_START_LUA)

    # ---- keys ----
    def job_key(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def seed_key(self, seed: str, generator: str, options: dict[str, Any] | str) -> str:
        """`options` as a dict, or already encoded by `_options_text`."""
        opts = options if isinstance(options, str) else _options_text(options)
        if self.template != DEFAULT_TEMPLATE:  # another kind of worker: another world
            generator = f"{generator}@{self.template}"
        return k.key(k.SEED_KEY_PREFIX, self.pool, f"{generator}:{opts}:{seed}")

    async def ensure_group(self) -> None:
        """Create the job stream and its consumer group unless they exist (idempotent).

        Called at start and again whenever a call finds them gone (`stream_lost`): after Redis
        lost its data, the daemon recreates them and goes on (docs/architecture.md, "Redis
        losing data")."""
        try:
            await self.redis.xgroup_create(self.stream, k.JOB_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ---- API side ----
    async def submit(self, seed: str, seed_hash: int, generator: str,
                     options: dict[str, Any]) -> Submission:
        job = Job(id=new_job_id(), seed=seed, status=JobState.QUEUED, seed_hash=seed_hash,
                  generator=generator, options=options, queued_at=time.time(),
                  template=self.template)
        options_text = _options_text(options)
        fields = {
            "id": job.id, "seed": seed, "seed_hash": str(seed_hash), "generator": generator,
            "options": options_text, "status": job.status.value,
            "attempts": "0", "queued_at": repr(job.queued_at), "template": self.template,
        }
        result = await self._submits.run_script(
            _SUBMIT_LUA, self._submit_sha,
            keys=[self.seed_key(seed, generator, options_text), self.depth_key, self.stream,
                  k.key(k.ARRIVALS_KEY, self.scope)],
            args=[self.job_prefix, job.id, fields["queued_at"], self.queue_max,
                  self.result_ttl_s, max(10_000, 10 * self.queue_max), orjson.dumps(fields)],
        )
        kind = _s(result[0])
        if kind == "full":
            raise QueueFull(f"the queue is full ({self.queue_max} jobs waiting)")
        if kind == "existing":
            return Submission(_s(result[1]), False, Job.from_hash(orjson.loads(result[2])))
        return Submission(job.id, True, job)

    async def ping_or_raise(self) -> bool:
        """Whether Redis answers PING; raises what the client raises when it does not."""
        return bool(await self.redis.ping())

    async def get(self, job_id: str) -> Job | None:
        raw = await self.redis.hgetall(self.job_key(job_id))
        return Job.from_hash({_s(k): _s(v) for k, v in raw.items()}) if raw else None

    async def jobs_exist(self, job_ids: Sequence[str]) -> list[bool]:
        """For each job id, whether its record still exists (it expires VWE_RESULT_TTL_S
        after the job finished)."""
        if not job_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(self.job_key(job_id))
            return [bool(n) for n in await pipe.execute()]

    async def depth(self) -> int:
        return int(await self.redis.get(self.depth_key) or 0)

    # ---- daemon side ----
    async def read_new(self, consumer: str, block_ms: int) -> StreamEntry | None:
        """One new stream entry id for this consumer, or None after `block_ms`."""
        reply = await self.redis.xreadgroup(k.JOB_GROUP, consumer, {self.stream: ">"},
                                            count=1, block=block_ms)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                return _entry(entry_id, fields)
        return None

    async def reclaim_stale(self, consumer: str, min_idle_s: float) -> StreamEntry | None:
        """One entry whose consumer went quiet for `min_idle_s`, now ours."""
        reply = await self.redis.xautoclaim(self.stream, k.JOB_GROUP, consumer,
                                            min_idle_time=int(min_idle_s * 1000), count=1)
        entries = reply[1] if reply else []
        for entry_id, fields in entries:
            if fields:
                return _entry(entry_id, fields)
            await self.redis.xack(self.stream, k.JOB_GROUP, entry_id)  # trimmed away
        return None

    async def reclaim_from_dead(self, consumer: str) -> StreamEntry | None:
        """One entry held by a consumer whose daemon's lease expired: no need to wait.

        Only the leases of this group's consumers are looked up (one pipelined EXISTS each):
        this runs every few seconds on every daemon, so it must not cost in proportion to the
        keyspace, as a SCAN for the leases did (145 ms of client CPU per call with 6000 keys,
        bench/RESULTS.md, bench_multihost)."""
        infos = [i for i in await self.redis.xinfo_consumers(self.stream, k.JOB_GROUP)
                 if _s(i["name"]) != consumer]
        if not infos:
            return None
        lease_prefix = k.key(k.HEARTBEAT_KEY_PREFIX, self.pool)
        async with self.redis.pipeline(transaction=False) as pipe:
            for info in infos:
                pipe.exists(lease_prefix + _s(info["name"]))
            leased = await pipe.execute()
        for info, alive in zip(infos, leased, strict=True):
            name = _s(info["name"])
            if alive:
                continue
            if int(info["pending"]) == 0:
                await self.redis.xgroup_delconsumer(self.stream, k.JOB_GROUP, name)
                continue
            pending = await self.redis.xpending_range(self.stream, k.JOB_GROUP, "-", "+", 1,
                                                      consumername=name)
            for p in pending:
                claimed = await self.redis.xclaim(self.stream, k.JOB_GROUP, consumer, 0,
                                                  [p["message_id"]])
                for entry_id, fields in claimed:
                    if fields:
                        return _entry(entry_id, fields)
                    await self.redis.xack(self.stream, k.JOB_GROUP, entry_id)
        return None

    async def start_attempt(self, entry: StreamEntry, consumer: str) -> Attempt | None:
        """Mark the job running for a new attempt, in one round trip (this is on the handoff
        path); None (and acked) when there is nothing to run: it finished elsewhere or expired."""
        raw = await self._start(keys=[self.job_key(entry.job_id), self.depth_key, self.stream],
                                args=[k.JOB_GROUP, entry.entry_id, repr(time.time()), consumer])
        return Attempt(entry.entry_id, Job.from_hash(_pairs(raw))) if raw else None

    async def _finish(self, attempt: Attempt, fields: dict[str, Any], *, requeue: bool,
                      seed_ttl: int | None, event: str) -> bool:
        """Record the end of an attempt, only if that attempt still owns the job."""
        key = self.job_key(attempt.job.id)
        seed_key = self.seed_key(attempt.job.seed, attempt.job.generator, attempt.job.options)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                attempts, status = await pipe.hmget(key, "attempts", "status")
                if int(attempts or 0) != attempt.job.attempts or _s(status) != JobState.RUNNING:
                    await pipe.reset()
                    return False  # another daemon reclaimed this job: its result wins
                pipe.multi()
                pipe.hset(key, mapping=fields)
                pipe.xack(self.stream, k.JOB_GROUP, attempt.entry_id)
                if requeue:
                    pipe.incr(self.depth_key)
                    pipe.xadd(self.stream, {"job": attempt.job.id},
                              maxlen=max(10_000, 10 * self.queue_max), approximate=True)
                else:
                    pipe.expire(key, self.result_ttl_s)
                    if seed_ttl is None:
                        pipe.delete(seed_key)  # a failed world may be asked for again
                    else:
                        pipe.expire(seed_key, seed_ttl)
                pipe.publish(self.events, f"{attempt.job.id} {event}")
                await pipe.execute()
                return True
            except WatchError:
                return False

    async def succeed(self, attempt: Attempt, *, launch_type: str, generation_s: float,
                      artifacts: list[Artifact], container: str) -> bool:
        return await self._finish(attempt, {
            "status": JobState.SUCCEEDED.value, "finished_at": repr(time.time()),
            "launch_type": launch_type, "generation_s": repr(generation_s),
            "artifacts": encode_artifacts(artifacts), "container": container,
            "progress": 1, "message": "done", "error": "",
        }, requeue=False, seed_ttl=self.result_ttl_s, event=JobState.SUCCEEDED.value)

    async def fail(self, attempt: Attempt, error: str, launch_type: str | None) -> bool:
        return await self._finish(attempt, {
            "status": JobState.FAILED.value, "finished_at": repr(time.time()),
            "error": error, "launch_type": launch_type or "", "message": "failed",
        }, requeue=False, seed_ttl=None, event=JobState.FAILED.value)

    async def release(self, attempt: Attempt, reason: str) -> bool:
        """Give a job back to the queue without counting the attempt (this daemon is stopping,
        not the job failing): any daemon takes it again at once."""
        return await self._finish(attempt, {
            "status": JobState.QUEUED.value, "attempts": max(0, attempt.job.attempts - 1),
            "message": f"queued again: {reason}", "progress": 0,
        }, requeue=True, seed_ttl=None, event="released")

    async def retry(self, attempt: Attempt, error: str) -> bool:
        return await self._finish(attempt, {
            "status": JobState.QUEUED.value, "error": error,
            "message": f"retrying after: {error}", "progress": 0,
        }, requeue=True, seed_ttl=None, event="retried")

    async def progress(self, job_id: str, fraction: float, message: str) -> None:
        await self.redis.hset(self.job_key(job_id),
                              mapping={"progress": round(fraction, 3), "message": message})

    # ---- policy, heartbeats, pool snapshots, arrivals ----
    async def load_policy(self, base: PoolPolicy) -> PoolPolicy:
        """The persisted run-time policy laid over `base` (the configured one); an invalid
        stored value is ignored with a warning."""
        return _overlay(base, await self.redis.hgetall(k.key(k.POLICY_KEY, self.scope)))

    async def save_policy(self, policy: PoolPolicy) -> None:
        await self.redis.hset(k.key(k.POLICY_KEY, self.scope), mapping=policy.to_hash())

    async def beat(self, instance: str, snapshot: dict[str, Any], boot_times: Sequence[float],
                   running: Sequence[str], base: PoolPolicy) -> Beat:
        """A daemon's heartbeat, in one round trip: this daemon's containers (for
        `GET /v1/pool` anywhere) and its new boot times, the idle time of the stream entries
        still `running` here reset (so nobody reclaims them; a daemon's consumer name in the
        job group is its instance id), and the policy (laid over
        `base`) and queue depth read back. Its liveness is the instance lease, renewed
        elsewhere (`pool.daemon.lease`). Raises what Redis raises, except that a lost stream
        (Redis lost its data: those entries' records are gone too) recreates the group."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(k.key(k.CONTAINERS_KEY, self.scope, instance), json.dumps(snapshot),
                     ex=k.CONTAINER_RECORD_TTL_S)
            if boot_times:
                key = k.key(k.BOOT_TIMES_KEY, self.scope)
                pipe.lpush(key, *(round(t, 4) for t in boot_times))
                pipe.ltrim(key, 0, k.BOOT_TIMES_KEPT - 1)
            if running:
                pipe.xclaim(self.stream, k.JOB_GROUP, instance, 0, list(running), justid=True)
            pipe.hgetall(k.key(k.POLICY_KEY, self.scope))
            pipe.get(self.depth_key)
            replies = await pipe.execute(raise_on_error=False)
        lost = False
        for reply in replies:
            if isinstance(reply, Exception):
                if not stream_lost(reply):
                    raise reply
                lost = True
        if lost:
            await self.ensure_group()
        return Beat(_overlay(base, replies[-2]), int(replies[-1] or 0))

    async def forget_daemon(self, instance: str) -> None:
        """Drop the published containers; the lease is released by its holder only."""
        await self.redis.delete(k.key(k.CONTAINERS_KEY, self.scope, instance))

    async def alive_daemons(self) -> set[str]:
        """Instances holding a lease, of every template: the lease is per instance and
        pool-wide (a process serving several templates runs an instance per template)."""
        prefix = k.key(k.HEARTBEAT_KEY_PREFIX, self.pool)
        # SCAN walks the whole keyspace: large batches keep it to a few round trips (it serves
        # /readyz of an API process, not a per-second loop).
        return {_s(k)[len(prefix):] async for k in self.redis.scan_iter(
            match=prefix + "*", count=SCAN_BATCH)}

    async def pool_snapshots(self) -> list[dict[str, Any]]:
        prefix = k.key(k.CONTAINERS_KEY, self.scope)
        keys = [k async for k in self.redis.scan_iter(match=prefix + "*", count=SCAN_BATCH)]
        values = await self.redis.mget(keys) if keys else []
        return [json.loads(v) for v in values if v]

    async def arrivals(self, since: float) -> list[float]:
        key = k.key(k.ARRIVALS_KEY, self.scope)
        await self.redis.zremrangebyscore(key, 0, time.time() - k.ARRIVALS_RETENTION_S)
        return [float(s) for _, s in await self.redis.zrangebyscore(key, since, "+inf",
                                                                     withscores=True)]
