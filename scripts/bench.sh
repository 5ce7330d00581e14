#!/usr/bin/env bash
# `make bench`: every benchmark under bench/ (or those named: `scripts/bench.sh handoff api`),
# each replacing its own section of bench/RESULTS.md. One failing does not stop the others.
source "$(dirname "$0")/common.sh"
cd "$ROOT"
command -v wrk >/dev/null || { log "installing wrk"; apt_install wrk; }
# bench_viewer drives a headless Chromium, as the viewer's tests do.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing chromium and chromium-driver (bench_viewer)"; apt_install chromium chromium-driver
fi
url=$(VWE_REDIS_URL= scripts/redis.sh start)
trap 'scripts/redis.sh stop' EXIT
export VWE_TEST_REDIS_URL=$url
if [ $# -gt 0 ]; then benches=("${@/#/bench/bench_}"); benches=("${benches[@]/%/.py}")
else benches=(bench/bench_*.py); fi
failed=()
for bench in "${benches[@]}"; do
  log "running $bench"
  "$ROOT/.venv/bin/python" "$bench" || failed+=("$bench")
done
[ ${#failed[@]} -eq 0 ] || { log "failed or missed a target: ${failed[*]}"; exit 1; }
