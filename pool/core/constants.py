"""Timings the daemon and the simulator share, defined once (docs/architecture.md, "One state
machine"). Redis keys and TTLs are the store's (`pool.store.keys`)."""

# How often the lease keeper renews the instance lease (its TTL is VWE_HEARTBEAT_TTL_S), in
# seconds: what tells peers this daemon is alive, so kept frequent.
HEARTBEAT_INTERVAL_S = 1
# How often the daemon's heartbeat job publishes its container records, re-reads the policy
# and queue depth, and keeps its running jobs claimed (seconds). Slower than the lease: each
# extra daemon pays for it every period, and nothing here decides liveness.
PUBLISH_INTERVAL_S = 2.0
# The lease keeper's own Redis connection gives up on a call after this long: a slow or
# unreachable Redis must not hold the renewal loop past the next interval.
LEASE_SOCKET_TIMEOUT_S = 1.0
# How often a daemon pings an engine that answered last time (seconds)...
ENGINE_PROBE_INTERVAL_S = 3.0
# ... and one that did not, so boots resume soon after it is back (seconds).
ENGINE_RETRY_INTERVAL_S = 1.0
# How often the autoscaler recomputes the warm target (seconds).
AUTOSCALE_INTERVAL_S = 5.0
# How often a daemon re-proves its containers by token and takes over what dead daemons left
# (seconds).
REAP_INTERVAL_S = 5.0
# How many recent boot durations the autoscaler takes the median of.
BOOT_HISTORY = 50
# Before any boot finished, the autoscaler assumes a boot takes this fraction of
# VWE_BOOT_TIMEOUT_S.
BOOT_GUESS_FRACTION = 0.25
