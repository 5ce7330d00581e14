"""Start-up checks: settings that would make the pool unusable are refused before anything runs.

Each check raises `ConfigError` naming the variable to change and why; a daemon that starts
anyway with such a setting boots containers that never become ready, forever, and nothing in
its logs points at the cause (issue 13, failure 4).

- Socket path: the agent's socket lives at `VWE_DATA_DIR/c/<container name>/agent.sock` and a
  unix socket path is limited to 107 bytes (`sun_path` is 108 including the NUL, Linux
  `unix(7)`).
- Data folder: the daemon creates, chowns (as root) and removes per-container folders under it.
- Worker user: a numeric, non-root `uid:gid`. A daemon that is not root cannot chown the
  container folder, and cannot connect to the socket the worker creates there (connecting
  needs write permission on the socket file, which the worker creates mode 0755), nor move
  the worker's output: it works only when the worker runs as the daemon's own uid.
- Worker image: present on the engine; its id is what compatible adoption compares.
- Worker resources: `VWE_WORKER_CPUS` and `VWE_WORKER_MEMORY` within what the engine has
  (`docker info`), or every boot fails.
- API address: `VWE_API_HOST` resolves and `VWE_API_PORT` is free, checked before any
  container boots (uvicorn would otherwise fail only after the pool started, naming neither).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

from pool.core.exceptions import ConfigError
from worldgen import protocol

# Linux unix(7): sun_path is 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 107
# Container names are "<pool>-<template>-<10 hex digits>".
CONTAINER_SUFFIX_LEN = 11
_USER_RE = re.compile(r"^(\d+)(?::(\d+))?$")


def container_name_length(pool_name: str, template: str) -> int:
    return len(pool_name) + 1 + len(template) + CONTAINER_SUFFIX_LEN


def check_socket_path(data_dir: Path, pool_name: str, template: str) -> None:
    sockets = (data_dir / "c").resolve()
    longest = os.fsencode(sockets) + b"/" + b"x" * container_name_length(pool_name, template) \
        + b"/" + protocol.SOCKET_NAME.encode()
    if len(longest) > UNIX_PATH_MAX:
        over = len(longest) - UNIX_PATH_MAX
        raise ConfigError(
            f"VWE_DATA_DIR ({str(data_dir)!r}, {len(os.fsencode(sockets))} bytes as "
            f"{str(sockets)!r}) is too long: the agents' socket paths would be "
            f"{len(longest)} bytes, over the {UNIX_PATH_MAX}-byte unix socket limit; shorten "
            f"VWE_DATA_DIR by at least {over} bytes (or VWE_POOL_NAME / VWE_TEMPLATE)")


def parse_worker_user(user: str) -> tuple[int, int]:
    """`uid[:gid]` as numbers; ConfigError naming VWE_WORKER_USER otherwise (or for root)."""
    match = _USER_RE.match(user)
    if match is None:
        raise ConfigError(
            f"VWE_WORKER_USER must be a numeric uid:gid (got {user!r}): the daemon chowns each "
            "container's folder to it, so a user name cannot be resolved here")
    uid = int(match.group(1))
    gid = int(match.group(2) if match.group(2) is not None else uid)
    if uid == 0:
        raise ConfigError(f"VWE_WORKER_USER must not be root (got {user!r}): workers run "
                          "untrusted generation with every capability dropped")
    return uid, gid


def check_worker_user(user: str, euid: int) -> tuple[int, int]:
    uid, gid = parse_worker_user(user)
    if euid != 0 and uid != euid:
        raise ConfigError(
            f"VWE_WORKER_USER={user} cannot work with a daemon running as uid {euid}: a "
            "daemon that is not root cannot chown the container folder, connect to the "
            f"socket the worker (uid {uid}) creates there, or move its output; set "
            f"VWE_WORKER_USER={euid}:{os.getegid()} or run the daemon as root")
    return uid, gid


def check_data_dir(data_dir: Path, worker_uid: int, worker_gid: int, euid: int) -> None:
    """The daemon can create, chown and remove a container folder under `VWE_DATA_DIR`."""
    sockets = data_dir / "c"
    probe = sockets / f".probe-{uuid.uuid4().hex[:8]}"
    try:
        sockets.mkdir(parents=True, exist_ok=True)
        probe.mkdir()
        (probe / "w").write_bytes(b"")
        if euid == 0:
            os.chown(probe, worker_uid, worker_gid)
    except OSError as exc:
        raise ConfigError(
            f"VWE_DATA_DIR ({str(data_dir)!r}) is not usable by the daemon (uid {euid}) for "
            f"the workers (uid {worker_uid}): {exc.strerror or exc} at {exc.filename or probe}; "
            "make it writable by the daemon (and, as root, on a filesystem that allows chown)"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(probe)


def check_settings(data_dir: Path, pool_name: str, template: str, worker_user: str,
                   euid: int | None = None) -> None:
    """Every check that needs no Docker engine, in the order an operator would fix them."""
    euid = os.geteuid() if euid is None else euid
    check_socket_path(data_dir, pool_name, template)
    uid, gid = check_worker_user(worker_user, euid)
    check_data_dir(data_dir, uid, gid, euid)


def check_worker_image(name: str, image_id: str | None) -> str:
    """The worker image's id (`image_id` as the engine reported it: None when missing)."""
    if image_id is None:
        raise ConfigError(f"VWE_WORKER_IMAGE={name!r}: no such image on the Docker engine; "
                          "build it (scripts/worker-image.sh) or point VWE_WORKER_IMAGE at one")
    return image_id


def check_worker_resources(cpus: float, memory: str, memory_bytes: int,
                           engine_cpus: int, engine_memory: int) -> None:
    """One worker's CPUs and memory (bytes) against the engine's (`docker info`)."""
    if cpus > engine_cpus:
        raise ConfigError(f"VWE_WORKER_CPUS={cpus:g}: the Docker engine has only "
                          f"{engine_cpus} CPUs; give each worker at most that many")
    if memory_bytes > engine_memory:
        raise ConfigError(f"VWE_WORKER_MEMORY={memory}: the Docker engine has only "
                          f"{engine_memory / (1 << 20):.0f} MiB of memory; give each worker "
                          "at most that much")


def check_listen(host: str, port: int) -> None:
    """Raise ConfigError unless a TCP server can listen on `host`:`port` now."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"VWE_API_HOST={host!r} is not an address of this host: "
                          f"{exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} (VWE_API_HOST, VWE_API_PORT): "
                              f"{exc.strerror}") from None
