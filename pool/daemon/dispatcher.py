"""The dispatcher: takes a job only when it can run it now, and sees it through.

Each iteration: capacity? -> one entry (reclaimed or new) -> start the attempt -> lease ->
hand off -> wait for the result -> record it -> give the container back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.exceptions
import stamina

from pool.core.exceptions import (
    BootFailed,
    ContainerFenced,
    GenerationFailed,
    HandoffFailed,
    PoolClosed,
    StoreUnavailable,
    WorkerDied,
    WorkerOutOfMemory,
)
from pool.core.states import FailurePhase, RecycleReason
from pool.daemon import adoption
from pool.daemon.collect import collect_output, published_world
from pool.daemon.container import Container, Lease
from pool.daemon.warm_pool import WarmPool
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.safefs import OutputRejected
from pool.infra.settings import Settings
from pool.store.job_store import Attempt, JobStore, StreamEntry, stream_lost
from pool.store.ownership import LeaseCheck

log = get_logger("vwe.dispatcher")

# A dead warm container fails the handoff at once; try this many others before giving up.
MAX_HANDOFF_TRIES = 3
# Leases that found the container taken over or this daemon's lease lapsed, before giving up
# on the attempt (each is followed by another lease at once, or a short pause).
MAX_OWNERSHIP_MISSES = 25
LAPSED_PAUSE_S = 0.2
# How often stale or orphaned stream entries are looked for (seconds). Each look is three
# round trips, on every daemon: every second, it was the largest part of an idle daemon's CPU.
# A dead daemon's jobs wait for its lease to expire (VWE_HEARTBEAT_TTL_S) anyway.
RECLAIM_EVERY_S = 3.0
# How long one read of the stream blocks for new entries (milliseconds): a stop is seen at
# once (the read is cancelled); a reclaim look that falls due waits at most this long.
READ_BLOCK_MS = 1000
# How long a finished job's outcome waits for Redis to come back before giving up on it.
RECORD_PATIENCE_S = 120.0
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                StoreUnavailable, OSError)



class Dispatcher:
    def __init__(self, settings: Settings, pool: WarmPool, store: JobStore,
                 metrics: Metrics) -> None:
        self.settings = settings
        self.pool = pool
        self.store = store
        self.metrics = metrics
        self.consumer = settings.instance_id
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.attempts: dict[str, Attempt] = {}
        self.redis_up = True
        self._accepting = True
        self._next_reclaim = 0.0

    async def run(self) -> None:
        """Take jobs until `stop_accepting`. Redis outages are ridden out here with back-off;
        anything unexpected propagates to the supervisor, which logs and restarts this."""
        backoff = 0.1
        while self._accepting:
            try:
                if not self.pool.has_capacity():
                    await self.pool.wait_changed(timeout=1.0)
                    continue
                entry = await self._next_entry()
                if entry is None or not self._accepting:
                    continue
                taken = time.monotonic()
                attempt = await self.store.start_attempt(entry, self.consumer)
                if attempt is not None:
                    task = asyncio.create_task(self._run_job(attempt, taken))
                    self.inflight[attempt.entry_id] = task
                    self.attempts[attempt.entry_id] = attempt
                    task.add_done_callback(self._forget(attempt.entry_id))
                    # Let the job lease (or attempt a boot) before capacity is judged again.
                    await asyncio.sleep(0)
                self.redis_up, backoff = True, 0.1
            except redis.exceptions.ResponseError as exc:
                if not stream_lost(exc):
                    raise
                # Redis lost its data: recreate the stream and group, and go on.
                log.error("the job stream or its consumer group is gone (Redis lost its "
                          "data?); recreating them", error=str(exc))
                await self.store.ensure_group()
            except REDIS_ERRORS as exc:
                if isinstance(exc, redis.exceptions.MaxConnectionsError):
                    log.warning("all Redis connections busy; waiting", error=str(exc))
                else:
                    if self.redis_up:
                        log.error("redis unreachable; retrying with backoff", error=repr(exc))
                    self.redis_up = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _next_entry(self) -> StreamEntry | None:
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + RECLAIM_EVERY_S
            entry = (await self.store.reclaim_from_dead(self.consumer)
                     or await self.store.reclaim_stale(self.consumer, self.settings.reclaim_idle_s))
            if entry is not None:
                log.info("reclaimed a job from another daemon", entry=entry.entry_id,
                         job_id=entry.job_id)
                return entry
        return await self.store.read_new(self.consumer, block_ms=READ_BLOCK_MS)

    def _forget(self, entry_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self.inflight.pop(entry_id, None)
            self.attempts.pop(entry_id, None)

        return forget

    def stop_accepting(self) -> None:
        self._accepting = False

    async def wait_inflight(self, timeout: float) -> None:
        if self.inflight:
            await asyncio.wait(list(self.inflight.values()), timeout=timeout)

    async def release_inflight(self, timeout: float = 10.0) -> None:
        """Stop the jobs still running (drain timeout over): each gives its job back to the
        queue, so no record stays `running` without a live owner."""
        tasks = list(self.inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _lease_and_handoff(self, attempt: Attempt, taken: float) -> tuple[Lease, Any]:
        """Lease, prove ownership, hand off. A container this daemon turns out not to own
        (fenced off) or a lease that lapsed does not count as a failed try: the job simply
        goes to another container, with no retry of the job."""
        job = attempt.job
        last = ""
        failures = misses = 0
        while failures < MAX_HANDOFF_TRIES and misses < MAX_OWNERSHIP_MISSES:
            lease = await self.pool.acquire()
            c = lease.container
            lt = lease.launch_type.value
            try:
                # Lease live and token current, in the round trip that records the launch.
                check = await self.pool.ownership.check_lease(c.name, c.token,
                                                              self.store.job_key(job.id), lt)
            except REDIS_ERRORS as exc:
                log.warning("lease check failed: redis unreachable", error=repr(exc))
                check = LeaseCheck.LAPSED
            if check is LeaseCheck.MISSING:
                # Redis lost the record (a data loss) or the container is gone: write it
                # back if the container runs, then check again.
                misses += 1
                if await self._recover(c, adoption.prove_missing) is not None:
                    adoption.give_back(self.pool, c)  # a no-op once dropped
                continue
            if check is not LeaseCheck.OK:
                misses += 1
                if check is LeaseCheck.FENCED:
                    adoption.fence_off(self.pool, c, "taken over (found at the lease check)")
                else:
                    adoption.give_back(self.pool, c)
                    await asyncio.sleep(LAPSED_PAUSE_S)
                continue
            try:
                handoff = await c.agent.handoff(job.id, job.seed, job.options,
                                                self.settings.handoff_timeout_s, token=c.token)
            except ContainerFenced as exc:
                misses += 1
                # Our record, an agent holding a newer token: the counter went backwards (a
                # data loss). Take a token above the agent's; otherwise it is taken over.
                ours = await self._recover(c, adoption.reassert)
                if ours:
                    adoption.give_back(self.pool, c)
                elif ours is not None:
                    adoption.fence_off(self.pool, c, str(exc))
                continue
            except HandoffFailed as exc:
                failures += 1
                log.warning("handoff failed", job_id=job.id, container=c.name, error=str(exc))
                self.pool.release(c, healthy=False, phase=FailurePhase.HANDOFF)
                last = str(exc)
                continue
            except BaseException:
                self._cut_off(c)  # cancelled mid-handoff: not reusable
                raise
            elapsed = time.monotonic() - taken
            self.pool.reconcile()  # replenish the moment the job is handed off
            self.metrics.acquire_total.labels(self.pool.template, lt).inc()
            self.metrics.acquire_duration.labels(self.pool.template, lt).observe(elapsed)
            log.info("job handed off", job_id=job.id, container=c.name, launch_type=lt,
                     acquire_ms=round(elapsed * 1000, 3))
            return lease, handoff
        if misses >= MAX_OWNERSHIP_MISSES:
            raise HandoffFailed(f"no container provably this daemon's in {misses} leases")
        raise HandoffFailed(f"{MAX_HANDOFF_TRIES} containers in a row refused the job; "
                            f"last: {last}")

    def _cut_off(self, c: Container) -> None:
        """A job stopped mid-way (cancelled, or its deadline passed): the container's state is
        unknown, so it is retired; for `drain` when the drain cut the job off."""
        self.pool.release(c, healthy=False, reason=RecycleReason.DRAIN if self.pool.closing
                          else RecycleReason.UNHEALTHY)

    async def _recover(self, c: Container,
                       how: Callable[[WarmPool, Container], Awaitable[bool]]) -> bool | None:
        """Re-prove a leased container after a data loss (`how`): True when it is ours. A
        Redis or engine error gives it back untouched, for the next lease to try: None."""
        try:
            return await how(self.pool, c)
        except Exception as exc:
            log.warning("could not re-prove a container; trying again", container=c.name,
                        error=repr(exc))
            adoption.give_back(self.pool, c)
            await asyncio.sleep(LAPSED_PAUSE_S)
            return None

    async def _run_job(self, attempt: Attempt, taken: float) -> None:
        """One attempt, bounded by VWE_JOB_TIMEOUT_S from the moment it was taken. Whatever
        happens, the attempt ends recorded: succeeded, failed/retried, or given back."""
        job = attempt.job
        try:
            await self._attempt(attempt, taken)
        except asyncio.CancelledError:
            # Drain timeout over (or shutdown): give the job back, do not count the attempt.
            with contextlib.suppress(*REDIS_ERRORS):
                async with asyncio.timeout(self.settings.redis_timeout_s * 3):
                    if await self.store.release(attempt, "the daemon running it stopped"):
                        log.warning("job given back to the queue", job_id=job.id)
            raise
        except Exception as exc:  # a bug must not leave the record `running` for ever
            log.exception("job attempt crashed", job_id=job.id)
            await self._attempt_failed(attempt, f"internal error: {type(exc).__name__}: {exc}",
                                       None)

    async def _attempt(self, attempt: Attempt, taken: float) -> None:
        job = attempt.job
        if job.attempts > 1 and await self._already_published(attempt):
            return
        if job.attempts == 1 and job.queued_at is not None:
            self.metrics.queue_wait.observe(max(0.0, time.time() - job.queued_at))
        limit = self.settings.job_timeout_s
        try:
            async with asyncio.timeout(max(0.0, taken + limit - time.monotonic())):
                lease, handoff = await self._lease_and_handoff(attempt, taken)
        except PoolClosed:
            await self._record(lambda: self.store.release(attempt, "the daemon is draining"))
            return
        except (HandoffFailed, BootFailed) as exc:
            await self._attempt_failed(attempt, str(exc), None)
            return
        except TimeoutError:
            boot = self.pool.last_boot_error
            await self._attempt_failed(
                attempt, f"no container took the job within {limit:.0f} s (VWE_JOB_TIMEOUT_S)"
                + (f"; last boot error: {boot}" if boot else ""), None)
            return
        c = lease.container

        async def progress(fraction: float, message: str) -> None:
            with contextlib.suppress(*REDIS_ERRORS):  # progress is best effort
                await self.store.progress(job.id, fraction, message)

        try:
            remaining = max(0.1, taken + limit - time.monotonic())
            done = await handoff.result(remaining, progress)
        except GenerationFailed as exc:
            failure = await self._out_of_memory(c, exc)
            log.warning("generation failed", job_id=job.id, container=c.name,
                        error=str(failure))
            self.pool.release(c, healthy=False, phase=FailurePhase.GENERATION)
            await self._attempt_failed(attempt, str(failure), lease.launch_type.value,
                                       retry=not isinstance(failure, WorkerOutOfMemory))
            return
        except BaseException:
            self._cut_off(c)  # cancelled mid-generation
            raise
        # Collected before the container goes back: the worker loses the job's folder first.
        try:
            artifacts = await asyncio.to_thread(
                collect_output, c.host_dir, job.id, self.settings.staging_dir,
                self.settings.worlds_dir, self.settings.output_limits(), done)
        except OutputRejected as exc:
            # A worker that left a link or a special file behind is not trusted again.
            log.error("worker output refused", job_id=job.id, container=c.name, error=str(exc))
            self.pool.release(c, healthy=False, phase=FailurePhase.GENERATION)
            await self._attempt_failed(attempt, f"worker output refused: {exc}",
                                       lease.launch_type.value)
            return
        except OSError as exc:
            # The worker did its part; the worlds store (VWE_WORLDS_DIR) did not take it.
            log.error("could not publish a world", job_id=job.id, error=repr(exc),
                      worlds_dir=str(self.settings.worlds_dir))
            self.pool.release(c, healthy=True)
            await self._attempt_failed(attempt, describe_os_error(
                exc, f"could not store the world in {self.settings.worlds_dir}"),
                lease.launch_type.value)
            return
        except BaseException:
            self.pool.release(c, healthy=True)
            raise
        self.pool.release(c, healthy=True)
        # One line per world generated and published, recorded or not: what "ran exactly
        # once" is counted by (tests/multihost.py), since a record can be lost afterwards.
        log.info("world published", job_id=job.id, container=c.name, attempt=job.attempts)
        generation_s = float(done.get("generation_s", 0.0))
        recorded = await self._record(lambda: self.store.succeed(
            attempt, launch_type=lease.launch_type.value, generation_s=generation_s,
            artifacts=artifacts, container=c.name))
        if recorded:
            self.metrics.generation_duration.labels(self.pool.template).observe(generation_s)
            if job.queued_at is not None:
                self.metrics.job_duration.labels(lease.launch_type.value).observe(
                    max(0.0, time.time() - job.queued_at))
            self.metrics.jobs_total.labels("succeeded").inc()
            log.info("job succeeded", job_id=job.id, container=c.name,
                     generation_s=round(generation_s, 3), attempts=job.attempts)

    async def _out_of_memory(self, c: Container, exc: GenerationFailed) -> GenerationFailed:
        """A worker that died mid-job: was it the kernel's OOM killer (docker's
        `State.OOMKilled`)? Then the same request would die the same way on every attempt."""
        if not isinstance(exc, WorkerDied) or not c.id:
            return exc
        try:
            oom = await self.pool.runtime.oom_killed(c.id)
        except Exception as err:  # the engine cannot tell: keep the plain failure
            log.warning("could not inspect a dead worker", container=c.name, error=repr(err))
            return exc
        if not oom:
            return exc
        memory = self.settings.worker_memory
        return WorkerOutOfMemory(
            f"the worker ran out of memory: the kernel killed it at its {memory} limit "
            f"(VWE_WORKER_MEMORY={memory}); this request needs more (a smaller resolution or "
            "fewer layers fits), so it is not retried")

    async def _already_published(self, attempt: Attempt) -> bool:
        """Record the world an earlier attempt published but never recorded, instead of
        generating it again (see `published_world`). False when there is none."""
        job = attempt.job
        try:
            artifacts = await asyncio.to_thread(published_world, self.settings.worlds_dir,
                                                job.id, self.settings.output_limits())
        except (OutputRejected, OSError) as exc:
            log.warning("an earlier attempt's world is unusable; generating again",
                        job_id=job.id, error=str(exc))
            return False
        if artifacts is None:
            return False
        if await self._record(lambda: self.store.succeed(
                attempt, launch_type="", generation_s=0.0, artifacts=artifacts,
                container="")):
            log.info("job already generated; recorded its published world", job_id=job.id,
                     attempts=job.attempts)
        return True

    async def _attempt_failed(self, attempt: Attempt, error: str, launch_type: str | None,
                              *, retry: bool = True) -> None:
        """Retry the job while attempts remain, unless `retry` is False (a failure that the
        same request meets again, e.g. running out of memory): then it fails at once."""
        job = attempt.job
        if retry and job.attempts < self.settings.job_max_attempts:
            if await self._record(lambda: self.store.retry(attempt, error)):
                self.metrics.jobs_total.labels("retried").inc()
                log.info("job will be retried", job_id=job.id, attempt=job.attempts, error=error)
        else:
            message = f"failed after {job.attempts} attempt(s); last error: {error}"
            if await self._record(lambda: self.store.fail(attempt, message, launch_type)):
                self.metrics.jobs_total.labels("failed").inc()
                log.error("job failed", job_id=job.id, error=message)

    async def _record(self, write: Callable[[], Awaitable[bool]]) -> bool:
        """Record an outcome, riding out a Redis outage: the work is done and must not be lost.
        Past RECORD_PATIENCE_S the entry stays pending and the job is reclaimed and rerun."""
        try:
            async for attempt in stamina.retry_context(
                    on=REDIS_ERRORS, attempts=None, timeout=RECORD_PATIENCE_S,
                    wait_initial=0.1, wait_max=5.0):
                with attempt:
                    return await write()
        except REDIS_ERRORS as exc:
            log.error("could not record a job's outcome; it will be reclaimed", error=repr(exc))
        return False


def describe_os_error(exc: OSError, what: str) -> str:
    """A file-system error as one clear sentence (a full disk says so)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{what}: the disk is full (no space left on device)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{what}: not writable ({exc.strerror})"
    return f"{what}: {exc.strerror or exc}"
