"""The Docker seam: the synchronous Docker SDK behind one async interface.

Every call runs on a small thread pool so the event loop never blocks on the engine. A 404
means "gone", which for removal is success, not an error.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import docker
import docker.errors
import requests.exceptions

from pool.core.exceptions import RuntimeUnavailable
from worldgen.protocol import MOUNT_POINT

T = TypeVar("T")

# Labels are fixed at creation (docs/architecture.md, "Container labels"): each says what was
# true then. The contract names all of these.
LABEL_POOL = "vwe.pool"
LABEL_TEMPLATE = "vwe.template"
# The instance that created the container; the current owner is its owner record in Redis.
LABEL_OWNER = "vwe.owner"
LABEL_CREATED = "vwe.created"
# The use count at creation, always "0"; the live count is the agent's (GET /v1/pool).
LABEL_USES = "vwe.uses"
# The deployment's id (`pool.store.ownership`): a daemon touches only its own deployment's
# containers, whatever their pool name.
LABEL_DEPLOYMENT = "vwe.deployment"
# Hash of everything that makes two workers interchangeable (`spec_hash`): only a container
# with the current hash (and image id) is adopted after a restart.
LABEL_SPEC = "vwe.spec"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one hardened worker container."""

    name: str
    image: str
    labels: dict[str, str]
    host_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 64
    user: str = "10001:10001"
    # Docker's log driver and its options: bounded, so a chatty worker cannot fill the disk.
    log_driver: str = "json-file"
    log_max_size: str = "1m"
    log_max_file: int = 3


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    running: bool
    labels: dict[str, str]
    image_id: str = ""


def spec_hash(spec: ContainerSpec, image_id: str) -> str:
    """16 hex digits naming the worker's make-up: image id, limits, environment, user and
    hardening. Two containers with the same hash behave the same for a job."""
    host = {k: v for k, v in hardened_host_config(spec).items() if k != "binds"}
    make_up = {"image_id": image_id, "environment": spec.environment, "user": spec.user,
               "memory": spec.memory, "cpus": spec.cpus, "pids": spec.pids, "host": host}
    return hashlib.sha256(json.dumps(make_up, sort_keys=True).encode()).hexdigest()[:16]


class ContainerRuntime(Protocol):
    async def ping(self) -> bool: ...
    async def image_id(self, image: str) -> str | None: ...
    async def capacity(self) -> tuple[int, int]: ...
    async def start(self, spec: ContainerSpec) -> str: ...
    async def remove(self, container_id: str) -> None: ...
    async def list(self, labels: dict[str, str]) -> list[ContainerInfo]: ...
    async def is_running(self, container_id: str) -> bool: ...
    async def oom_killed(self, container_id: str, wait_s: float = 3.0) -> bool: ...
    async def logs(self, container_id: str, tail: int = 50) -> str: ...
    async def close(self) -> None: ...


def hardened_host_config(spec: ContainerSpec) -> dict[str, Any]:
    """The worker hardening of docs/architecture.md ("Container labels and worker hardening"),
    in one place (docker-py `create_host_config` names)."""
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,
        "nano_cpus": int(spec.cpus * 1e9),
        "pids_limit": spec.pids,
        "binds": {str(spec.host_dir.resolve()): {"bind": MOUNT_POINT, "mode": "rw"}},
        "auto_remove": False,
        "log_config": {"Type": spec.log_driver,
                       "Config": {"max-size": spec.log_max_size,
                                  "max-file": str(spec.log_max_file)}},
    }


class DockerRuntime:
    """`ContainerRuntime` over docker-py, one client, calls on an executor."""

    def __init__(self, max_workers: int = 8) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker")
        self._client: docker.DockerClient | None = None

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.from_env(timeout=30)
            # requests would read the proxy and netrc variables of the environment on every
            # call (a third of a ping's CPU); none applies to the engine's API socket.
            self._client.api.trust_env = False
        return self._client

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            call = functools.partial(fn, *args, **kwargs)
            return await loop.run_in_executor(self._executor, call)
        except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
            if isinstance(exc, docker.errors.APIError) and not _is_connection_error(exc):
                raise
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._run(lambda: self._docker().ping()))
        except Exception:
            return False

    async def image_id(self, image: str) -> str | None:
        """The id (`sha256:...`) of a local image, or None when the engine does not have it."""
        def inspect() -> str | None:
            try:
                return str(self._docker().api.inspect_image(image)["Id"])  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                return None

        return await self._run(inspect)

    async def capacity(self) -> tuple[int, int]:
        """The engine's CPUs and memory in bytes (`docker info` NCPU, MemTotal)."""
        def info() -> tuple[int, int]:
            facts = self._docker().api.info()
            return int(facts["NCPU"]), int(facts["MemTotal"])

        return await self._run(info)

    async def start(self, spec: ContainerSpec) -> str:
        def create_and_start() -> str:
            # The low-level calls: create + start, without the high-level client's extra
            # inspect and model building (this runs beside handoffs on the same GIL).
            api = self._docker().api
            created = api.create_container(
                spec.image, name=spec.name, labels=spec.labels, environment=spec.environment,
                user=spec.user, detach=True,
                host_config=api.create_host_config(**hardened_host_config(spec)))
            api.start(created["Id"])
            return str(created["Id"])

        return await self._run(create_and_start)

    async def remove(self, container_id: str) -> None:
        def remove() -> None:
            try:
                self._docker().api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass  # already gone: that is what we wanted
            except docker.errors.APIError as exc:
                if "removal of container" in str(exc) and "in progress" in str(exc):
                    return
                raise

        await self._run(remove)

    async def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}

        def list_() -> list[ContainerInfo]:
            rows = self._docker().api.containers(all=True, filters=filters)
            return [
                ContainerInfo(
                    id=row["Id"], name=row["Names"][0].lstrip("/"),
                    running=row["State"] == "running", labels=row.get("Labels") or {},
                    image_id=row.get("ImageID", ""),
                )
                for row in rows
            ]

        return await self._run(list_)

    async def is_running(self, container_id: str) -> bool:
        def inspect() -> bool:
            try:
                state = self._docker().api.inspect_container(container_id)["State"]
                return bool(state.get("Running"))
            except docker.errors.NotFound:
                return False

        return await self._run(inspect)

    async def oom_killed(self, container_id: str, wait_s: float = 3.0) -> bool:
        """Whether the kernel's OOM killer ended this container (`State.OOMKilled`), once it
        has stopped: waits up to `wait_s` for the engine to see it exit (its agent's socket
        closes first). False for a container still running then, or gone."""
        deadline = time.monotonic() + wait_s

        def inspect() -> tuple[bool, bool]:
            try:
                state = self._docker().api.inspect_container(container_id)["State"]
            except docker.errors.NotFound:
                return False, False
            return bool(state.get("Running")), bool(state.get("OOMKilled"))

        while True:
            running, oom = await self._run(inspect)
            if oom or not running or time.monotonic() >= deadline:
                return oom
            await asyncio.sleep(0.1)

    async def logs(self, container_id: str, tail: int = 50) -> str:
        def logs() -> str:
            try:
                raw = self._docker().api.logs(container_id, tail=tail)
                return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            except docker.errors.NotFound:
                return ""

        return await self._run(logs)

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._client.close)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _is_connection_error(exc: docker.errors.APIError) -> bool:
    return exc.response is None
