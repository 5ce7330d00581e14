#!/usr/bin/env bash
# Build the worker image from the local base image; Docker's layer cache makes a rerun instant.
source "$(dirname "$0")/common.sh"
docker build -q -t "$WORKER_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f "$ROOT/worldgen/Dockerfile" "$ROOT" >/dev/null
log "worker image $WORKER_IMAGE ready"
