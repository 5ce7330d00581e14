"""Shared fixtures: the real Redis (a dedicated database, flushed per test), the real Docker
engine, settings for a throw-away pool, and a clean-up that removes every container of the
test run by label, printing the logs of a failed test's containers first."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import redis
from daemonproc import DaemonProcess, free_port
from ownprocs import (  # noqa: F401 (fixtures for tests that break them)
    job_store,
    own_client,
    own_dockerd,
    own_redis,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helper modules

RUN_ID = uuid.uuid4().hex[:6]
TEST_DB = int(os.environ.get("VWE_TEST_REDIS_DB", "9"))
WORKER_IMAGE = os.environ.get("VWE_WORKER_IMAGE", "vwe-worker:latest")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome: Any = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("VWE_TEST_REDIS_URL")
    if not url:
        pytest.fail("VWE_TEST_REDIS_URL is not set: run the suite with `make test`, which "
                    "starts a private Redis (or set it to a Redis you can flush)")
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{TEST_DB}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        client.ping()
    except Exception as exc:
        pytest.fail(f"no Docker engine: {exc}; run the suite with `make test`")
    # Only runs that use the engine watch its event stream: a unit-only run needs no Docker.
    COUNTER.start()
    yield client
    # Whatever a test left behind, remove it by the run's pool-name prefix.
    for row in client.api.containers(all=True, filters={"label": "vwe.pool"}):
        if (row.get("Labels") or {}).get("vwe.pool", "").startswith(f"test-{RUN_ID}"):
            remove_quietly(client, row["Id"])
    client.close()


def remove_quietly(client: docker.DockerClient, container_id: str) -> None:
    """Remove a container that a daemon may be removing at the same moment."""
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.api.remove_container(container_id, force=True)


@pytest.fixture
def pool_name(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> Iterator[str]:
    """A pool name unique to this test; its containers are removed afterwards, logs printed
    when the test failed."""
    name = f"test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    yield name
    failed = getattr(request.node, "rep_call", None)
    api = docker_client.api
    for row in api.containers(all=True, filters={"label": f"vwe.pool={name}"}):
        if failed is not None and failed.failed:
            with contextlib.suppress(docker.errors.NotFound):
                logs = api.logs(row["Id"], tail=30).decode(errors="replace")
                print(f"\n--- logs of {row['Names'][0]} ({row['State']}) ---\n{logs}")
        remove_quietly(docker_client, row["Id"])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short and absolute: the agent's unix socket path must stay under 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="vwe-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings_env(redis_url: str, pool_name: str, data_dir: Path,
                 redis_client: redis.Redis) -> dict[str, str]:
    """Environment for a daemon of this test: fast intervals, its own pool and data."""
    return {
        "VWE_REDIS_URL": redis_url,
        "VWE_POOL_NAME": pool_name,
        "VWE_DATA_DIR": str(data_dir),
        "VWE_WORKER_IMAGE": WORKER_IMAGE,
        "VWE_POOL_SIZE": "1",
        "VWE_POOL_MAX": "3",
        "VWE_MAP_RESOLUTION": "256",
        # The product default: a boot that fails while a job waits fails the job's attempt, and
        # on a loaded 2-core host a 4096-cell worker can take over 30 s to boot.
        "VWE_BOOT_TIMEOUT_S": "60",
        "VWE_HEALTH_INTERVAL_S": "1",
        "VWE_MAINTENANCE_INTERVAL_S": "1",
        "VWE_RECLAIM_IDLE_S": "5",
        "VWE_DRAIN_TIMEOUT_S": "10",
        "VWE_WORKER_MEMORY": "512m",
        "VWE_LOG_FORMAT": "json",
    }


@pytest.fixture
def make_settings(settings_env: dict[str, str]) -> Callable[..., Any]:
    from pool.infra.settings import Settings

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {k[4:].lower(): v for k, v in settings_env.items()}
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def daemon_factory(settings_env: dict[str, str], data_dir: Path,
                   request: pytest.FixtureRequest) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def make(**env: str) -> DaemonProcess:
        d = DaemonProcess({**settings_env, **env}, data_dir / f"daemon-{len(started)}.log")
        started.append(d)
        return d

    yield make
    failed = getattr(request.node, "rep_call", None)
    for d in started:
        if failed is not None and failed.failed:
            print(f"\n--- daemon log ---\n{d.logs()}")
        try:
            d.stop(timeout=30)
        except subprocess.TimeoutExpired:
            d.kill()

__all__ = ["DaemonProcess", "free_port"]


class ContainerCounter:
    """Counts the worker containers this run creates, from the engine's own event stream."""

    def __init__(self) -> None:
        self.created = 0
        self.version = "?"
        self._stream: Any = None
        self.started = False

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        try:
            client = docker.from_env()
            self.version = client.version().get("Version", "?")
            self._stream = client.events(decode=True, filters={"type": "container",
                                                               "event": "create"})
        except Exception:
            return
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        try:
            for event in self._stream:
                pool = event.get("Actor", {}).get("Attributes", {}).get("vwe.pool", "")
                if pool.startswith(f"test-{RUN_ID}"):
                    self.created += 1
        except Exception:
            pass  # the stream was closed at the end of the run

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()


COUNTER = ContainerCounter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say what real parts the run used: the engine, the containers it created, the Redis."""
    COUNTER.stop()
    if COUNTER.started:
        terminalreporter.write_line(
            f"real Docker engine {COUNTER.version}: this run created {COUNTER.created} "
            "worker containers")
    url = os.environ.get("VWE_TEST_REDIS_URL")
    if url:
        try:
            info = redis.Redis.from_url(url).info("server")
            terminalreporter.write_line(
                f"real Redis {info['redis_version']} at {url.rsplit('/', 1)[0]} (db {TEST_DB})")
        except Exception as exc:
            terminalreporter.write_line(f"Redis not reached at {url}: {exc}")
