"""The Redis schema: every key, prefix and TTL, in one place. Keys live under the pool's name
(`{p}`). Only `pool.store` reads and writes them (docs/architecture.md, "Redis schema"); tests
build keys from these constants.

One pool per template (docs/deploy.md, "Templates"): the job stream, queue depth, arrivals,
boot times, policy and container records are a template's own, under `scope(pool, template)`;
job records, seed keys, events, leases, fencing and owner records are shared by the pool.
"""

from pool.core.jobs import DEFAULT_TEMPLATE

# Stream of job ids waiting to run; one consumer group of daemons reads it.
JOB_STREAM = "{p}:stream:jobs"
# The consumer group of the daemons on JOB_STREAM.
JOB_GROUP = "daemons"
# Hash per job: seed, status, timings, attempts, artifacts (JSON), error.
JOB_KEY_PREFIX = "{p}:job:"
# Seed -> job id for one generator version: the result cache and the dedup of concurrent requests.
SEED_KEY_PREFIX = "{p}:seed:"
# Count of jobs accepted and not yet finished: the queue cap is checked against it.
QUEUE_DEPTH_KEY = "{p}:queue:depth"
# Sorted set of arrival times (score = unix time) for the autoscaler and `simulate --export`.
ARRIVALS_KEY = "{p}:arrivals"
# List of the latest boot times (seconds, create -> ready), newest first, for
# `simulate --from-redis`; capped at BOOT_TIMES_KEPT, no TTL (like the arrivals).
BOOT_TIMES_KEY = "{p}:boots"
# Hash of run-time pool policy (size, max, ...) set by PATCH /v1/pool; survives restarts;
# every daemon re-reads it each heartbeat.
POLICY_KEY = "{p}:policy"
# Hash per container the daemon tracks, for `GET /v1/pool` from any process.
CONTAINERS_KEY = "{p}:containers:"
# Daemon instance lease (the heartbeat): a per-process nonce, claimed with SET NX at start and
# refreshed by the lease keeper; expires when the daemon dies or stalls, so others may take its
# containers over (pool.store.ownership).
HEARTBEAT_KEY_PREFIX = "{p}:daemon:"
# The deployment id (SET NX once), carried by every container as the vwe.deployment label.
DEPLOYMENT_KEY = "{p}:deployment"
# Fencing-token counter (INCR): each claim of a container gets a larger token than any before.
FENCE_KEY = "{p}:fence"
# Per container: "<token>:<instance>", its current owner; compare-and-set on takeover.
OWNER_KEY_PREFIX = "{p}:owner:"
# Pub/sub channel: a job's progress and completion, so waiters need not poll.
EVENTS_CHANNEL_PREFIX = "{p}:events:"

# Finished job records (and their seed cache entries) expire after VWE_RESULT_TTL_S.
# Heartbeat TTL: a daemon missing this long is considered dead.
HEARTBEAT_TTL_S = 5
# Arrival history kept for the autoscaler and trace export.
ARRIVALS_RETENTION_S = 24 * 3600
# Boot times kept under BOOT_TIMES_KEY (and held by a daemon while Redis is unreachable).
BOOT_TIMES_KEPT = 1000
# Container records expire if no daemon refreshes them (a dead daemon's view goes stale).
CONTAINER_RECORD_TTL_S = 30


def scope(pool: str, template: str) -> str:
    """The `{p}` of one template's own keys: the pool name for `default` (so its keys are the
    ones a pool had before templates), `pool/template` for the others."""
    return pool if template == DEFAULT_TEMPLATE else f"{pool}/{template}"


def key(template: str, pool: str, suffix: str = "") -> str:
    """Expand one of the templates above for a pool."""
    return template.format(p=pool) + suffix
