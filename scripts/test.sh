#!/usr/bin/env bash
# `make test`: a private Redis for the run (or VWE_TEST_REDIS_URL), then the whole suite.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
if [ -n "${VWE_TEST_REDIS_URL:-}" ]; then
  url=$VWE_TEST_REDIS_URL
else
  url=$(VWE_REDIS_URL= scripts/redis.sh start)
  trap 'scripts/redis.sh stop' EXIT
fi
export VWE_TEST_REDIS_URL=$url
rc=0
"$ROOT/.venv/bin/pytest" "$@" || rc=$?
if [ "$rc" -eq 5 ]; then log "pytest collected no tests: that is a failure"; rc=1; fi
exit "$rc"
