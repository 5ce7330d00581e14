#!/usr/bin/env bash
# What only the test suite needs beyond the engine and Redis: a Compose tool (the deploy test
# validates docker-compose.yml) and Debian's prometheus + promtool (the alert-rule tests and the
# live dashboard test), and Chromium + chromedriver (the viewer tests). Installs only what is
# missing.
source "$(dirname "$0")/common.sh"
"$(dirname "$0")/ensure-compose.sh"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  log "installing prometheus (for promtool and the live dashboard test)"
  apt_install prometheus
fi
# The viewer's browser tests: headless Chromium driven by Selenium through chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing chromium and chromium-driver (the viewer's browser tests)"
  apt_install chromium chromium-driver
fi
# The Redis high-availability tests start their own primary, replica and three Sentinels.
if ! command -v redis-server >/dev/null || ! command -v redis-sentinel >/dev/null; then
  log "installing redis-server and redis-sentinel (for the Sentinel failover tests)"
  apt_install redis-server redis-sentinel
fi
