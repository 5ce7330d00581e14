"""A Redis server and a Docker engine of a test's own, for tests that break them.

Tests that stop, hang (SIGSTOP), flush or restart Redis, or stop a Docker engine, must never do
it to the shared ones: other tests run on them. These start private ones (own port and folder;
own socket, data root, exec root and pid file) and clean up after themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import redis
import redis.asyncio as aioredis
import requests.exceptions
from daemonproc import free_port

from pool.store.job_store import JobStore


def mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below `folder` (from /proc/self/mountinfo), deepest first."""
    base = os.path.realpath(folder)
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
            point = line.split()[4].encode().decode("unicode_escape")
            if point == base or point.startswith(base + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_engine_dir(folder: Path) -> None:
    """Remove a stopped (or killed) engine's folder: first lazily unmount whatever it left
    mounted there (its data root, containers' root filesystems, network namespaces), deepest
    first, so nothing below is removed through a mount or left busy; then the files.

    Raises OSError when the folder is still there afterwards."""
    for point in mounts_under(folder):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        raise OSError(f"could not remove {folder}: {mounts_under(folder) or 'files left'}")


class RedisServer:
    """`redis-server` on a free port, no persistence unless asked: restart = empty."""

    def __init__(self, appendonly: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vwe-redis-", dir="/tmp"))
        self.port = free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--protected-mode", "no",
                "--appendonly", "yes" if self.appendonly else "no"]
        with (self.dir / "log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start: {self.log()}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def log(self) -> str:
        return (self.dir / "log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """Stop without saving (with no persistence, its data is lost)."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart_empty(self) -> None:
        """`redis-cli shutdown nosave`, then start again on the same port: all data gone."""
        self.stop()
        for name in ("dump.rdb", "appendonly.aof", "appendonlydir"):
            path = self.dir / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True)
        self.start()

    def pause(self) -> None:
        """Hang it: the process stops answering but its sockets stay open."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Dockerd:
    """A second Docker engine beside the shared one: its own socket, roots and pid file."""

    def __init__(self) -> None:
        # Short: unix socket paths (the engine's and containerd's) must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="vdk-", dir="/tmp"))
        self.socket = self.dir / "d.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self, timeout: int = 10) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def start(self, timeout: float = 60) -> Dockerd:
        args = ["dockerd", "--host", self.host, "--data-root", str(self.dir / "data"),
                "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "d.pid"),
                "--bridge=none", "--iptables=false", "--ip6tables=false"]
        with (self.dir / "log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            # A fixed (old) API version: the client then makes no call, and leaks no socket,
            # while the engine is not up yet.
            probe = docker.APIClient(base_url=self.host, timeout=2, version="1.24")
            try:
                if self.socket.exists() and probe.ping():
                    return self
            except (docker.errors.DockerException, OSError,
                    requests.exceptions.RequestException):
                pass
            finally:
                probe.close()
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"dockerd did not start: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return (self.dir / "log").read_text(errors="replace")[-3000:]

    def load_image(self, tag: str) -> None:
        """Copy an image from the shared engine into this one (no registry on this machine)."""
        with subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE) as save:
            subprocess.run(["docker", "-H", self.host, "load", "-q"], stdin=save.stdout,
                           check=True, capture_output=True)
        assert save.returncode == 0, f"docker save {tag} failed"

    def stop(self, timeout: float = 60) -> None:
        """Stop the engine (it stops its containers, as a real engine restart does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def remove_all(self, label: str) -> None:
        client = self.client()
        try:
            for row in client.api.containers(all=True, filters={"label": label}):
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_container(row["Id"], force=True)
        finally:
            client.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.remove_all("vwe.pool")
        self.stop()
        # Containers' mounts live under the roots; unmount what a killed engine left.
        remove_engine_dir(self.dir)


# ---- fixtures: import them into a test module that uses them ----
WORKER_IMAGE = os.environ.get("VWE_WORKER_IMAGE", "vwe-worker:latest")


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server without persistence: a restart comes back empty."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def own_client(own_redis: RedisServer) -> redis.Redis:
    """A client of the private server: its command counts and data are the test's alone."""
    return redis.Redis.from_url(own_redis.url())


@pytest.fixture
async def job_store(own_redis: RedisServer) -> AsyncIterator[JobStore]:
    """A job store with its stream and group on the private server, for a template other than
    the default (so every key it uses must carry the template's scope)."""
    client = aioredis.Redis.from_url(own_redis.url())
    store = JobStore(client, f"test-{uuid.uuid4().hex[:8]}", 60, 100, template="preview")
    await store.ensure_group()
    yield store
    await client.aclose()


@pytest.fixture(scope="session")
def own_dockerd() -> Iterator[Dockerd]:
    """A second Docker engine with the worker image loaded, shared by the tests that stop it
    (each leaves it running)."""
    engine = Dockerd().start()
    try:
        engine.load_image(WORKER_IMAGE)
        yield engine
    finally:
        engine.close()
