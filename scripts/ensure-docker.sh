#!/usr/bin/env bash
# Make sure a Docker engine answers: reuse the one `docker info` reaches (DOCKER_HOST or the
# default socket); otherwise install Debian's docker.io and start dockerd without networking.
source "$(dirname "$0")/common.sh"

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  log "DOCKER_HOST=$DOCKER_HOST is set but does not answer; not starting a local engine"
  exit 1
fi
command -v dockerd >/dev/null || { log "installing docker.io"; apt_install docker.io; }

# A killed session leaves pid files with no process behind them; dockerd refuses to start then.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "removing stale $pidfile"; as_root rm -f "$pidfile"
  fi
done

if ! pgrep -x dockerd >/dev/null; then
  log "starting dockerd (log: $RUN_DIR/dockerd.log)"
  as_root bash -c "nohup dockerd --bridge=none --iptables=false --ip6tables=false \
    >'$RUN_DIR/dockerd.log' 2>&1 &"
fi
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && { log "docker engine ready"; exit 0; }
  sleep 0.5
done
log "dockerd did not answer within 60 s; see $RUN_DIR/dockerd.log"
tail -n 20 "$RUN_DIR/dockerd.log" >&2 || true
exit 1
