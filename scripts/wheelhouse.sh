#!/usr/bin/env bash
# Fill .run/wheelhouse with wheels of every runtime dependency of vwe-pool plus pip, setuptools
# and wheel, so that `docker build` of the daemon image (Dockerfile at the repo root) needs no
# network. The wheels are built by the project's virtualenv, so they match its Python (3.11,
# like the base image's) and this machine's platform. Dependencies that only older 3.11 patch
# releases need (markers like `python_full_version < "3.11.3"`, e.g. redis -> async-timeout;
# Debian's python3 is 3.11.2) are added too, since pip evaluates markers for the venv's Python
# only. The project's own wheel is left out: the
# image builds the project from the source tree, so a code change does not invalidate the
# dependency layer. A rerun is a no-op while pyproject.toml and the venv's Python are unchanged.
source "$(dirname "$0")/common.sh"

PIP="$ROOT/.venv/bin/pip"
PYTHON="$ROOT/.venv/bin/python"
# Always under the build context (.dockerignore lets exactly this folder of .run through).
WHEELHOUSE="$ROOT/.run/wheelhouse"
# The oldest Python the wheels must serve (markers are also evaluated for it).
OLDEST_PYTHON=${VWE_WHEEL_OLDEST_PYTHON:-3.11.0}
[ -x "$PIP" ] || { log "no virtualenv at $ROOT/.venv (make creates it)"; exit 1; }

stamp="$("$PYTHON" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())') $OLDEST_PYTHON $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ -f "$WHEELHOUSE/.stamp" ] && [ "$(cat "$WHEELHOUSE/.stamp")" = "$stamp" ]; then
  exit 0
fi

log "building the wheelhouse in $WHEELHOUSE (pip's cache makes reruns quick)"
tmp=$(mktemp -d "$ROOT/.run/wheelhouse.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# `pip wheel .` resolves and wheels the whole dependency closure of the project.
"$PIP" wheel --quiet --disable-pip-version-check --wheel-dir "$tmp" \
  "$ROOT" pip 'setuptools>=70.1' wheel >"$ROOT/.run/wheelhouse.log" 2>&1 \
  || { tail -n 20 "$ROOT/.run/wheelhouse.log" >&2; exit 1; }
rm -f "$tmp"/vwe_pool-*.whl
for _ in 1 2 3 4; do
  mapfile -t extra < <("$PYTHON" - "$tmp" "$OLDEST_PYTHON" <<'PY'
# Requirements of the wheels in argv[1] whose markers hold for Python argv[2] but not for this
# interpreter, and which the wheelhouse lacks; printed without their markers.
import email, sys, zipfile
from pathlib import Path

from pip._vendor.packaging.markers import default_environment
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

wheelhouse, target = Path(sys.argv[1]), sys.argv[2]
have = {canonicalize_name(w.name.split("-")[0]) for w in wheelhouse.glob("*.whl")}
host = dict(default_environment())
other = {**host, "python_full_version": target,
         "python_version": ".".join(target.split(".")[:2])}
need = set()
for whl in wheelhouse.glob("*.whl"):
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(name))
    extras = ["", *(meta.get_all("Provides-Extra") or [])]
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or canonicalize_name(req.name) in have:
            continue
        if any(req.marker.evaluate({**other, "extra": e})
               and not req.marker.evaluate({**host, "extra": e}) for e in extras):
            req.marker = None
            need.add(str(req))
print("\n".join(sorted(need)))
PY
)
  [ "${#extra[@]}" -gt 0 ] && [ -n "${extra[0]}" ] || break
  log "adding for Python $OLDEST_PYTHON: ${extra[*]}"
  "$PIP" wheel --quiet --disable-pip-version-check --wheel-dir "$tmp" --find-links "$tmp" \
    "${extra[@]}" >>"$ROOT/.run/wheelhouse.log" 2>&1 \
    || { tail -n 20 "$ROOT/.run/wheelhouse.log" >&2; exit 1; }
done
echo "$stamp" >"$tmp/.stamp"
rm -rf "$WHEELHOUSE"
mv "$tmp" "$WHEELHOUSE"
trap - EXIT
log "wheelhouse ready: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels"
