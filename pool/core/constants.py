"""Timings the daemon and the simulator share, defined once (docs/architecture.md, "One state
machine"). Redis keys and TTLs are the store's (`pool.store.keys`)."""

# How often the daemon refreshes its heartbeat and container records (seconds); keep well
# under `pool.store.keys.HEARTBEAT_TTL_S`.
HEARTBEAT_INTERVAL_S = 1
# How often the autoscaler recomputes the warm target (seconds).
AUTOSCALE_INTERVAL_S = 5.0
# How often orphaned containers are looked for and removed (seconds).
REAP_INTERVAL_S = 5.0
# How many recent boot durations the autoscaler takes the median of.
BOOT_HISTORY = 50
# Before any boot finished, the autoscaler assumes a boot takes this fraction of
# VWE_BOOT_TIMEOUT_S.
BOOT_GUESS_FRACTION = 0.25
