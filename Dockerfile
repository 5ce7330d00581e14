# The vwe-pool daemon image: `vwe-pool serve` (daemon + HTTP API) in a virtualenv.
#
# Offline (this repo's machines: no registry), from the local base image and a wheelhouse:
#   scripts/base-image.sh && scripts/wheelhouse.sh
#   docker build --build-arg BASE_IMAGE=vwe-base:bookworm -t vwe-pool:latest .
# With a registry, any Python 3.11 image works, with or without the wheelhouse (without it,
# the dependencies come from PyPI):
#   docker build --build-arg BASE_IMAGE=python:3.11-slim -t vwe-pool:latest .
#
# The daemon talks to the host's Docker engine through its socket, so run it with the socket
# mounted and the socket's group added (`group_add` in docker-compose.yml): the process itself
# is not root, but whoever holds the Docker socket can do anything root can on the host.
ARG BASE_IMAGE=vwe-base:bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/vwe/venv \
    PATH=/opt/vwe/venv/bin:$PATH

# The same uid/gid as the worker image's user (worldgen/Dockerfile): the per-container folders
# the daemon creates and the worker writes into then belong to one user.
RUN if command -v useradd >/dev/null; then \
      (getent group vwe || groupadd --system --gid 10001 vwe) \
      && (id vwe || useradd --system --uid 10001 --gid 10001 --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin vwe); \
    else \
      (getent group vwe || addgroup -S -g 10001 vwe) \
      && (id vwe || adduser -S -D -H -u 10001 -G vwe -s /sbin/nologin vwe); \
    fi

# 1) Dependencies. This layer is rebuilt only when pyproject.toml or the wheelhouse changes.
#    `.run/wheelhous[e]` is a wildcard so that a build without a wheelhouse still works; the
#    wheelhouse's contents land next to pyproject.toml in /tmp/wheels.
#    With a wheelhouse: install offline (--no-index), bootstrapping pip from its own wheel
#    (Debian's python has no ensurepip; a pip wheel runs from its zip path).
#    Without one: a venv with pip (ensurepip) and PyPI.
COPY pyproject.toml .run/wheelhous[e] /tmp/wheels/
RUN set -eu; \
    python3 -c 'import sys; sys.exit(None if sys.version_info >= (3, 11) else "vwe-pool needs Python >= 3.11")'; \
    python3 -c 'import sys, tomllib; m = tomllib.load(open(sys.argv[1], "rb")); print("\n".join(m["project"]["dependencies"] + m["build-system"]["requires"] + ["wheel"]))' \
      /tmp/wheels/pyproject.toml >/tmp/requirements.txt; \
    if ls /tmp/wheels/pip-*.whl >/dev/null 2>&1; then \
      python3 -m venv --without-pip "$VIRTUAL_ENV"; \
      pip_whl=$(ls /tmp/wheels/pip-*.whl | sort -V | tail -n 1); \
      "$VIRTUAL_ENV/bin/python" "$pip_whl/pip" install --no-index --find-links /tmp/wheels \
        pip -r /tmp/requirements.txt; \
    else \
      python3 -m venv "$VIRTUAL_ENV" || { \
        echo "no wheelhouse and no ensurepip in this base image: run scripts/wheelhouse.sh" >&2; \
        exit 1; }; \
      "$VIRTUAL_ENV/bin/python" -m pip install --upgrade pip -r /tmp/requirements.txt; \
    fi; \
    rm -rf /tmp/wheels /tmp/requirements.txt

# The world viewer's map library (GET /): Debian's libjs-leaflet as scripts/ensure-leaflet.sh
# copies it into the build context (.run/leaflet); without it the page says it is missing.
COPY pyproject.toml .run/leafle[t] /opt/vwe/leaflet/
RUN rm /opt/vwe/leaflet/pyproject.toml
ENV VWE_VIEWER_LEAFLET_DIR=/opt/vwe/leaflet

# 2) The project itself, from the source tree (no network: its build backend is installed).
COPY pyproject.toml README.m[d] /opt/vwe/src/
COPY pool /opt/vwe/src/pool
COPY api /opt/vwe/src/api
COPY worldgen /opt/vwe/src/worldgen
RUN set -eu; \
    cd /opt/vwe/src; \
    pip install --no-index --no-deps --no-build-isolation . >/dev/null; \
    cd /; rm -rf /opt/vwe/src; \
    vwe-pool --help >/dev/null; \
    install -d -o 10001 -g 10001 -m 0755 /var/lib/vwe

# Listen on every interface inside the container; publish the port to choose who can reach it.
# VWE_DATA_DIR must be the same path on the host and here (the daemon bind-mounts per-container
# folders into worker containers by host path): mount the host folder at its own path and set
# VWE_DATA_DIR to it. No VOLUME on purpose: an anonymous volume would have another host path.
ENV VWE_API_HOST=0.0.0.0 \
    VWE_API_PORT=8080 \
    VWE_DATA_DIR=/var/lib/vwe
WORKDIR /opt/vwe
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VWE_API_PORT', '8080'), timeout=4)"
ENTRYPOINT ["vwe-pool"]
CMD ["serve"]
