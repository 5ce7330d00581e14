"""A private Redis high-availability group: a primary, replicas and Sentinels, each a real
Debian `redis-server` / `redis-sentinel` process on its own port and folder (tests, benches and
scripts/multihost.py). Never the shared Redis: these get killed on purpose.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

MASTER = "vwe"
# Sentinel timings: a primary silent for DOWN_AFTER_MS is failed over; short, so a test's
# failover takes a few seconds rather than the default 30 s.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have_binaries() -> str | None:
    """None when redis-server and redis-sentinel are installed, else what is missing."""
    missing = [b for b in ("redis-server", "redis-sentinel") if shutil.which(b) is None]
    return (f"{', '.join(missing)} missing: run scripts/ensure-test-tools.sh"
            if missing else None)


def master_port_of(sentinel: redis.Redis) -> int:
    """The port of the primary a Sentinel names for MASTER (redis-py types the reply loosely)."""
    addr: Any = sentinel.sentinel_get_master_addr_by_name(MASTER)
    return int(addr[1])


@dataclass
class Node:
    name: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1,
                           **kwargs)  # type: ignore[arg-type]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the node dies without saving or telling anyone."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@dataclass
class RedisHA:
    """Primary + `replicas` replicas + `sentinels` Sentinels under `folder`."""

    folder: Path
    replicas: int = 1
    sentinels: int = 3
    password: str | None = None
    servers: list[Node] = field(default_factory=list)
    watchers: list[Node] = field(default_factory=list)

    # ---- start/stop ----
    def start(self, timeout: float = 30) -> RedisHA:
        self.folder.mkdir(parents=True, exist_ok=True)
        primary = self._server("primary", None)
        for i in range(self.replicas):
            self._server(f"replica{i}", primary.port)
        # Each Sentinel is told its peers and the replicas up front: left to discover them
        # (hello messages, INFO every 10 s) a group takes ~10 s to be able to fail over.
        ports = [free_port() for _ in range(self.sentinels)]
        ids = [f"{i + 1:040x}" for i in range(self.sentinels)]
        for i, port in enumerate(ports):
            peers = [(p, ids[j]) for j, p in enumerate(ports) if j != i]
            self._sentinel(f"sentinel{i}", port, ids[i], primary.port, peers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._settled(primary.port):
                return self
            time.sleep(0.05)
        raise TimeoutError(f"the Redis HA group did not settle in {timeout} s; see {self.folder}")

    def stop(self) -> None:
        for node in [*self.watchers, *self.servers]:
            if node.alive:
                assert node.proc is not None
                node.resume()
                node.proc.terminate()
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.kill()

    def _auth(self) -> list[str]:
        if not self.password:
            return []
        return ["--requirepass", self.password, "--masterauth", self.password]

    def _server(self, name: str, replica_of: int | None) -> Node:
        node = Node(name, free_port(), self.folder / name)
        node.folder.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(node.port), "--bind", "127.0.0.1",
                "--dir", str(node.folder), "--save", "", "--appendonly", "no",
                "--logfile", str(node.folder / "redis.log"), "--daemonize", "no",
                "--replica-announce-ip", "127.0.0.1", *self._auth(),
                # A full sync starts at once instead of waiting 5 s for more replicas.
                "--repl-diskless-sync-delay", "0"]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        node.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.servers.append(node)
        return node

    def _sentinel(self, name: str, port: int, my_id: str, primary_port: int,
                  peers: list[tuple[int, str]]) -> Node:
        node = Node(name, port, self.folder / name)
        node.folder.mkdir(parents=True, exist_ok=True)
        conf = node.folder / "sentinel.conf"  # Sentinel rewrites its config: its own file
        lines = [f"port {node.port}", "bind 127.0.0.1", f"dir {node.folder}",
                 f"logfile {node.folder / 'sentinel.log'}", "sentinel announce-ip 127.0.0.1",
                 f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
                 f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                 f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
                 f"sentinel parallel-syncs {MASTER} 1", f"sentinel myid {my_id}",
                 *(f"sentinel known-replica {MASTER} 127.0.0.1 {r.port}"
                   for r in self.servers if r.port != primary_port),
                 *(f"sentinel known-sentinel {MASTER} 127.0.0.1 {p} {i}" for p, i in peers)]
        if self.password:
            lines.append(f"sentinel auth-pass {MASTER} {self.password}")
        conf.write_text("\n".join(lines) + "\n")
        node.proc = subprocess.Popen(["redis-sentinel", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.watchers.append(node)
        return node

    # ---- state ----
    def _settled(self, primary_port: int) -> bool:
        """Every Sentinel knows the primary, the replicas and each other; replicas in sync."""
        try:
            for s in self.watchers:
                state: Any = s.client().sentinel_master(MASTER)
                if (int(state["port"]) != primary_port
                        or int(state["num-slaves"]) < self.replicas
                        or int(state["num-other-sentinels"]) < self.sentinels - 1):
                    return False
            info = self.node_on(primary_port).client(password=self.password).info("replication")
            return int(info.get("connected_slaves", 0)) >= self.replicas and all(
                info.get(f"slave{i}", {}).get("state") == "online"
                for i in range(self.replicas))
        except (redis.exceptions.RedisError, OSError):
            return False

    @property
    def sentinel_addresses(self) -> str:
        """For VWE_REDIS_SENTINELS."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.watchers)

    def node_on(self, port: int) -> Node:
        return next(n for n in self.servers if n.port == port)

    def master_port(self) -> int:
        """The primary's port as the first answering Sentinel sees it."""
        for s in self.watchers:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                return master_port_of(s.client())
        raise RuntimeError("no Sentinel answers")

    def primary(self) -> Node:
        return self.node_on(self.master_port())

    def wait_failover(self, old_port: int, timeout: float = 30) -> Node:
        """Wait until every live Sentinel names a new primary that answers as a master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = set()
            for s in self.watchers:
                if s.alive:
                    with contextlib.suppress(redis.exceptions.RedisError, OSError):
                        ports.add(master_port_of(s.client()))
            if len(ports) == 1 and old_port not in ports:
                node = self.node_on(ports.pop())
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    role = node.client(password=self.password).info("replication")["role"]
                    if role == "master":
                        return node
            time.sleep(0.05)
        raise TimeoutError(f"no failover away from port {old_port} in {timeout} s")

    def restart(self, node: Node) -> None:
        """Start a killed server again on its port and folder; Sentinel makes it a replica."""
        assert not node.alive
        args = ["redis-server", "--port", str(node.port), "--bind", "127.0.0.1",
                "--dir", str(node.folder), "--save", "", "--appendonly", "no",
                "--logfile", str(node.folder / "redis.log"), "--daemonize", "no",
                "--replica-announce-ip", "127.0.0.1", *self._auth(),
                "--repl-diskless-sync-delay", "0"]
        node.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def env_for(ha: RedisHA, db: int = 0) -> dict[str, str]:
    """The VWE_* settings that point a process at this group."""
    env = {"VWE_REDIS_SENTINELS": ha.sentinel_addresses, "VWE_REDIS_MASTER": MASTER,
           "VWE_REDIS_URL": f"redis://sentinel/{db}"}
    if ha.password:
        env["VWE_REDIS_PASSWORD"] = ha.password
    return env


__all__ = ["MASTER", "Node", "RedisHA", "env_for", "free_port", "have_binaries"]
