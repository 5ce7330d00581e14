#!/usr/bin/env bash
# `redis.sh start` prints a Redis URL to use: VWE_REDIS_URL when it answers, otherwise a private
# redis-server on its own port and data folder. `redis.sh stop` stops that private server.
source "$(dirname "$0")/common.sh"

PORT=${VWE_PRIVATE_REDIS_PORT:-6391}
DATA="$RUN_DIR/redis"
PIDFILE="$DATA/redis.pid"

ping() { # python, not redis-cli, so an existing Redis needs no Debian package here
  "$ROOT/.venv/bin/python" -c 'import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()' "$1" 2>/dev/null
}

case "${1:-start}" in
start)
  if [ -n "${VWE_REDIS_URL:-}" ]; then
    ping "$VWE_REDIS_URL" || { log "VWE_REDIS_URL=$VWE_REDIS_URL does not answer"; exit 1; }
    echo "$VWE_REDIS_URL"; exit 0
  fi
  url="redis://127.0.0.1:$PORT/0"
  if ! ping "$url"; then
    command -v redis-server >/dev/null || { log "installing redis-server"; apt_install redis-server; }
    mkdir -p "$DATA"
    rm -f "$PIDFILE"
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DATA" --daemonize yes \
      --pidfile "$PIDFILE" --logfile "$DATA/redis.log" --appendonly yes --save "" >/dev/null
    for _ in $(seq 1 50); do ping "$url" && break; sleep 0.1; done
    ping "$url" || { log "redis-server did not start; see $DATA/redis.log"; exit 1; }
    log "private redis-server on port $PORT"
  fi
  echo "$url"
  ;;
stop)
  if [ -f "$PIDFILE" ]; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    rm -f "$PIDFILE"
  fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
