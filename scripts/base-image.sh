#!/usr/bin/env bash
# Build the offline base image (Debian minbase + python3 + numpy + numba) unless it exists with
# all of them (an older base without numba is rebuilt). The mirror is read from this machine's
# apt sources at run time, never written in the repo.
source "$(dirname "$0")/common.sh"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  docker run --rm --network none "$BASE_IMAGE" python3 -c 'import numpy, numba' >/dev/null 2>&1 \
    && exit 0
  log "$BASE_IMAGE lacks numba (the terrain kernels' compiler): rebuilding it"
fi

mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
  | grep -v -- '-security' | grep -i debian | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    | awk '{print $2}' | grep -v -- '-security' | grep -i debian | head -n1 || true)
fi
[ -n "$mirror" ] || { log "no Debian mirror found in the apt sources"; exit 1; }
command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }

dir=$(mktemp -d /var/tmp/vwe-base.XXXXXX)
trap 'as_root rm -rf "$dir"' EXIT
log "debootstrap bookworm from $mirror (about a minute)"
as_root debootstrap --variant=minbase --include=python3-minimal,python3-numpy,python3-numba \
  bookworm "$dir" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1 \
  || { tail -n 20 "$RUN_DIR/debootstrap.log" >&2; exit 1; }
as_root rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
as_root tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
log "imported $BASE_IMAGE"
