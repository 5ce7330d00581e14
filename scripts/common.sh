# Shared helpers for the provisioning scripts; sourced, never run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${VWE_RUN_DIR:-$ROOT/.run}
BASE_IMAGE=${VWE_BASE_IMAGE:-vwe-base:bookworm}
WORKER_IMAGE=${VWE_WORKER_IMAGE:-vwe-worker:latest}
mkdir -p "$RUN_DIR"

log() { printf '[provision] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

apt_install() {
  # One `apt-get update` per run, only when something is actually missing.
  if [ ! -f "$RUN_DIR/.apt-updated" ]; then
    as_root apt-get update -qq && touch "$RUN_DIR/.apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
