#!/usr/bin/env bash
# The multi-host proof on one machine (docs/deploy.md, "Several hosts"): three dockerd "hosts"
# with a worker daemon each, two API processes, a Redis primary + replicas + three Sentinels,
# one shared worlds folder; under steady load one host's daemon and engine are killed (-9)
# mid-job, then the Redis primary. Prints the report (accepted, finished exactly once, lost,
# duplicated, leaked containers, failover time) as JSON; exit 1 if anything was lost,
# duplicated or leaked. Options: --rate N --hosts N --replicas N --min-replicas N --keep.
# Needs root (dockerd), the worker image on the default engine, redis-server, redis-sentinel.
source "$(dirname "$0")/common.sh"
command -v redis-sentinel >/dev/null || { log "installing redis-server, redis-sentinel"; apt_install redis-server redis-sentinel; }
command -v dockerd >/dev/null || "$ROOT/scripts/ensure-docker.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/tests/multihost.py" "$@"
