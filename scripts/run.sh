#!/usr/bin/env bash
# `make run`: the daemon in the foreground. Uses VWE_REDIS_URL when set, else a private Redis
# that lives as long as the daemon.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
started_redis=
if [ -z "${VWE_REDIS_URL:-}" ]; then
  VWE_REDIS_URL=$(scripts/redis.sh start); started_redis=1
fi
export VWE_REDIS_URL
trap '[ -n "$started_redis" ] && scripts/redis.sh stop' EXIT
"$ROOT/.venv/bin/vwe-pool" serve "$@"
