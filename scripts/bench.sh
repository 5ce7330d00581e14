#!/usr/bin/env bash
# `make bench`: every benchmark under bench/, each appending its section to bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
url=$(VWE_REDIS_URL= scripts/redis.sh start)
trap 'scripts/redis.sh stop' EXIT
export VWE_TEST_REDIS_URL=$url
for bench in bench/bench_*.py; do
  log "running $bench"
  "$ROOT/.venv/bin/python" "$bench"
done
