#!/usr/bin/env bash
# Make sure a Compose tool exists: the `docker compose` plugin or the standalone `docker-compose`.
# If neither is there, install Debian's docker-compose (1.29, enough to validate and run
# docker-compose.yml). Prints nothing when a tool is already present.
source "$(dirname "$0")/common.sh"

if docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1; then
  exit 0
fi
log "installing docker-compose"
apt_install docker-compose
docker-compose version >/dev/null 2>&1 || { log "docker-compose does not run after install"; exit 1; }
log "docker-compose ready"
